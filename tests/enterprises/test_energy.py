"""Enterprises' energy data in (issue 12, part A), through the service: sites and meters, unit
conversion, readings' flags (backwards, gap, spike), idempotent resends, late data re-deriving
what it touches, and the monthly activity accounting reads."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest

from enterprises import energy
from enterprises.energy_errors import MeterRefTaken, SiteNameTaken, SiteNotFound
from enterprises.energy_schemas import MeterIn, ReadingIn, SiteIn
from kit.db import transaction
from kit.errors import InvalidInput
from tests.enterprises.energy_factories import (
    PUSHER,
    T0,
    Q,
    an_enterprise,
    meter,
    push,
    pusher,
    series,
)

MARCH = date(2026, 3, 1)
APRIL = date(2026, 4, 1)


async def _months(pool: Any, enterprise_id: Any) -> dict[tuple[date, str], tuple[float, int, int]]:
    async with pool.acquire() as conn:
        rows = await energy.meter_months(conn, enterprise_id, start=MARCH, end=date(2027, 1, 1))
    return {(r.month, str(r.meter_id)): (r.quantity, r.readings, r.flagged) for r in rows}


async def _activity(pool: Any, **kw: Any) -> dict[tuple[date, str], tuple[float, str]]:
    async with pool.acquire() as conn:
        rows = await energy.monthly_activity(conn, start=MARCH, end=date(2027, 1, 1), **kw)
    return {(r.month, r.kind): (r.quantity, r.source) for r in rows}


class TestUnits:
    def test_each_kind_converts_to_its_canonical_unit(self):
        assert energy.unit_factor("electricity", "MWh") == 1000
        assert energy.unit_factor("electricity", "Wh") == 0.001
        assert energy.unit_factor("natural_gas", "万m3") == 10_000
        assert energy.unit_factor("coal", "kg") == 0.001
        assert energy.unit_factor("heat", "MJ") == 0.001
        assert energy.unit_factor("steam", "kWh") == pytest.approx(0.0036)
        assert energy.unit_factor("tax", "CNY") == 0.0001
        assert energy.unit_factor("output", "t cement") == 1.0

    def test_units_of_another_kind_are_refused(self):
        assert energy.unit_factor("electricity", "m3") is None
        assert energy.unit_factor("coal", "kWh") is None
        assert energy.unit_factor("diesel", "L") is None  # needs a density: not guessed

    async def test_readings_in_another_unit_are_converted(self, pool):
        e = await an_enterprise(pool)
        await pusher(pool)
        m = await meter(pool, e, unit="MWh")
        readings = [
            ReadingIn(meter="M1", at=T0 + Q, value=1.0),  # MWh, the meter's unit
            ReadingIn(meter="M1", at=T0 + 2 * Q, value=1_250.0, unit="kWh"),
            ReadingIn(meter="M1", at=T0 + 3 * Q, value=1_500_000.0, unit="Wh"),
            ReadingIn(meter="M1", at=T0 + 4 * Q, value=7.0, unit="m3"),
        ]
        result = await push(pool, readings)
        assert [v.status for v in result.results] == ["accepted"] * 3 + ["rejected"]
        assert result.results[3].reason_code == "reading_unit_invalid"
        # The register in kWh: 1000 (baseline), 1250, 1500.
        assert [v.quantity for v in result.results[:3]] == [0.0, 250.0, 250.0]
        assert (await _months(pool, e))[(MARCH, str(m.id))] == (500.0, 3, 0)


class TestSitesAndMeters:
    async def test_adding_the_same_site_or_meter_again_is_the_same(self, pool):
        e = await an_enterprise(pool)
        await pusher(pool)
        first = await meter(pool, e)
        again = await meter(pool, e)
        assert again.id == first.id and again.canonical_unit == "kWh"
        async with pool.acquire() as conn:
            assert [s.name for s in await energy.list_sites(conn, e)] == ["Plant 1"]
            assert [m.ref for m in await energy.list_meters(conn, e)] == ["M1"]

    async def test_conflicting_sites_and_meters_are_refused(self, pool):
        e = await an_enterprise(pool)
        await pusher(pool)
        m = await meter(pool, e)
        async with transaction(pool) as tx:
            with pytest.raises(SiteNameTaken):
                await energy.add_site(tx, e, SiteIn(name="Plant 1", address="elsewhere"))
        with pytest.raises(MeterRefTaken):
            await meter(pool, e, kind="natural_gas", unit="m3")
        other = await an_enterprise(pool, 2, with_districts=False)
        async with transaction(pool) as tx:  # another enterprise's site: not found
            with pytest.raises(SiteNotFound):
                await energy.add_meter(
                    tx,
                    other,
                    MeterIn(site_id=m.site_id, ref="X", kind="coal", unit="t", pusher=PUSHER),
                )
        async with pool.acquire() as conn:
            assert await energy.list_meters(conn, other) == []
            assert await energy.list_sites(conn, other) == []

    async def test_a_meter_needs_a_unit_of_its_kind_and_a_registered_pusher(self, pool):
        e = await an_enterprise(pool)
        async with transaction(pool) as tx:
            site = await energy.add_site(tx, e, SiteIn(name="Plant"))
            with pytest.raises(InvalidInput) as caught:
                await energy.add_meter(
                    tx,
                    e,
                    MeterIn(site_id=site.id, ref="G", kind="natural_gas", unit="kWh", pusher="x"),
                )
        assert caught.value.code == "validation_failed"
        assert [f.path for f in caught.value.errors or []] == ["unit", "pusher"]


class TestFlags:
    async def test_a_register_going_backwards_is_flagged_not_summed(self, pool):
        e = await an_enterprise(pool)
        await pusher(pool)
        m = await meter(pool, e)
        result = await push(pool, series("M1", [100, 110, 105, 120]))
        assert [v.status for v in result.results] == ["accepted", "accepted", "flagged", "accepted"]
        assert result.results[2].reason_code == "reading_backwards"
        # The reading after the bad one counts from the last good register (110), not from 105.
        assert result.results[3].quantity == 10
        assert (await _months(pool, e))[(MARCH, str(m.id))] == (20.0, 4, 1)
        async with pool.acquire() as conn:
            flagged = await energy.flagged_readings(conn, e)
        assert [(f.at, f.flag, f.value) for f in flagged] == [(T0 + 3 * Q, "backwards", 105)]

    async def test_a_gap_is_flagged_and_a_late_reading_filling_it_recomputes(self, pool):
        e = await an_enterprise(pool)
        await pusher(pool)
        m = await meter(pool, e)
        await push(pool, series("M1", [100, 110]))
        gap = await push(pool, series("M1", [150], first=4))  # the 3rd is missing
        assert gap.results[0].status == "flagged" and gap.results[0].reason_code == "reading_gap"
        assert (await _months(pool, e))[(MARCH, str(m.id))] == (10.0, 3, 1)
        assert (await _activity(pool))[(MARCH, "electricity")] == (10.0, "meter")
        # The missing reading arrives late: it counts, and the one after it loses its flag.
        late = await push(pool, series("M1", [130], first=3))
        assert late.results[0].status == "accepted" and late.results[0].quantity == 20
        assert (await _months(pool, e))[(MARCH, str(m.id))] == (50.0, 4, 0)
        assert (await _activity(pool))[(MARCH, "electricity")] == (50.0, "meter")
        async with pool.acquire() as conn:
            assert await energy.flagged_readings(conn, e) == []

    async def test_a_spike_beyond_the_factor_is_flagged(self, pool):
        e = await an_enterprise(pool)
        await pusher(pool)
        m = await meter(pool, e, register="interval", spike_factor=5)
        steady = [10.0] * 12
        result = await push(pool, series("M1", [*steady, 49.0, 60.0, 10.0]))
        statuses = [v.status for v in result.results]
        # 49 is under 5 × the level (10); it lifts the level a little (to ~10.8), and 60 is over.
        assert statuses == ["accepted"] * 13 + ["flagged", "accepted"]
        assert result.results[13].reason_code == "reading_spike"
        assert (await _months(pool, e))[(MARCH, str(m.id))] == (12 * 10 + 49 + 10, 15, 1)

    async def test_a_lasting_change_of_level_stops_being_flagged(self, pool):
        e = await an_enterprise(pool)
        await pusher(pool)
        await meter(pool, e, register="interval", spike_factor=5)
        result = await push(pool, series("M1", [10.0] * 12 + [80.0] * 12))
        after = [v.status for v in result.results[12:]]
        assert after[0] == "flagged" and after[-1] == "accepted"
        assert after.index("accepted") <= 8, after  # within a few readings
        assert "flagged" not in after[after.index("accepted") :]

    async def test_no_spike_before_the_meter_has_a_level(self, pool):
        e = await an_enterprise(pool)
        await pusher(pool)
        await meter(pool, e, register="interval")
        result = await push(pool, series("M1", [1, 2, 1, 500]))
        assert [v.status for v in result.results] == ["accepted"] * 4

    async def test_bad_values_and_times_are_rejected_not_stored(self, pool):
        e = await an_enterprise(pool)
        await pusher(pool)
        m = await meter(pool, e, register="interval")
        now = T0 + 10 * Q
        result = await push(
            pool,
            [
                ReadingIn(meter="M1", at=T0 + Q, value=-1),
                ReadingIn(meter="M1", at=T0 + 2 * Q, value=1e300, unit="GWh"),
                ReadingIn(meter="M1", at=now + timedelta(hours=1), value=1),
                ReadingIn(meter="nope", at=T0 + Q, value=1),
                ReadingIn(meter="M1", at=T0 + 3 * Q, value=4),
            ],
            now=now,
        )
        assert [v.reason_code for v in result.results] == [
            "reading_value_invalid",
            "reading_value_invalid",
            "reading_time_invalid",
            "meter_unknown",
            None,
        ]
        assert (result.rejected, result.accepted) == (4, 1)
        assert (await _months(pool, e))[(MARCH, str(m.id))] == (4.0, 1, 0)

    async def test_another_pushers_meter_is_unknown_to_it(self, pool):
        e = await an_enterprise(pool)
        await pusher(pool)
        await pusher(pool, "gateway-1")
        await meter(pool, e)
        result = await push(pool, series("M1", [1, 2]), by="gateway-1")
        assert {v.reason_code for v in result.results} == {"meter_unknown"}
        assert await _months(pool, e) == {}


class TestResend:
    async def test_resending_is_duplicate_and_another_value_a_conflict(self, pool):
        e = await an_enterprise(pool)
        await pusher(pool)
        m = await meter(pool, e)
        batch = series("M1", [100, 110, 125])
        first = await push(pool, batch)
        again = await push(pool, batch)
        assert [v.status for v in again.results] == ["duplicate"] * 3
        assert [v.quantity for v in again.results] == [v.quantity for v in first.results]
        changed = await push(pool, series("M1", [100, 111], first=1))
        assert [v.status for v in changed.results] == ["duplicate", "conflict"]
        assert changed.results[1].reason_code == "reading_conflict"
        assert (await _months(pool, e))[(MARCH, str(m.id))] == (25.0, 3, 0)

    async def test_the_same_reading_twice_in_one_batch(self, pool):
        e = await an_enterprise(pool)
        await pusher(pool)
        m = await meter(pool, e, register="interval")
        r = series("M1", [5, 7])
        result = await push(pool, [r[0], r[1], r[1], ReadingIn(meter="M1", at=r[1].at, value=8)])
        assert [v.status for v in result.results] == [
            "accepted",
            "accepted",
            "duplicate",
            "conflict",
        ]
        assert result.results[2].quantity == 7
        assert (await _months(pool, e))[(MARCH, str(m.id))] == (12.0, 2, 0)

    async def test_the_same_value_in_another_unit_is_a_duplicate(self, pool):
        e = await an_enterprise(pool)
        await pusher(pool)
        await meter(pool, e)
        await push(pool, [ReadingIn(meter="M1", at=T0 + Q, value=1.2345)])
        again = await push(pool, [ReadingIn(meter="M1", at=T0 + Q, value=1234.5, unit="Wh")])
        assert again.results[0].status == "duplicate"


class TestMonths:
    async def test_a_reading_at_midnight_closes_the_previous_month(self, pool):
        e = await an_enterprise(pool)
        await pusher(pool)
        m = await meter(pool, e, register="interval")
        # T0 is 1 March 00:00 local (16:00 UTC on 28 February): the months are the zone's.
        local_end = T0 + timedelta(days=31)  # 1 April 00:00 local
        result = await push(
            pool,
            [
                ReadingIn(meter="M1", at=local_end, value=3),
                ReadingIn(meter="M1", at=local_end + Q, value=4),
            ],
        )
        assert [v.status for v in result.results] == ["accepted", "accepted"]
        months = await _months(pool, e)
        assert months[(MARCH, str(m.id))] == (3.0, 1, 0)
        assert months[(APRIL, str(m.id))] == (4.0, 1, 0)
        async with transaction(pool) as tx:
            touched = await energy.take_touched(tx)
        assert {(t.enterprise_id, t.month) for t in touched} == {(e, MARCH), (e, APRIL)}
        async with transaction(pool) as tx:
            assert await energy.take_touched(tx) == []

    async def test_activity_sums_meters_of_a_kind_and_filters_enterprises(self, pool):
        e = await an_enterprise(pool)
        f = await an_enterprise(pool, 2, with_districts=False)
        await pusher(pool)
        await meter(pool, e, "A", register="interval")
        await meter(pool, e, "B", register="interval", site="Plant 2")
        await meter(pool, f, "C", kind="natural_gas", unit="万m3", register="interval")
        await push(pool, [*series("A", [1, 2]), *series("B", [10]), *series("C", [0.5])])
        assert await _activity(pool, enterprise_ids=[e]) == {
            (MARCH, "electricity"): (13.0, "meter")
        }
        assert await _activity(pool, enterprise_ids=[f]) == {
            (MARCH, "natural_gas"): (5000.0, "meter")
        }
        assert len(await _activity(pool)) == 2
