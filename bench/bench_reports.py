"""Government reports benchmark: the report queries over a simulated year of a 20M city.

    flock /tmp/tph-bench.lock .venv/bin/python bench/bench_reports.py

A 20M city makes about 10M green trips a day (3.6 billion a year). Reports read rollups, never
events, so what matters is the rollups' cardinality that volume implies: at that volume every
cell of district x mode x methodology is filled every day, so a day is
``districts x modes x methodologies`` cells plus every margin (district x mode, district, mode,
all). With the defaults (100 districts, 10 modes, 2 methodology versions) that is 3,111 rows a
day, 1.14M day rows, 37k month rows and 3k year rows for the year: generated in Python and
written through the rollup's own COPY (``reporting.repository.replace_travel``), with
participants and grams of a 10M-trip day. No events are generated.

Then each report read (``reporting.reports``, the functions the routes call) runs
``BENCH_REPEAT`` times on a pool and its p50 / p99 are printed; the target is p99 <= 100 ms.

``BENCH_DATABASE_URL``: a server on which a fresh database is created and dropped afterwards;
otherwise an embedded PostgreSQL in a temporary directory. Knobs: ``BENCH_DISTRICTS`` (100),
``BENCH_MODES`` (10), ``BENCH_METHODOLOGIES`` (2), ``BENCH_REPEAT`` (200).
"""

from __future__ import annotations

import asyncio
import os
import random
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import asyncpg
import stores

from kit.db import create_pool
from reporting import exports, reports
from reporting import repository as repo
from reporting.settings import ReportingSettings
from server.migrate import migrate
from server.seeds import apply_seeds

YEAR = 2025
TRIPS_A_DAY = 10_000_000
GRAMS_PER_TRIP = 450


