"""Where a daily file's processing time goes, against the batch path on the same records'
shape, in process on one connection (issue 10, item 5: "a 1M-line file at the batch path's
rate"):

1. BENCH_LINES metro trips (bench_file's shape) as signed-batch-sized lists through the
   pipeline, each in its own transaction (what the operator API does per request);
2. BENCH_LINES other trips as one NDJSON file: stored (``create_file``), then processed by
   ``process_file`` (the Celery task's body) chunk by chunk.

Both through one timed connection (bench/profile_ingest.py's TimedConnection): statement time
by statement, and the Python time of each path by function (cProfile).

    flock /tmp/tph-bench.lock .venv/bin/python bench/profile_file.py   # BENCH_LINES=50000
"""

from __future__ import annotations

import asyncio
import collections
import cProfile
import os
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

os.environ.setdefault("BENCH_LINES", "50000")
os.environ.setdefault("BENCH_BATCH_EVENTS", os.environ["BENCH_LINES"])

import bench_file
import msgspec
import stores
from ingest_city import build
from profile_ingest import TimedConnection, print_profile


class TimedPool:
    """A pool whose connections are one timed connection (``process_file`` takes a pool)."""

    def __init__(self, conn: TimedConnection) -> None:
        self._conn = conn

    @asynccontextmanager
    async def acquire(self) -> AsyncIterator[TimedConnection]:
        yield self._conn


def report(label: str, n: int, wall: float, times: dict[str, float], profile: Any) -> None:
    db = sum(times.values())
    print(f"\n== {label}: {n:,} records in {wall:.1f} s = {n / wall:,.0f}/s; ", end="")
    print(f"statements {db:.1f} s ({100 * db / wall:.0f} %), Python {wall - db:.1f} s")
    print_profile(times, wall, profile)


async def run(db_url: str) -> None:
    from behaviours import files
    from behaviours.events import Source, decode_batch
    from behaviours.pipeline import IngestPolicy, ingest
    from kit.db import create_pool, transaction
    from server.app import ingest_policy
    from server.migrate import migrate
    from server.seeds import apply_seeds
    from server.settings import Settings

    lines = bench_file.FILE_LINES
    pool = await create_pool(db_url, min_size=1, max_size=4, command_timeout=3600)
    async with pool.acquire() as conn:
        await migrate(conn)
        await apply_seeds(conn)
    await build(pool, bench_file.RESIDENTS)
    # One stream: both paths on one timed connection, one statement at a time.
    settings = Settings.from_env({"DATABASE_URL": db_url, "TANPUHUI_INGEST_FILE_STREAMS": "1"})
    policy: IngestPolicy = ingest_policy(settings)
    enc = msgspec.json.Encoder()
    start = datetime.now(UTC) - timedelta(days=5, hours=1)
    batch_trips = bench_file.trips(bench_file.BATCH_EVENTS, 0, "m", start, 1)
    bodies = [
        enc.encode({"events": batch_trips[i : i + bench_file.BATCH]})
        for i in range(0, len(batch_trips), bench_file.BATCH)
    ]
    body = b"\n".join(
        enc.encode(t) for t in bench_file.trips(lines, len(batch_trips), "f", start, 2)
    )

    async with pool.acquire() as raw:
        times: collections.defaultdict[str, float] = collections.defaultdict(float)
        conn = TimedConnection(raw, times)
        profile = cProfile.Profile()
        t0 = time.perf_counter()
        for b in bodies:
            profile.enable()
            batch = decode_batch(b)
            async with transaction(TimedPool(conn)) as tx:
                await ingest(tx, Source("metro"), batch.events, policy=policy)
            profile.disable()
        report("batches", len(batch_trips), time.perf_counter() - t0, times, profile)

        async with transaction(pool) as tx:
            file_id, _ = await files.create_file(tx, "metro", "ndjson", body)
        times = collections.defaultdict(float)
        conn = TimedConnection(raw, times)
        profile = cProfile.Profile()
        t0 = time.perf_counter()
        profile.enable()
        status = await files.process_file(TimedPool(conn), policy, file_id)
        profile.disable()
        assert status == "done", status
        report("file", lines, time.perf_counter() - t0, times, profile)
    await pool.close()


def main() -> int:
    with stores.postgres(scratch=True) as pg:
        asyncio.run(run(pg.url))
    return 0


if __name__ == "__main__":
    sys.exit(main())
