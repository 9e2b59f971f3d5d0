"""Rollups after real ingestion, against the ledger; distinct participants per period; the
reconciliation catching planted differences; the enterprises' tables with the dominance rule
and the grade counts."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
import pytest

from kit.db import transaction
from points.service import balances
from reporting import reconcile, reports, repository, rollups
from tests.behaviours.factories import now
from tests.enterprises.accounting_factories import enterprises, recorded, year_rows
from tests.reporting.factories import operators, refresh, travel


async def _ledger(pool: Any, residents: list[str]) -> tuple[int, int]:
    grams = points = 0
    async with pool.acquire() as conn:
        for rid in residents:
            b = {x.asset: x.posted for x in await balances(conn, "resident", rid)}
            grams += b["CO2E_G"]
            points += b["POINT"]
    return grams, points


async def _rows(pool: Any, grain: str) -> dict[tuple[Any, ...], Any]:
    async with pool.acquire() as conn:
        rows = await repository.travel_rows(
            conn, grain, date(2000, 1, 1), date(2100, 1, 1), all_methodologies=False
        )
    return {(r["period"], r["district"], r["mode"], r["methodology"]): r for r in rows}


async def _two_days(pool: Any, settings: Any) -> tuple[list[str], date, date]:
    """12 residents of 440303 (metro and bus on day 1, metro on day 2) and 11 of 440304
    (metro on day 1)."""
    zone = ZoneInfo(settings.timezone)
    day1 = (now() - timedelta(days=3)).astimezone(zone).replace(hour=7, minute=0, second=0)
    day2 = day1 + timedelta(days=1)
    await operators(pool)
    a = await travel(pool, settings, 12, start=day1, district="440303")
    b = await travel(pool, settings, 11, start=day1, district="440304", modes=("metro",))
    for i, rid in enumerate(a):
        from tests.behaviours import factories as bf

        async with pool.acquire() as conn:
            subject = await conn.fetchval(
                "SELECT subject_ref FROM operator_links WHERE resident_id = $1", rid
            )
        await bf.run(pool, settings, [bf.metro(subject, f"d2-{i}", start=day2)], op_id="metro")
    return a + b, day1.date(), day2.date()


async def test_rollups_equal_the_ledger_after_ingestion(pool, settings):
    residents, d1, d2 = await _two_days(pool, settings)
    await refresh(pool, settings, d1 - timedelta(days=1), d2 + timedelta(days=1))
    grams, points = await _ledger(pool, residents)
    assert grams > 0 and points > 0
    days = await _rows(pool, "day")
    totals = [r for k, r in days.items() if k[1:] == ("*", "*", "*")]
    assert sum(r["grams"] for r in totals) == grams  # to the gram
    assert sum(r["points"] for r in totals) == points
    assert days[(d1, "*", "*", "*")]["trips"] == 12 * 2 + 11
    assert days[(d2, "*", "*", "*")]["trips"] == 12
    assert days[(d1, "440303", "bus", "*")]["participants"] == 12
    assert days[(d1, "*", "metro", "*")]["participants"] == 23
    # each level's grams add up: district x mode -> district -> all
    for d in (d1, d2):
        cells = [r for k, r in days.items() if k[0] == d and "*" not in k[1:3] and k[3] == "*"]
        assert sum(r["grams"] for r in cells) == days[(d, "*", "*", "*")]["grams"]
        methodologies = [r for k, r in days.items() if k[0] == d and k[3] != "*"]
        assert {k[3] for k, r in days.items() if k[0] == d and k[3] != "*"} == {
            "low-carbon-travel@1"
        }
        assert sum(r["grams"] for r in methodologies) == days[(d, "*", "*", "*")]["grams"]


async def test_participants_are_distinct_per_period_not_a_sum_of_days(pool, settings):
    _residents, d1, d2 = await _two_days(pool, settings)
    await refresh(pool, settings, d1, d2)
    days, months, years = [await _rows(pool, g) for g in ("day", "month", "year")]
    # 23 residents on day 1, the 12 of 440303 again on day 2: 35 resident-days, 23 people
    assert (
        days[(d1, "*", "*", "*")]["participants"] + days[(d2, "*", "*", "*")]["participants"] == 35
    )
    by_month: dict[date, set[date]] = defaultdict(set)
    for d in (d1, d2):
        by_month[d.replace(day=1)].add(d)
    for m, ds in by_month.items():
        expected = 23 if d1 in ds else 12
        assert months[(m, "*", "*", "*")]["participants"] == expected
        assert months[(m, "440303", "metro", "*")]["participants"] == 12
    if d1.year == d2.year:
        assert years[(d1.replace(month=1, day=1), "*", "*", "*")]["participants"] == 23


async def test_refresh_is_idempotent(pool, settings):
    _, d1, d2 = await _two_days(pool, settings)
    await refresh(pool, settings, d1, d2)
    first = {k: tuple(v.values()) for k, v in (await _rows(pool, "day")).items()}
    await refresh(pool, settings, d1, d2)
    again = {k: tuple(v.values()) for k, v in (await _rows(pool, "day")).items()}
    assert first == again and first


async def _reconcile(pool: Any, settings: Any, d1: date, d2: date) -> reconcile.Reconciliation:
    async with transaction(pool) as tx:
        return await reconcile.reconcile(tx, d1, d2, timezone=settings.timezone)


@pytest.mark.tampers_ledger
async def test_reconciliation_catches_a_planted_difference(pool, owner_pool, settings):
    _residents, d1, d2 = await _two_days(pool, settings)
    await refresh(pool, settings, d1 - timedelta(days=1), d2 + timedelta(days=1))
    clean = await _reconcile(pool, settings, d1, d2)
    assert clean.ok and clean.differences == []
    true_grams = (await _rows(pool, "day"))[(d1, "440303", "bus", "*")]["grams"]
    await owner_pool.execute(
        "UPDATE reporting_travel SET grams = grams + 1 WHERE grain = 'day' AND period = $1 "
        "AND district = '440303' AND mode = 'bus' AND methodology = '*'",
        d1,
    )
    await owner_pool.execute(
        "DELETE FROM reporting_travel WHERE grain = 'day' AND period = $1 "
        "AND district = '440304' AND mode = 'metro' AND methodology = 'low-carbon-travel@1'",
        d1,
    )
    caught = await _reconcile(pool, settings, d1, d2)
    assert not caught.ok
    found = {(x.check, x.cell, x.measure): x for x in caught.differences}
    planted = found[("cell", "440303/bus/*", "grams")]
    assert (planted.grain, planted.period) == ("day", d1)
    assert (planted.rollup, planted.source) == (true_grams + 1, true_grams)
    missing = found[("cell", "440304/metro/low-carbon-travel@1", "trips")]
    assert missing.rollup is None and missing.source == 11
    # only the planted cells differ (the day's grand total was left as it was)
    assert {k[1] for k in found if k[0] == "cell"} == {
        "440303/bus/*",
        "440304/metro/low-carbon-travel@1",
    }
    # stored, and readable back
    async with pool.acquire() as conn:
        last = await reconcile.last_reconciliation(conn)
    assert last is not None and last.id == caught.id and not last.ok
    assert msgspec.to_builtins(last.differences) == msgspec.to_builtins(caught.differences)
    # stored as a JSON array of objects (queryable in SQL), not as a string of JSON
    kind = await owner_pool.fetchval(
        "SELECT jsonb_typeof(differences) FROM reporting_reconciliations WHERE id = $1", caught.id
    )
    assert kind == "array"


@pytest.mark.tampers_ledger
async def test_reconciliation_finds_the_rollup_behind_the_ledger(pool, owner_pool, settings):
    residents, d1, d2 = await _two_days(pool, settings)
    await refresh(pool, settings, d1 - timedelta(days=1), d2 + timedelta(days=1))
    grams, _ = await _ledger(pool, residents)
    await owner_pool.execute(
        "UPDATE reporting_travel SET grams = grams - 5 WHERE grain = 'day' AND period = $1 "
        "AND district = '*' AND mode = '*' AND methodology = '*'",
        d2,
    )
    caught = await _reconcile(pool, settings, d1, d2)
    ledger = [x for x in caught.differences if x.check == "ledger" and x.measure == "grams"]
    assert len(ledger) == 1
    assert (ledger[0].rollup, ledger[0].source) == (grams - 5, grams)


async def test_enterprise_tables_dominance_and_grades(pool, settings):
    s = settings.enterprises
    ids = await enterprises(pool, 6)
    ls = [0.6, 0.8, 1.2, 2.0, 0.4, 1.0]  # grades 1, 2, 3, 4, 1, 3 (tests/enterprises)
    activity = []
    for eid, l_value in zip(ids, ls, strict=True):
        kwh = l_value * 1000 * 10 / 0.5306
        activity += year_rows(eid, 2023, {"electricity": kwh, "added_value": 10.0})
    await recorded(pool, activity, start=date(2023, 1, 1), end=date(2024, 1, 1))
    async with transaction(pool) as tx:
        await rollups.refresh_enterprises(tx, [2023], settings=settings.reporting, ent=s)
    async with pool.acquire() as conn:
        table = await reports.enterprise_table(conn, "year", date(2023, 1, 1), "district")
        month = await reports.enterprise_table(conn, "month", date(2023, 3, 1), "industry")
        dist = await reports.grade_distribution(conn, 2023, None)
    # 6 enterprises, L 0.6..2.0 of equal added value: the two largest (2.0 + 1.2 of 6.0) make
    # 53 %: published; total emissions 6.0 t/10,000 yuan x 120 = 720 t
    assert table.total.enterprises.value == 6
    assert table.total.emissions_t.value == pytest.approx(720.0, rel=1e-6)
    assert month.total.emissions_t.value == pytest.approx(60.0, rel=1e-6)
    async with pool.acquire() as conn:
        series = await reports.enterprise_series(
            conn, "month", date(2022, 12, 1), date(2023, 12, 1), industry="C26"
        )
    assert [p.period for p in series.points][:2] == [date(2022, 12, 1), date(2023, 1, 1)]
    assert series.points[0].figures.emissions_t.value == 0.0  # no data that month: zero
    assert all(
        p.figures.emissions_t.value == pytest.approx(60.0, rel=1e-6) for p in series.points[1:]
    )
    assert {g: c.value for g, c in dist.total.grades.items()} == {
        "1": None, "2": None, "3": None, "4": None, "5": 0, "ungraded": 0,
    }  # fmt: skip
    # counts of 2, 1, 2, 1 enterprises are under k=3: each is suppressed, and so are
    # complements, while the total of 6 is published
    assert dist.total.total.value == 6
    assert all(dist.total.grades[g].status == "suppressed" for g in ("1", "2", "3", "4"))


async def test_an_enterprise_dominating_its_cell_is_suppressed(pool, settings):
    s = settings.enterprises
    ids = await enterprises(pool, 5)
    activity = []
    for i, eid in enumerate(ids):
        kwh = 1_000_000.0 if i == 0 else 10_000.0  # one enterprise is ~96 % of the district
        activity += year_rows(eid, 2023, {"electricity": kwh, "added_value": 10.0})
    await recorded(pool, activity, start=date(2023, 1, 1), end=date(2024, 1, 1))
    async with transaction(pool) as tx:
        await rollups.refresh_enterprises(tx, [2023], settings=settings.reporting, ent=s)
    async with pool.acquire() as conn:
        table = await reports.enterprise_table(conn, "year", date(2023, 1, 1), "district")
    assert table.total.emissions_t.status == "suppressed"
    assert table.total.emissions_t.value is None  # never 0
    assert all(f.emissions_t.value is None for f in table.rows.values())
    # with the dominance rule relaxed to 99 %, the same figures are published
    relaxed = msgspec.structs.replace(settings.reporting, dominance_k=0.99)
    async with transaction(pool) as tx:
        await rollups.refresh_enterprises(tx, [2023], settings=relaxed, ent=s)
    async with pool.acquire() as conn:
        table = await reports.enterprise_table(conn, "year", date(2023, 1, 1), "district")
    assert table.total.emissions_t.status == "ok" and table.total.emissions_t.value


async def test_the_points_rollup_gives_the_liability_view_of_the_ledger(pool, settings):
    from rewards import liability as reference
    from tests.rewards.factories import donate, project, resident_with_points

    a = await resident_with_points(pool, 10_000)
    b = await resident_with_points(pool, 25_000)
    cause = await project(pool)
    await donate(pool, a, cause.id, 120)
    await donate(pool, b, cause.id, 700, asset="CO2E_G")
    zone = ZoneInfo(settings.timezone)
    today = rollups.today(zone)
    async with transaction(pool) as tx:
        await rollups.refresh_points(
            tx, today - timedelta(days=1), today, timezone=settings.timezone
        )
    async with pool.acquire() as conn:
        mine = await reports.liability(conn, "month")
        ledger = await reference.liability(conn, unit="month", timezone=settings.timezone)
    assert [p.period for p in mine.periods] == [p.period for p in ledger.periods]
    for m, r in zip(mine.periods, ledger.periods, strict=True):
        for f in ("issued", "clawed_back", "redeemed", "refunded", "expired", "donated",
                  "outstanding", "grams_issued", "points_per_kg"):  # fmt: skip
            assert getattr(m, f) == getattr(r, f), f
    assert mine.outstanding == ledger.outstanding == 1000 + 2500 - 120
    assert mine.donated == 120
    assert mine.points_per_kg == ledger.points_per_kg == 100.0