def day_rows(
    grain: str, period: date, districts: int, modes: int, methodologies: int, rng: random.Random
) -> list[tuple[Any, ...]]:
    """One period's cells with every margin, shaped like a 10M-trip day (x days in it)."""
    days = {"day": 1, "month": 30, "year": 365}[grain]
    cells = districts * modes * methodologies
    per_cell = TRIPS_A_DAY * days // cells
    rows: list[tuple[Any, ...]] = []
    by_dm: dict[tuple[str, str], list[int]] = {}
    for d in range(districts):
        for m in range(modes):
            for v in range(methodologies):
                trips = int(per_cell * rng.uniform(0.5, 1.5))
                dist, mode = f"{440300 + d + 1:06d}", f"mode{m}"
                rows.append(
                    (grain, period, dist, mode, f"low-carbon-travel@{v + 1}", trips,
                     trips // 3, trips * GRAMS_PER_TRIP, trips * 45, False)
                )  # fmt: skip
                acc = by_dm.setdefault((dist, mode), [0, 0])
                acc[0] += trips
                acc[1] += trips // 3
    margins: dict[tuple[str, str], list[int]] = {}
    for (dist, mode), (trips, people) in by_dm.items():
        for key in ((dist, mode), (dist, "*"), ("*", mode), ("*", "*")):
            acc = margins.setdefault(key, [0, 0])
            acc[0] += trips
            acc[1] += people
    for (dist, mode), (trips, people) in margins.items():
        rows.append(
            (grain, period, dist, mode, "*", trips, people, trips * GRAMS_PER_TRIP, trips * 45,
             False)
        )  # fmt: skip
    return rows


async def fill(pool: Any, districts: int, modes: int, methodologies: int) -> int:
    rng = random.Random(7)
    n = 0
    async with pool.acquire() as conn:
        batch: list[tuple[Any, ...]] = []
        days: list[date] = []
        day = date(YEAR, 1, 1)
        while day.year == YEAR:
            batch += day_rows("day", day, districts, modes, methodologies, rng)
            days.append(day)
            if len(days) == 31:
                await repo.replace_travel(conn, "day", days, batch)
                n += len(batch)
                batch, days = [], []
            day += timedelta(days=1)
        if days:
            await repo.replace_travel(conn, "day", days, batch)
            n += len(batch)
        months = [date(YEAR, m, 1) for m in range(1, 13)]
        rows = [
            r for p in months for r in day_rows("month", p, districts, modes, methodologies, rng)
        ]
        await repo.replace_travel(conn, "month", months, rows)
        year = [date(YEAR, 1, 1)]
        rows_y = day_rows("year", year[0], districts, modes, methodologies, rng)
        await repo.replace_travel(conn, "year", year, rows_y)
        await conn.execute("ANALYZE reporting_travel")
        return n + len(rows) + len(rows_y)


async def timed(
    pool: Any, repeat: int, call: Callable[[Any], Awaitable[Any]]
) -> tuple[float, float]:
    out = []
    for _ in range(repeat):
        async with pool.acquire() as conn:
            t = time.perf_counter()
            await call(conn)
            out.append((time.perf_counter() - t) * 1000)
    out.sort()
    p99 = out[min(len(out) - 1, int(len(out) * 0.99))]
    return statistics.median(out), p99


async def run(url: str, districts: int, modes: int, methodologies: int, repeat: int) -> bool:
    conn = await asyncpg.connect(url)
    try:
        await migrate(conn)
        await apply_seeds(conn)
    finally:
        await conn.close()
    pool = await create_pool(url, min_size=1, max_size=4)
    s = ReportingSettings()
    try:
        t = time.perf_counter()
        rows = await fill(pool, districts, modes, methodologies)
        print(
            f"rollup rows: {rows:,} ({districts} districts x {modes} modes x {methodologies} "
            f"methodologies + margins, a year of days, months and the year) in "
            f"{time.perf_counter() - t:.1f} s",
            flush=True,
        )
        mid = date(YEAR, 6, 15)
        queries: list[tuple[str, Callable[[Any], Awaitable[Any]]]] = [
            ("totals (day)", lambda c: reports.totals(c, "day", mid)),
            ("totals (year)", lambda c: reports.totals(c, "year", date(YEAR, 1, 1))),
            (
                "series, 365 days, all",
                lambda c: reports.series(c, "day", date(YEAR, 1, 1), date(YEAR, 12, 31), s),
            ),
            (
                "series, 365 days, one district x mode",
                lambda c: reports.series(
                    c,
                    "day",
                    date(YEAR, 1, 1),
                    date(YEAR, 12, 31),
                    s,
                    district="440342",
                    mode="mode3",
                ),
            ),
            (
                "series, 12 months, one district",
                lambda c: reports.series(
                    c, "month", date(YEAR, 1, 1), date(YEAR, 12, 1), s, district="440310"
                ),
            ),
            ("by mode (day)", lambda c: reports.by_mode(c, "day", mid)),
            ("by district (month)", lambda c: reports.by_district(c, "month", date(YEAR, 6, 1))),
            ("district x mode (day)", lambda c: reports.district_mode(c, "day", mid)),
            (
                "district x mode (year)",
                lambda c: reports.district_mode(c, "year", date(YEAR, 1, 1)),
            ),
            ("CSV export, one day", lambda c: exports.travel_csv(c, "day", mid, mid, s)),
        ]
        ok = True
        print(f"{'query':<40} {'p50 ms':>8} {'p99 ms':>8}  (n={repeat})")
        for name, call in queries:
            p50, p99 = await timed(pool, repeat, call)
            ok = ok and p99 <= 100
            print(f"{name:<40} {p50:>8.2f} {p99:>8.2f}", flush=True)
        print("target p99 <= 100 ms:", "met" if ok else "NOT met")
        return ok
    finally:
        await pool.close()


def main() -> int:
    districts = int(os.environ.get("BENCH_DISTRICTS", "100"))
    modes = int(os.environ.get("BENCH_MODES", "10"))
    methodologies = int(os.environ.get("BENCH_METHODOLOGIES", "2"))
    repeat = int(os.environ.get("BENCH_REPEAT", "200"))
    with stores.postgres(tuned=False) as pg:
        ok = asyncio.run(run(pg.url, districts, modes, methodologies, repeat))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
