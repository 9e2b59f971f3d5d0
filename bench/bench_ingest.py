"""Ingestion benchmark: signed HTTP batches through the real API, verified + quantified +
credited + durable.

    flock /tmp/tph-bench.lock .venv/bin/python bench/bench_ingest.py
    BENCH_EVENTS=1000000 BENCH_RESIDENTS=1000000 BENCH_CONCURRENCY=4 BENCH_WORKERS=2 ...

Builds a synthetic city (bench/ingest_city.py), starts BENCH_WORKERS single-process API servers
(``start_servers``: connections spread over them round robin, as by a load balancer),
pre-encodes the batches (5,000 records: ~70 % metro trips between GTFS stops without a distance,
~25 % shared-bike trips, ~5 % meant to be rejected: unknown subjects and too-fast rides), then
pushes them over BENCH_CONCURRENCY keep-alive connections, each request signed when sent.
Stores: BENCH_DATABASE_URL / BENCH_REDIS_URL, or embedded ones in a temporary directory.
Prints events/s, p50/p99 batch latency, verdicts by reason, then runs the ledger audit.

BENCH_STORED=10000000 first stores that many credited events of the year before
(bench/history.py), so the run measures the cost with a history.

Then, in the same run, the bare stack's ceiling (bench/bench_ceiling.py: the same HTTP server
and batches, the same rows COPYed durably, no logic) and the ratio of the two figures; then the
credit floor (the ceiling plus the least a durable per-resident credit writes: one transfer per
batch, two postings and two balance updates per record, still no logic).
BENCH_CEILING_SHAPES=events,postings,credit adds the postings appended without the balances.
BENCH_CEILING=0 skips it, BENCH_CEILING=only runs it alone (`python bench/bench_ceiling.py`).
"""

from __future__ import annotations

import asyncio
import collections
import os
import random
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import msgspec
import stores
from ingest_city import LINES, SECRET, STOPS_PER_LINE, build, stops_of_line

from kit.auth import sign_request

EVENTS = int(os.environ.get("BENCH_EVENTS", "1000000"))
RESIDENTS = int(os.environ.get("BENCH_RESIDENTS", "1000000"))
BATCH = int(os.environ.get("BENCH_BATCH", "5000"))
CONCURRENCY = int(os.environ.get("BENCH_CONCURRENCY", "4"))
WORKERS = int(os.environ.get("BENCH_WORKERS", "2"))
STORED = int(os.environ.get("BENCH_STORED", "0"))  # events already stored (bench/history.py)
CEILING = os.environ.get("BENCH_CEILING", "1")  # 1: after ingestion, 0: no, only: it alone
# The ceiling's shapes, in order (bench/bench_ceiling.py); the first is the ratio's.
CEILING_SHAPES = os.environ.get("BENCH_CEILING_SHAPES", "events,credit").split(",")
PATH = "/api/operators/v1/events"

# The embedded server's configuration for the run (ALTER SYSTEM + restart; BENCH_PG_DEFAULTS=1
# keeps PostgreSQL's defaults). Durability is untouched: fsync, synchronous_commit and
# full_page_writes stay on, every batch's commit waits for its WAL flush.


def make_batches(now: datetime) -> list[tuple[str, bytes]]:
    """(operator, body) pairs. Event i belongs to resident i % RESIDENTS at a time slot of its
    own, so residents' trips never overlap (rejections come only from the deliberate ~5 %)."""
    rnd = random.Random(42)
    enc = msgspec.json.Encoder()
    lines = [stops_of_line(n) for n in range(LINES)]
    out: list[tuple[str, bytes]] = []
    events: list[dict[str, Any]] = []
    op = "metro"
    for i in range(EVENTS):
        r = i % RESIDENTS
        round_ = i // RESIDENTS
        start = now - timedelta(days=5, hours=1) + timedelta(hours=round_ * 3, seconds=r % 3600)
        kind = "metro" if (i // BATCH) % 4 != 3 else "bikes"  # batches are per operator
        subject = f"s{r}" if rnd.random() > 0.03 else f"nobody{i}"
        if kind == "metro":
            line = lines[rnd.randrange(LINES)]
            a = rnd.randrange(STOPS_PER_LINE - 3)
            b = a + rnd.randrange(2, min(12, STOPS_PER_LINE - a))
            ride_min = 3 * (b - a) + 2
            events.append(
                {
                    "type": "transit_trip",
                    "record_id": f"m{i}",
                    "subject": subject,
                    "mode": "metro",
                    "boarded_at": start.isoformat(),
                    "alighted_at": (start + timedelta(minutes=ride_min)).isoformat(),
                    "boarding_stop": line[a][0],
                    "alighting_stop": line[b][0],
                }
            )
        else:
            lat, lon = 22.5 + rnd.random() * 0.2, 113.85 + rnd.random() * 0.5
            dist = rnd.randrange(800, 6000)
            minutes = dist / 1000 / 14 * 60 if rnd.random() > 0.02 else dist / 1000 / 40 * 60
            events.append(
                {
                    "type": "bike_trip",
                    "record_id": f"b{i}",
                    "subject": subject,
                    "mode": "shared_bike",
                    "started_at": start.isoformat(),
                    "ended_at": (start + timedelta(minutes=minutes)).isoformat(),
                    "start": {"lat": lat, "lon": lon},
                    "end": {"lat": lat + 0.005, "lon": lon + 0.005},
                    "distance_m": dist,
                }
            )
        op = kind
        if len(events) == BATCH:
            out.append((op, enc.encode({"events": events})))
            events = []
    if events:
        out.append((op, enc.encode({"events": events})))
    return out


async def post(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    op: str,
    body: bytes,
    *,
    path: str = PATH,
    secret: str = SECRET,
) -> tuple[int, bytes]:
    """One signed POST over a keep-alive connection (signed when sent, as an operator does)."""
    headers = sign_request(secret, "POST", path, body, operator_id=op, key_id="k1")
    head = (
        f"POST {path} HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n"
        + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        + "\r\n"
    )
    writer.write(head.encode() + body)
    await writer.drain()
    status = int((await reader.readline()).split()[1])
    length = 0
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b""):
            break
        name, _, value = line.decode("latin-1").partition(":")
        if name.lower() == "content-length":
            length = int(value)
    return status, await reader.readexactly(length)


