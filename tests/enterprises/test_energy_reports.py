"""Enterprises' monthly and annual activity reports (issue 12, part A): validated and converted,
idempotent by content, replaced by later versions with the history kept, and green-certificate
serials claimed once in the whole region (the database decides, under real concurrency)."""

from __future__ import annotations

import asyncio
from datetime import date
from typing import Any

import pytest

from enterprises import energy
from enterprises.energy_errors import ActivityReportNotFound, GreenCertificateClaimed
from enterprises.energy_schemas import ReportIn, ReportLineIn, ReportStatus
from kit.db import transaction
from kit.errors import InvalidInput
from tests.enterprises.energy_factories import an_enterprise, meter, push, pusher, series

MARCH = date(2026, 3, 1)


def _report(*lines: ReportLineIn, period: Any = "month", start: date = MARCH) -> ReportIn:
    return ReportIn(period=period, period_start=start, lines=list(lines))


def _line(kind: Any, quantity: float, unit: str, certificates: list[str] | None = None):
    return ReportLineIn(kind=kind, quantity=quantity, unit=unit, certificates=certificates or [])


async def _submit(pool: Any, enterprise_id: Any, report: ReportIn) -> ReportStatus:
    async with transaction(pool) as tx:
        return await energy.submit_report(tx, enterprise_id, report)


async def _activity(pool: Any, start: date = MARCH, end: date = date(2027, 1, 1)):
    async with pool.acquire() as conn:
        rows = await energy.monthly_activity(conn, start=start, end=end)
    return {(r.month, r.kind): (round(r.quantity, 6), r.source) for r in rows}


class TestSubmission:
    async def test_a_report_is_converted_and_read_by_accounting(self, pool):
        e = await an_enterprise(pool)
        status = await _submit(
            pool,
            e,
            _report(
                _line("electricity", 1.5, "MWh"),
                _line("natural_gas", 2, "万m3"),
                _line("added_value", 3_000_000, "CNY"),
                _line("output", 120, "t cement"),
                _line("green_electricity", 1500, "kWh", ["GEC-1", "GEC-2"]),
            ),
        )
        assert status.created and status.version == 1 and status.status == "current"
        assert {x.kind: (x.quantity, x.unit) for x in status.lines} == {
            "added_value": (300.0, "10k_CNY"),
            "electricity": (1500.0, "kWh"),
            "green_electricity": (1500.0, "kWh"),
            "natural_gas": (20000.0, "m3"),
            "output": (120.0, "t cement"),
        }
        assert await _activity(pool) == {
            (MARCH, "added_value"): (300.0, "report"),
            (MARCH, "electricity"): (1500.0, "report"),
            (MARCH, "green_electricity"): (1500.0, "report"),
            (MARCH, "natural_gas"): (20000.0, "report"),
            (MARCH, "output"): (120.0, "report"),
        }
        async with pool.acquire() as conn:
            assert (await energy.report_status(conn, e, status.id)).lines == status.lines

    async def test_bad_lines_are_named(self, pool):
        e = await an_enterprise(pool)
        with pytest.raises(InvalidInput) as caught:
            await _submit(
                pool,
                e,
                _report(
                    _line("electricity", 1, "m3"),
                    _line("coal", 1, "t", ["X-1"]),
                    _line("green_electricity", 2500, "kWh", ["A", "B"]),
                    _line("coal", 2, "t"),
                    start=date(2026, 3, 2),
                ),
            )
        assert [f.path for f in caught.value.errors or []] == [
            "period_start",
            "lines[0].unit",
            "lines[1].certificates",
            "lines[2].quantity",
            "lines[3].kind",
        ]
        with pytest.raises(InvalidInput):  # green electricity without serials
            await _submit(pool, e, _report(_line("green_electricity", 1, "kWh")))
        with pytest.raises(InvalidInput):  # an annual report starts on 1 January
            await _submit(pool, e, _report(_line("coal", 1, "t"), period="year"))
        assert await _activity(pool) == {}

    async def test_the_same_content_is_the_same_report(self, pool):
        e = await an_enterprise(pool)
        first = await _submit(pool, e, _report(_line("coal", 10, "t")))
        again = await _submit(pool, e, _report(_line("coal", 10_000, "kg")))  # other content
        assert again.created and again.version == 2
        same = await _submit(pool, e, _report(_line("coal", 10_000, "kg")))
        assert not same.created and same.id == again.id and same.version == 2
        async with pool.acquire() as conn:
            current = await energy.list_reports(conn, e)
            history = await energy.list_reports(conn, e, history=True)
        assert [r.id for r in current] == [again.id]
        assert [(r.version, r.status) for r in history] == [(2, "current"), (1, "superseded")]
        assert history[1].id == first.id and history[1].superseded_at is not None

    async def test_another_enterprises_report_is_not_found(self, pool):
        e = await an_enterprise(pool)
        f = await an_enterprise(pool, 2, with_districts=False)
        status = await _submit(pool, e, _report(_line("coal", 1, "t")))
        async with pool.acquire() as conn:
            with pytest.raises(ActivityReportNotFound):
                await energy.report_status(conn, f, status.id)
            assert await energy.list_reports(conn, f) == []


