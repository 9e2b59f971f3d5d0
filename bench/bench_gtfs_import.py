"""`tanpuhui import-gtfs` on a synthetic feed with millions of stop_times (issue 16): wall time
and the importing process's peak memory (getrusage maxrss of the child).

    BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \\
        .venv/bin/python bench/bench_gtfs_import.py --stop-times 10000000

The feed: a grid city of ``--shapes`` bus lines (each a zigzag of 400 points with 40 stops, a
third of them loops that come back along their first street), and as many trips as make the
stop_times count, written to a temporary .zip (deflate, stop_times.txt not sorted by trip: the
importer must not rely on it). With BENCH_DATABASE_URL a fresh database is created on that
server (and dropped after); without it, an embedded PostgreSQL in a temporary directory.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import math
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

STOPS_PER_SHAPE = 40
POINTS_PER_SHAPE = 400


def shape_points(n: int) -> list[tuple[float, float]]:
    """lon/lat of shape n: a zigzag across a ~20 km city; every third one loops back."""
    lon0, lat0 = 113.9 + (n % 20) * 0.01, 22.45 + (n // 20 % 20) * 0.008
    pts = []
    half = POINTS_PER_SHAPE // 2 if n % 3 == 0 else POINTS_PER_SHAPE
    for k in range(half):
        pts.append((lon0 + k * 0.0005, lat0 + (0.002 if k // 10 % 2 else 0.0) + k * 0.0001))
    if n % 3 == 0:  # a loop: up, back west and down along the first street again
        top = pts[-1]
        for k in range(half):
            f = k / half
            pts.append((top[0] - f * (top[0] - lon0), top[1] + 0.01 * math.sin(math.pi * f)))
    return pts


def write_feed(path: Path, shapes: int, stop_times: int) -> tuple[int, int]:
    trips = math.ceil(stop_times / STOPS_PER_SHAPE)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as z:
        geometry = [shape_points(n) for n in range(shapes)]
        with z.open("shapes.txt", "w") as raw:
            out = io.TextIOWrapper(raw, encoding="utf-8", newline="")
            w = csv.writer(out)
            w.writerow(["shape_id", "shape_pt_lat", "shape_pt_lon", "shape_pt_sequence"])
            for n, pts in enumerate(geometry):
                w.writerows(
                    (f"SH{n}", f"{lat:.6f}", f"{lon:.6f}", k) for k, (lon, lat) in enumerate(pts)
                )
            out.flush()
        with z.open("stops.txt", "w") as raw:
            out = io.TextIOWrapper(raw, encoding="utf-8", newline="")
            w = csv.writer(out)
            w.writerow(["stop_id", "stop_name", "stop_lat", "stop_lon"])
            for n, pts in enumerate(geometry):
                step = len(pts) // STOPS_PER_SHAPE
                for s in range(STOPS_PER_SHAPE):
                    lon, lat = pts[s * step]
                    w.writerow([f"S{n}_{s}", f"stop {n}/{s}", f"{lat + 0.00005:.6f}", f"{lon:.6f}"])
            out.flush()
        with z.open("trips.txt", "w") as raw:
            out = io.TextIOWrapper(raw, encoding="utf-8", newline="")
            w = csv.writer(out)
            w.writerow(["route_id", "service_id", "trip_id", "shape_id"])
            w.writerows((f"R{t % shapes}", "WK", f"T{t}", f"SH{t % shapes}") for t in range(trips))
            out.flush()
        with z.open("stop_times.txt", "w") as raw:
            out = io.TextIOWrapper(raw, encoding="utf-8", newline="")
            w = csv.writer(out)
            w.writerow(["trip_id", "arrival_time", "departure_time", "stop_id", "stop_sequence"])
            written = 0
            # trips interleaved by blocks of 1,000: not grouped by trip in the file
            for base in range(0, trips, 1000):
                block = range(base, min(base + 1000, trips))
                for s in range(STOPS_PER_SHAPE):
                    clock = f"{6 + s // 60:02d}:{s % 60:02d}:00"
                    rows = []
                    for t in block:
                        if written >= stop_times:
                            break
                        rows.append((f"T{t}", clock, clock, f"S{t % shapes}_{s}", s + 1))
                        written += 1
                    w.writerows(rows)
            out.flush()
    return trips, written


async def create_database(url: str, name: str) -> str:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return url.rsplit("/", 1)[0] + "/" + name


async def drop_database(url: str, name: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def migrate_db(url: str) -> None:
    from kit.db import connect
    from server.migrate import migrate

    conn = await connect(url)
    try:
        await migrate(conn)
    finally:
        await conn.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--stop-times", type=int, default=10_000_000)
    parser.add_argument("--shapes", type=int, default=400)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="tph-gtfs-bench-"))
    server_url = os.environ.get("BENCH_DATABASE_URL")
    pg = None
    db_name = f"tph_bench_gtfs_{os.getpid()}"
    try:
        t0 = time.perf_counter()
        feed = tmp / "feed.zip"
        trips, written = write_feed(feed, args.shapes, args.stop_times)
        print(
            f"feed written: {args.shapes} shapes, {args.shapes * STOPS_PER_SHAPE} stops, "
            f"{trips:,} trips, {written:,} stop_times, {feed.stat().st_size / 1e6:.0f} MB zip "
            f"in {time.perf_counter() - t0:.0f} s",
            flush=True,
        )
        if server_url:
            db_url = asyncio.run(create_database(server_url, db_name))
        else:
            from server.embedded import EmbeddedPostgres

            pg = EmbeddedPostgres(tmp / "pg", database="bench")
            db_url = pg.start()
        asyncio.run(migrate_db(db_url))
        env = {**os.environ, "DATABASE_URL": db_url, "TANPUHUI_LOG_LEVEL": "WARNING"}
        t0 = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "server.cli", "import-gtfs", "bench", str(feed)],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
        elapsed = time.perf_counter() - t0
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        print(proc.stdout.strip())
        if proc.returncode != 0:
            print(proc.stderr, file=sys.stderr)
            return 1
        print(
            f"imported {written:,} stop_times in {elapsed:.0f} s "
            f"({written / elapsed:,.0f} rows/s); "
            f"peak RSS of the importing process {peak_mb:.0f} MB",
            flush=True,
        )
        return 0
    finally:
        if server_url:
            asyncio.run(drop_database(server_url, db_name))
        if pg is not None:
            pg.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