async def push(ports: list[int], batches: list[tuple[str, bytes]]) -> dict[str, Any]:
    queue: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue()
    for b in batches:
        queue.put_nowait(b)
    latencies: list[float] = []
    verdicts: collections.Counter[str] = collections.Counter()
    errors: collections.Counter[int] = collections.Counter()
    dec = msgspec.json.Decoder()

    async def client(c: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", ports[c % len(ports)])
        while not queue.empty():
            op, body = queue.get_nowait()
            t0 = time.perf_counter()
            status, content = await post(reader, writer, op, body)
            latencies.append(time.perf_counter() - t0)
            if status in (409, 503):
                # "resend the batch" answers (concurrent ingest of the same records, a store
                # timeout): nothing was kept, so an operator sends it again as it is (signed anew).
                errors[status] += 1
                print(f"HTTP {status} (resent): {content[:200]!r}", file=sys.stderr)
                queue.put_nowait((op, body))
                continue
            if status != 200:
                errors[status] += 1
                print(f"HTTP {status}: {content[:300]!r}", file=sys.stderr)
                continue
            for v in dec.decode(content)["results"]:
                verdicts[v["reason_code"] or v["status"]] += 1
        writer.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(client(c) for c in range(CONCURRENCY)))
    elapsed = time.perf_counter() - t0
    latencies.sort()
    return {
        "elapsed": elapsed,
        "latencies": latencies,
        "verdicts": verdicts,
        "errors": errors,
    }


def api_command(port: int) -> list[str]:
    """One API process (the app's own uvicorn options) on ``port``."""
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        "server.app:create_app_from_env",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-access-log",
        "--log-level",
        "warning",
        "--loop",
        "uvloop",
        "--http",
        "server.http_limits:BoundedHttpToolsProtocol",
    ]


def start_servers(
    command: Any, n: int, env: dict[str, str]
) -> list[tuple[subprocess.Popen[bytes], int]]:
    """``n`` single-process servers on ``n`` ports; clients spread their connections over the
    ports round robin, as a load balancer in front of ``n`` stateless API processes does.

    Not ``uvicorn --workers n``: its workers share one listening socket and the first to wake
    accepts every pending connection, so a few long-lived connections (a benchmark's, or a
    region's few operators') can all land on one worker while the others idle: measured here,
    6.9 s of 7.4 s of the API's CPU on one of 4 workers (BENCHMARKS.md, "Meter readings")."""
    servers = []
    for _ in range(n):
        port = free_port()
        servers.append((subprocess.Popen(command(port), env=env), port))
    for _, port in servers:
        wait_for(port)
    return servers


def stop_servers(servers: list[tuple[subprocess.Popen[bytes], int]]) -> None:
    for proc, _ in servers:
        proc.terminate()
    for proc, _ in servers:
        proc.wait(30)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def prepare(db_url: str) -> None:
    from kit.db import create_pool
    from server.migrate import migrate
    from server.seeds import apply_seeds

    pool = await create_pool(db_url, min_size=1, max_size=4, command_timeout=3600)
    async with pool.acquire() as conn:
        await migrate(conn)
        await apply_seeds(conn)
    t0 = time.perf_counter()
    await build(pool, RESIDENTS)
    print(
        f"city built: {RESIDENTS:,} residents linked to 2 operators in "
        f"{time.perf_counter() - t0:.1f} s",
        flush=True,
    )
    if STORED:
        import history

        async with pool.acquire() as conn:
            await history.preload(conn, STORED)
    await pool.close()


