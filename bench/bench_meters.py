"""Meter readings benchmark: signed HTTP batches through the real API (`/api/meters/v1/readings`),
converted, derived (flags, monthly sums, touched months) and durable.

    flock /tmp/tph-bench.lock .venv/bin/python bench/bench_meters.py
    BENCH_READINGS=1000000 BENCH_PUSHERS=4 BENCH_METERS_PER_PUSHER=1250 BENCH_WORKERS=2 ...

A region's shape: BENCH_PUSHERS utilities, each pushing BENCH_METERS_PER_PUSHER cumulative
15-minute electricity meters (20 per enterprise); every batch is one pusher's hour: 4 readings of
each of its meters (5,000 readings), sent in order over one keep-alive connection per pusher
(a pusher's hours arrive in order, pushers in parallel), each request signed when sent. About
0.1 % of the readings are anomalies (a register going backwards, a spike), flagged by the API.
Stores: BENCH_DATABASE_URL / BENCH_REDIS_URL, or embedded ones in a temporary directory, tuned
as bench/bench_ingest.py tunes them (durability untouched: fsync and synchronous_commit on).
Prints readings/s, p50/p99 batch latency and the verdicts, then checks that the months' sums
accounting reads equal what the verdicts counted.
"""

from __future__ import annotations

import asyncio
import collections
import os
import random
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import msgspec
import stores
from bench_ingest import api_command, post, start_servers, stop_servers

READINGS = int(os.environ.get("BENCH_READINGS", "1000000"))
PUSHERS = int(os.environ.get("BENCH_PUSHERS", "4"))
METERS = int(os.environ.get("BENCH_METERS_PER_PUSHER", "1250"))
PER_BATCH = int(os.environ.get("BENCH_READINGS_PER_METER", "4"))  # an hour of 15-minute data
WORKERS = int(os.environ.get("BENCH_WORKERS", "2"))
METERS_PER_ENTERPRISE = 20
PATH = "/api/meters/v1/readings"
SECRET = "bench-meters-secret-0123456789abcdef"
Q = timedelta(minutes=15)


def pusher(p: int) -> str:
    return f"bench-grid-{p}"


def make_batches(start: datetime) -> dict[str, list[bytes]]:
    """Each pusher's batches in order: hour h holds readings h·4+1 .. h·4+4 of every meter."""
    rnd = random.Random(42)
    enc = msgspec.json.Encoder()
    per_pusher = READINGS // PUSHERS
    hours = max(1, per_pusher // (METERS * PER_BATCH))
    out: dict[str, list[bytes]] = {}
    for p in range(PUSHERS):
        registers = [rnd.uniform(1e4, 1e6) for _ in range(METERS)]
        batches = []
        for h in range(hours):
            readings = []
            for m in range(METERS):
                for k in range(1, PER_BATCH + 1):
                    step = rnd.uniform(20, 30)
                    odd = rnd.random()
                    if odd < 0.0005:
                        value = registers[m] - 100  # backwards (the register is not moved)
                    else:
                        registers[m] += step * (40 if odd < 0.001 else 1)  # a spike
                        value = registers[m]
                    readings.append(
                        {
                            "meter": f"m{m}",
                            "at": (start + (h * PER_BATCH + k) * Q).isoformat(),
                            "value": round(value, 2),
                        }
                    )
            batches.append(enc.encode({"readings": readings}))
        out[pusher(p)] = batches
    return out


async def push(ports: list[int], batches: dict[str, list[bytes]]) -> dict[str, Any]:
    latencies: list[float] = []
    verdicts: collections.Counter[str] = collections.Counter()
    errors: collections.Counter[int] = collections.Counter()
    quantity = [0.0]
    dec = msgspec.json.Decoder()

    async def client(c: int, op: str, queue: list[bytes]) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", ports[c % len(ports)])
        i = 0
        while i < len(queue):
            t0 = time.perf_counter()
            status, content = await post(reader, writer, op, queue[i], path=PATH, secret=SECRET)
            latencies.append(time.perf_counter() - t0)
            if status == 503:  # "not now": nothing was kept, resend the same batch
                errors[status] += 1
                continue
            i += 1
            if status != 200:
                errors[status] += 1
                print(f"HTTP {status}: {content[:300]!r}", file=sys.stderr)
                continue
            for v in dec.decode(content)["results"]:
                verdicts[v.get("reason_code") or v["status"]] += 1
                quantity[0] += v.get("quantity") or 0.0
        writer.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(client(c, op, q) for c, (op, q) in enumerate(batches.items())))
    elapsed = time.perf_counter() - t0
    latencies.sort()
    return {
        "elapsed": elapsed,
        "latencies": latencies,
        "verdicts": verdicts,
        "errors": errors,
        "quantity": quantity[0],
    }