class TestPrecedence:
    async def test_reports_supersede_meters_monthly_before_annual(self, pool):
        e = await an_enterprise(pool)
        await pusher(pool)
        await meter(pool, e, register="interval")
        await push(pool, series("M1", [5, 5]))  # March: 10 kWh metered
        assert (await _activity(pool))[(MARCH, "electricity")] == (10.0, "meter")
        await _submit(
            pool,
            e,
            _report(
                _line("electricity", 12_000, "kWh"),
                _line("tax", 24, "万元"),
                period="year",
                start=date(2026, 1, 1),
            ),
        )
        spread = await _activity(pool, date(2026, 1, 1), date(2027, 1, 1))
        assert spread[(date(2026, 1, 1), "electricity")] == (1000.0, "report")
        assert spread[(MARCH, "electricity")] == (1000.0, "report")
        assert spread[(date(2026, 12, 1), "tax")] == (2.0, "report")
        await _submit(pool, e, _report(_line("electricity", 777, "kWh")))
        after = await _activity(pool, date(2026, 1, 1), date(2027, 1, 1))
        assert after[(MARCH, "electricity")] == (777.0, "report")
        assert after[(date(2026, 4, 1), "electricity")] == (1000.0, "report")
        assert after[(MARCH, "tax")] == (2.0, "report")  # the annual line the month lacks

    async def test_a_report_touches_its_months(self, pool):
        e = await an_enterprise(pool)
        await _submit(
            pool, e, _report(_line("coal", 1, "t"), period="year", start=date(2025, 1, 1))
        )
        async with transaction(pool) as tx:
            touched = await energy.take_touched(tx)
        assert sorted(t.month for t in touched) == [date(2025, m, 1) for m in range(1, 13)]


async def _claim(pool: Any, enterprise_id: Any, serial: str, start: date, gate: Any) -> str:
    try:
        async with transaction(pool) as tx:
            await gate.wait()  # both transactions are open before either claims
            await energy.submit_report(
                tx,
                enterprise_id,
                _report(_line("green_electricity", 1000, "kWh", [serial]), start=start),
            )
            await asyncio.sleep(0.05)  # hold the claim uncommitted while the other one waits
    except GreenCertificateClaimed:
        return "refused"
    return "claimed"


class TestGreenCertificates:
    async def test_a_serial_counts_once_in_the_region(self, pool):
        e = await an_enterprise(pool)
        f = await an_enterprise(pool, 2, with_districts=False)
        await _submit(pool, e, _report(_line("green_electricity", 900, "kWh", ["S-1"])))
        with pytest.raises(GreenCertificateClaimed) as caught:
            await _submit(pool, f, _report(_line("green_electricity", 900, "kWh", ["S-1", "S-2"])))
        assert caught.value.extra == {"serials": ["S-1"]}
        async with pool.acquire() as conn:
            assert await energy.list_reports(conn, f) == []  # nothing of it was kept
        # The same enterprise's other period cannot count it again either.
        with pytest.raises(GreenCertificateClaimed):
            await _submit(
                pool,
                e,
                _report(_line("green_electricity", 900, "kWh", ["S-1"]), start=date(2026, 4, 1)),
            )

    async def test_a_new_version_keeps_or_releases_its_serials(self, pool):
        e = await an_enterprise(pool)
        f = await an_enterprise(pool, 2, with_districts=False)
        await _submit(pool, e, _report(_line("green_electricity", 1500, "kWh", ["S-1", "S-2"])))
        v2 = await _submit(pool, e, _report(_line("green_electricity", 800, "kWh", ["S-1"])))
        assert v2.version == 2
        # S-2 was released by version 2: another enterprise may claim it; S-1 still held.
        await _submit(pool, f, _report(_line("green_electricity", 1000, "kWh", ["S-2"])))
        with pytest.raises(GreenCertificateClaimed):
            await _submit(
                pool,
                f,
                _report(_line("green_electricity", 1000, "kWh", ["S-1"]), start=date(2026, 5, 1)),
            )

    async def test_two_enterprises_claiming_one_serial_concurrently_one_succeeds(self, pool):
        e = await an_enterprise(pool)
        f = await an_enterprise(pool, 2, with_districts=False)
        for round_ in range(5):
            serial, start = f"RACE-{round_}", date(2026, 1 + round_, 1)
            gate = asyncio.Event()
            tasks = [asyncio.create_task(_claim(pool, who, serial, start, gate)) for who in (e, f)]
            await asyncio.sleep(0.05)
            gate.set()
            outcomes = await asyncio.gather(*tasks)
            assert sorted(outcomes) == ["claimed", "refused"], outcomes
        async with pool.acquire() as conn:
            e_reports = await energy.list_reports(conn, e)
            f_reports = await energy.list_reports(conn, f)
        assert len(e_reports) + len(f_reports) == 5