async def audit(db_url: str) -> int:
    """Seal every committed batch into the journal (what the periodic task does in production),
    then run the same audit as `tanpuhui audit`: chain, Merkle roots, re-derived balances."""
    from kit.db import connect, transaction_on
    from points.audit import run_audit_cli
    from points.journal import seal

    conn = await connect(db_url)
    try:
        while True:
            async with transaction_on(conn) as tx:
                if await seal(tx) == 0:
                    break
    finally:
        await conn.close()
    status: int = await run_audit_cli(db_url)
    return status


def main() -> int:
    with stores.postgres(scratch=False) as pg, stores.redis() as redis_url:
        return run(pg.url, redis_url)


def run(db_url: str, redis_url: str) -> int:
    servers: list[tuple[subprocess.Popen[bytes], int]] = []
    try:
        if CEILING != "only":
            asyncio.run(prepare(db_url))
        t0 = time.perf_counter()
        batches = make_batches(datetime.now(UTC))
        print(
            f"{len(batches)} batches pre-encoded in {time.perf_counter() - t0:.1f} s "
            f"({sum(len(b) for _, b in batches) / 1e6:.0f} MB)",
            flush=True,
        )
        if CEILING == "only":
            return 0 if ceiling(db_url, batches) else 1
        env = {
            **os.environ,
            "DATABASE_URL": db_url,
            "REDIS_URL": redis_url,
            "TANPUHUI_LOG_LEVEL": "WARNING",
            "TANPUHUI_HTTP_MAX_BODY_BYTES": str(64 * 1024 * 1024),
        }
        servers = start_servers(api_command, WORKERS, env)
        ports = [port for _, port in servers]
        # warm-up: every worker loads the reference data (not counted)
        asyncio.run(push(ports, make_warmup()))
        result = asyncio.run(push(ports, batches))
        rate = report(result, f"{WORKERS} API workers")
        for k, v in result["verdicts"].most_common():
            print(f"  {k:24} {v:>10,}  {100 * v / sum(result['verdicts'].values()):6.2f} %")
        if result["errors"]:
            print(f"HTTP errors: {dict(result['errors'])}")
        stop_servers(servers)
        servers = []
        status = asyncio.run(audit(db_url))
        print(f"tanpuhui audit: {'passed' if status == 0 else 'FAILED'}")
        if CEILING != "0":
            bare = ceiling(db_url, batches)
            if bare:
                print(
                    f"\nratio: ingestion {rate:,.0f} / ceiling {bare:,.0f} events/s = "
                    f"{rate / bare:.3f}"
                )
        return status
    finally:
        stop_servers(servers)


def wait_for(port: int) -> None:
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)


def report(result: dict[str, Any], servers: str) -> float:
    """Print the run's figures; its events/s."""
    n = sum(result["verdicts"].values())
    lat = result["latencies"]
    rate: float = n / result["elapsed"]
    print(f"\nevents: {n:,} in {len(lat)} batches of {BATCH}, {CONCURRENCY} connections, {servers}")
    print(f"throughput: {rate:,.0f} events/s ({result['elapsed']:.1f} s)")
    print(
        f"batch latency: p50 {lat[len(lat) // 2] * 1000:.0f} ms, "
        f"p99 {lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000:.0f} ms"
    )
    return rate


def ceiling(db_url: str, batches: list[tuple[str, bytes]]) -> float:
    """The bare stack's figures for the same batches, one per shape of CEILING_SHAPES
    (bench/bench_ceiling.py: the ceiling, the credit floor...); the first, 0 on failure."""
    import bench_ceiling

    titles = {
        "events": "bare-stack ceiling (same HTTP server and batches, same rows COPYed, no logic)",
        "postings": "the ceiling + one transfer and two postings per record, appended only",
        "credit": "credit floor (the ceiling + one transfer, two postings and two balance "
                  "updates per record, no logic)",
    }  # fmt: skip
    figures = []
    for shape in CEILING_SHAPES:
        title = titles[shape]
        opened = bench_ceiling.subjects(batches) if shape != "events" else None
        asyncio.run(bench_ceiling.create_table(db_url, opened))
        servers = start_servers(
            bench_ceiling.command,
            WORKERS,
            {**os.environ, "CEILING_DATABASE_URL": db_url, "CEILING_SHAPE": shape},
        )
        ports = [port for _, port in servers]
        try:
            asyncio.run(push(ports, make_warmup()))
            result = asyncio.run(push(ports, batches))
        finally:
            stop_servers(servers)
        print(f"\n{title}:")
        figures.append(report(result, f"{WORKERS} server workers"))
        if result["errors"]:
            print(f"HTTP errors: {dict(result['errors'])}")
            return 0.0
    return figures[0]


def make_warmup() -> list[tuple[str, bytes]]:
    enc = msgspec.json.Encoder()
    return [(op, enc.encode({"events": []})) for op in ("metro", "bikes") for _ in range(8)]


if __name__ == "__main__":
    sys.exit(main())
