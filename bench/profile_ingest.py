"""Where ingestion's time goes: the ingestion benchmark's batches through the pipeline in
process, one after the other on one connection, with two views (issue 10, item 3's starting
point):

- statement time by statement (a wrapping connection times every asyncpg call the pipeline and
  the ledger make, and the commit), so the database's share is seen per statement;
- Python time by function (cProfile, own time and cumulative), the database waits excluded
  (a coroutine's frame leaves the stack while it awaits).

    flock /tmp/tph-bench.lock .venv/bin/python bench/profile_ingest.py
    BENCH_EVENTS=100000 BENCH_RESIDENTS=100000 BENCH_TOP=25 ...

Stores: BENCH_DATABASE_URL, or an embedded PostgreSQL in a temporary directory with the
ingestion benchmark's TUNED configuration. No HTTP: the request's decode is timed as
``decode_batch``, the signature check and the HTTP server are not in it.
"""

from __future__ import annotations

import asyncio
import collections
import cProfile
import io
import os
import pstats
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

os.environ.setdefault("BENCH_EVENTS", "100000")
os.environ.setdefault("BENCH_RESIDENTS", "100000")

import bench_ingest
import stores
from ingest_city import build

TOP = int(os.environ.get("BENCH_TOP", "25"))


class TimedConnection:
    """An asyncpg connection whose statements are timed by their first words."""

    def __init__(self, conn: Any, times: collections.defaultdict[str, float]) -> None:
        self._conn, self._times = conn, times

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._conn, name)
        if name not in {"fetch", "fetchrow", "fetchval", "execute", "copy_records_to_table"}:
            return attr

        async def timed(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return await attr(*args, **kwargs)
            finally:
                self._times[_label(name, args)] += time.perf_counter() - t0

        return timed


def _label(method: str, args: tuple[Any, ...]) -> str:
    if method == "copy_records_to_table":
        return f"COPY {args[0]}"
    words = " ".join(str(args[0]).split())
    return words[:90]


async def run(db_url: str) -> None:
    from behaviours.events import Source, decode_batch
    from behaviours.pipeline import IngestPolicy, ingest
    from kit.db import Tx, create_pool
    from server.app import ingest_policy
    from server.migrate import migrate
    from server.seeds import apply_seeds
    from server.settings import Settings

    pool = await create_pool(db_url, min_size=1, max_size=4, command_timeout=3600)
    async with pool.acquire() as conn:
        await migrate(conn)
        await apply_seeds(conn)
    await build(pool, bench_ingest.RESIDENTS)
    batches = bench_ingest.make_batches(datetime.now(UTC))
    settings = Settings.from_env({"DATABASE_URL": db_url})
    policy: IngestPolicy = ingest_policy(settings)
    times: collections.defaultdict[str, float] = collections.defaultdict(float)
    profile = cProfile.Profile()
    events = 0
    t_all = time.perf_counter()
    async with pool.acquire() as raw:
        conn = TimedConnection(raw, times)
        for op, body in batches:
            profile.enable()
            t0 = time.perf_counter()
            batch = decode_batch(body)
            times["(python) decode_batch"] += time.perf_counter() - t0
            tr = raw.transaction()
            await tr.start()
            verdicts = await ingest(Tx(conn), Source(op), batch.events, policy=policy)
            t0 = time.perf_counter()
            await tr.commit()
            times["COMMIT"] += time.perf_counter() - t0
            profile.disable()
            events += len(verdicts)
    wall = time.perf_counter() - t_all
    await pool.close()
    db = sum(v for k, v in times.items() if not k.startswith("(python)"))
    print(f"\n{events:,} events in {len(batches)} batches, sequential: {wall:.1f} s, ", end="")
    print(f"{events / wall:,.0f} events/s; statements {db:.1f} s ({100 * db / wall:.0f} %)")
    print_profile(times, wall, profile)


def print_profile(times: dict[str, float], wall: float, profile: cProfile.Profile) -> None:
    """Statement time by statement (share of ``wall``), then cProfile's own and cumulative
    time (bench/profile_file.py prints its two paths with it too)."""
    print("\nstatement time (s, share of the wall time):")
    for label, t in sorted(times.items(), key=lambda kv: -kv[1])[:TOP]:
        print(f"  {t:7.2f}  {100 * t / wall:5.1f} %  {label}")
    out = io.StringIO()
    stats = pstats.Stats(profile, stream=out)
    stats.sort_stats("tottime").print_stats(TOP)
    stats.sort_stats("cumulative").print_stats(TOP)
    print("\nPython (cProfile, database waits excluded):")
    print(out.getvalue())


def main() -> int:
    with stores.postgres(scratch=False) as pg:
        asyncio.run(run(pg.url))
    return 0


if __name__ == "__main__":
    sys.exit(main())