async def prepare(db_url: str) -> None:
    from behaviours import service as behaviours
    from enterprises import energy, service
    from enterprises.energy_schemas import MeterIn, SiteIn
    from integrations.districts import read_districts_file
    from kit.db import create_pool, transaction
    from server.migrate import migrate
    from server.seeds import apply_seeds
    from server.settings import PrivacySettings

    pool = await create_pool(db_url, min_size=1, max_size=4, command_timeout=3600)
    async with pool.acquire() as conn:
        await migrate(conn)
        await apply_seeds(conn)
    t0 = time.perf_counter()
    districts = Path(__file__).resolve().parents[1] / "tests/integrations/data/districts.geojson"
    enterprises = PUSHERS * METERS // METERS_PER_ENTERPRISE
    async with transaction(pool) as tx:
        await behaviours.import_districts(tx, read_districts_file(districts))
        lines = ["credit_code,name,industry,district,size_class"]
        for n in range(enterprises):
            first17 = f"91440303{n:08d}B"
            lines.append(f"{first17}{service.check_character(first17)},企业{n},C3311,440303,above")
        await service.import_csv(tx, "\n".join(lines) + "\n")
        for p in range(PUSHERS):
            await behaviours.register_operator(
                tx, pusher(p), name=f"Grid {p}", kind="utility", region_code="440300"
            )
            await behaviours.add_signing_key(tx, pusher(p), "k1", SECRET, privacy=PrivacySettings())
    codes = [line.split(",")[0] for line in lines[1:]]
    async with pool.acquire() as conn:
        ids = [e.id for e in (await service.enterprises_by_credit_code(conn, codes)).values()]
    ids.sort()
    async with transaction(pool) as tx:
        for n, eid in enumerate(ids):
            site = await energy.add_site(tx, eid, SiteIn(name="厂区"))
            for k in range(METERS_PER_ENTERPRISE):
                g = n * METERS_PER_ENTERPRISE + k
                await energy.add_meter(
                    tx,
                    eid,
                    MeterIn(
                        site_id=site.id,
                        ref=f"m{g % METERS}",
                        kind="electricity",
                        unit="kWh",
                        pusher=pusher(g // METERS),
                    ),
                )
    print(
        f"district built: {enterprises} enterprises, {PUSHERS * METERS} meters, "
        f"{PUSHERS} pushers in {time.perf_counter() - t0:.1f} s",
        flush=True,
    )
    await pool.close()


async def summed(db_url: str, start: datetime) -> float:
    """What accounting reads for the run's months (the meters' sums, flagged ones excluded)."""
    from enterprises import energy
    from kit.db import connect

    conn = await connect(db_url)
    try:
        rows = await energy.monthly_activity(
            conn, start=date(start.year, start.month, 1) - timedelta(days=40), end=date(2100, 1, 1)
        )
    finally:
        await conn.close()
    return sum(r.quantity for r in rows if r.kind == "electricity")


def _stat(pid: int) -> list[str]:
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rpartition(")")[2].split()


def cpu_seconds(root: int) -> float:
    """CPU seconds used by ``root`` and its descendants (live ones, and those it waited for):
    what a run cost on a shared machine, whatever else ran beside it."""
    children: dict[int, list[int]] = collections.defaultdict(list)
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                children[int(_stat(int(entry))[1])].append(int(entry))
            except (OSError, IndexError):
                continue
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        try:
            fields = _stat(pid)
        except OSError:
            continue
        total += sum(int(x) for x in fields[11:15])  # utime stime cutime cstime
        todo.extend(children.get(pid, []))
    return total / os.sysconf("SC_CLK_TCK")


def main() -> int:
    with stores.postgres(scratch=False) as pg, stores.redis() as redis_url:
        return run(pg, redis_url)


def run(pg: stores.Postgres, redis_url: str) -> int:
    db_url = pg.url
    embedded = pg.embedded is not None
    servers: list[Any] = []
    try:
        asyncio.run(prepare(db_url))
        start = (datetime.now(UTC) - timedelta(days=60)).replace(minute=0, second=0, microsecond=0)
        t0 = time.perf_counter()
        batches = make_batches(start)
        n_batches = sum(len(b) for b in batches.values())
        size = sum(len(x) for b in batches.values() for x in b)
        print(
            f"{n_batches} batches pre-encoded in {time.perf_counter() - t0:.1f} s "
            f"({size / 1e6:.0f} MB)",
            flush=True,
        )
        env = {
            **os.environ,
            "DATABASE_URL": db_url,
            "REDIS_URL": redis_url,
            "TANPUHUI_LOG_LEVEL": "WARNING",
        }
        servers = start_servers(api_command, WORKERS, env)
        ports = [port for _, port in servers]
        warmup = {pusher(p): [b'{"readings": []}'] * 4 for p in range(PUSHERS)}
        asyncio.run(push(ports, warmup))
        workers = [proc.pid for proc, _ in servers]
        roots = list(workers)
        if pg.postmaster_pid is not None:
            roots.append(pg.postmaster_pid)
        cpu0 = [cpu_seconds(r) for r in roots]
        split0 = [cpu_seconds(w) for w in workers]
        result = asyncio.run(push(ports, batches))
        cpu = [cpu_seconds(r) - c for r, c in zip(roots, cpu0, strict=True)]
        cpu = [sum(cpu[: len(workers)]), *cpu[len(workers) :]]
        split = [cpu_seconds(w) - c for w, c in zip(workers, split0, strict=True)]
        n = sum(result["verdicts"].values())
        lat = result["latencies"]
        print(
            f"\nreadings: {n:,} in {len(lat)} batches of {METERS * PER_BATCH}, "
            f"{PUSHERS} pushers (connections), {WORKERS} API workers"
        )
        print(f"throughput: {n / result['elapsed']:,.0f} readings/s ({result['elapsed']:.1f} s)")
        print(
            f"batch latency: p50 {lat[len(lat) // 2] * 1000:.0f} ms, "
            f"p99 {lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000:.0f} ms"
        )
        print(
            "CPU: API workers "
            + f"{cpu[0]:.1f} s ({1e6 * cpu[0] / n:.0f} µs a reading)"
            + (
                f", PostgreSQL {cpu[1]:.1f} s ({1e6 * cpu[1] / n:.0f} µs a reading)"
                if embedded
                else ""
            )
            + f" -> {n / sum(cpu):,.0f} readings per CPU-second"
        )
        print("CPU of each API worker: " + ", ".join(f"{c:.1f} s" for c in split))
        for k, v in result["verdicts"].most_common():
            print(f"  {k:24} {v:>10,}  {100 * v / n:6.2f} %")
        if result["errors"]:
            print(f"HTTP errors: {dict(result['errors'])}")
        total = asyncio.run(summed(db_url, start))
        ok = abs(total - result["quantity"]) <= 1e-6 * max(1.0, total)
        print(
            f"monthly sums read by accounting: {total:,.1f} kWh; verdicts counted "
            f"{result['quantity']:,.1f} kWh: {'equal' if ok else 'DIFFERENT'}"
        )
        return 0 if ok and not result["errors"] else 1
    finally:
        stop_servers(servers)


if __name__ == "__main__":
    sys.exit(main())
