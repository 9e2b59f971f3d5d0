"""Grading benchmark: every enterprise of a synthetic district graded for a year.

    flock /tmp/tph-bench.lock .venv/bin/python bench/bench_grades.py

The district is H4's generator (``enterprises.synthetic.district``: a dozen industries, cement
planted carbon-intensive, deterministic by seed). Its enterprises are registered through the
registry's import; their year of monthly activity (the meters' electricity as the generator
shapes it, the monthly reports' fuels, green electricity, output, added value and tax) goes in
as the ``ActivityRow`` s the data side answers and is recorded by ``enterprises.accounting``
(the 15-minute readings themselves are bench/bench_meters.py's business, not this one's). Then
it measures ``enterprises.grades.grade_year`` for the year (the issue's target: ≤ 2 s), the
previous year recorded too so the year-on-year efficiency indicator has data, and one
enterprise's explanation.

``BENCH_DATABASE_URL``: a server on which a fresh database is created and dropped afterwards;
otherwise an embedded PostgreSQL in a temporary directory. Knobs: ``BENCH_ENTERPRISES`` (300,
the issue's district; 2,000 is a region), ``BENCH_REPEAT`` (5 timed gradings).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import time
from collections import Counter
from datetime import date
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import stores

from enterprises import accounting, accounting_repository, grades, service, synthetic
from enterprises.activity import ActivityRow
from enterprises.factors import Basis
from enterprises.settings import EnterprisesSettings
from integrations.districts import read_districts_file
from kit.db import connect, create_pool, transaction
from server.migrate import migrate
from server.seeds import apply_seeds

YEAR = 2025


def activity_of(d: synthetic.District, ids: dict[str, Any], year: int) -> list[ActivityRow]:
    """The district's year as the data side's monthly activity answers it."""
    out: list[ActivityRow] = []
    for e in d.enterprises:
        eid = ids[e.registration.credit_code]
        for report in synthetic.reports(e, year, d.seed):
            month = report.period_start
            out.append(
                ActivityRow(
                    enterprise_id=eid,
                    month=month,
                    kind="electricity",
                    quantity=synthetic.monthly_electricity_kwh(e, month),
                    source="meter",
                )
            )
            out += [
                ActivityRow(
                    enterprise_id=eid,
                    month=month,
                    kind=line.kind,
                    quantity=line.quantity,
                    source="report",
                )
                for line in report.lines
            ]
    return out


async def run(url: str, n: int, repeat: int) -> None:
    conn = await connect(url)
    try:
        await migrate(conn)
        await apply_seeds(conn, "440300")
    finally:
        await conn.close()
    pool = await create_pool(url, min_size=1, max_size=4)
    settings = EnterprisesSettings()
    try:
        async with transaction(pool) as tx:
            from behaviours import service as behaviours

            await behaviours.import_districts(tx, read_districts_file(synthetic.TEST_DISTRICTS))
            codes = await synthetic.district_codes(tx)
        d = synthetic.district(seed=7, enterprises=n, year=YEAR, districts=codes)
        csv = "credit_code,name,industry,district,size_class\n" + "".join(
            f"{r.credit_code},{r.name},{r.industry},{r.district},{r.size_class}\n"
            for r in (e.registration for e in d.enterprises)
        )
        async with transaction(pool) as tx:
            await service.import_csv(tx, csv)
            found = await service.enterprises_by_credit_code(
                tx.conn, [e.registration.credit_code for e in d.enterprises]
            )
        ids = {c: e.id for c, e in found.items()}
        for year in (YEAR - 1, YEAR):
            rows = activity_of(d, ids, year)
            t0 = time.perf_counter()
            async with transaction(pool) as tx:
                done = await accounting.record(
                    tx,
                    rows,
                    start=date(year, 1, 1),
                    end=date(year + 1, 1, 1),
                    basis=Basis.of(settings),
                )
            print(
                f"recorded {year}: {len(rows):,} activity rows -> {done.rows:,} emission rows "
                f"of {done.enterprises} enterprises in {time.perf_counter() - t0:.2f} s",
                flush=True,
            )
        async with pool.acquire() as c:
            await c.execute("ANALYZE")
            timings = []
            result: list[grades.Assessment] = []
            for _ in range(repeat):
                t0 = time.perf_counter()
                result = await grades.grade_year(c, YEAR, settings)
                timings.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            rows = await accounting_repository.yearly_kinds(
                c, Basis.of(settings).label, YEAR - 1, YEAR
            )
            fetch_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            first = result[0].grade.enterprise_id
            why = await grades.explain(c, first, YEAR, settings)
            explain_s = time.perf_counter() - t0
        graded = Counter(a.grade.grade for a in result)
        colours = Counter(a.index.colour for a in result)
        cement = [a for a in result if a.grade.industry == "C30"]
        print(
            f"graded {len(result)} enterprises of {YEAR}: "
            f"median {statistics.median(timings):.3f} s, max {max(timings):.3f} s "
            f"over {repeat} runs (target <= 2 s); of which the one statement "
            f"({len(rows):,} rows) {fetch_s:.3f} s",
            flush=True,
        )
        print(
            "grades "
            + ", ".join(f"{g}: {graded[g]}" for g in (1, 2, 3, 4, 5, None))
            + "; index "
            + ", ".join(f"{c}: {colours[c]}" for c in ("green", "yellow", "red", None))
            + f"; cement bands {Counter(a.grade.band for a in cement)}",
            flush=True,
        )
        assert why is not None
        print(f"one enterprise's explanation in {explain_s * 1000:.0f} ms", flush=True)
    finally:
        await pool.close()


def main() -> int:
    n = int(os.environ.get("BENCH_ENTERPRISES", "300"))
    repeat = int(os.environ.get("BENCH_REPEAT", "5"))
    with stores.postgres(tuned=False) as pg:
        asyncio.run(run(pg.url, n, repeat))
    return 0


if __name__ == "__main__":
    sys.exit(main())
