"""Offset retirement benchmark: 100,000 retirements of pooled residents' reductions by
enterprises, each what ``POST .../offsets/retirements`` runs after its guard (not through HTTP):
``enterprises.offsets.retire`` inside ``kit.idempotency.replay_or_run``, one transaction per
retirement (its lock, the cap from the enterprise's accounting, the held serials split, one
ledger transfer to the enterprise's retired offsets account), from concurrent clients on one
pool; then the journal sealed and ``tanpuhui audit`` run on the database (a subprocess: the
real command).

    flock /tmp/tph-bench.lock .venv/bin/python bench/bench_retirements.py

Set-up, set-wise where it matters: districts, ``BENCH_ENTERPRISES`` enterprises (200) through
the registry's import, a year of electricity for each recorded by the accounting in one call,
``BENCH_TRIPS`` residents' metro trips (3,000) ingested through the behaviours pipeline in
batches of 500, the year's grams pooled into one block, and one purchase per enterprise (all of
its share). Then ``BENCH_RETIREMENTS`` (100,000) retirements of 1 to 10 g each, from
``BENCH_CLIENTS`` (16) clients, each client retiring for its own enterprises (as the
enterprises' consoles would: an enterprise's retirements take its lock one after the other).

``BENCH_DATABASE_URL``: a server on which a fresh database is created (and dropped afterwards);
otherwise an embedded PostgreSQL in a temporary directory with the benchmarks' configuration
(``stores.TUNED``; durable commits). Prints the set-up, the rate with p50/p99 latency, the
check (ledger balances against the holdings) and the audit's verdict; exit status 1 if the
audit fails.
"""

from __future__ import annotations

import asyncio
import os
import random
import subprocess
import sys
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import stores
import uvloop

from behaviours import service as behaviours
from behaviours.events import Source, TransitTrip
from enterprises import accounting, offsets, pooling, service, synthetic
from enterprises.activity import ActivityRow
from enterprises.factors import Basis
from enterprises.offsets_schemas import Retirement
from enterprises.settings import EnterprisesSettings
from integrations.districts import read_districts_file
from kit import idempotency
from kit.db import create_pool, transaction
from kit.settings import PrivacySettings
from points import service as ledger
from points.schemas import PointsPolicy
from residents import service as residents
from server.app import ingest_policy
from server.migrate import migrate
from server.seeds import apply_seeds
from server.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
POLICY = PointsPolicy()
SETTINGS = EnterprisesSettings()
ZONE = ZoneInfo(POLICY.timezone)
SECRET = "bench-op-secret-0123456789abcdef"


def _env(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000


async def prepare(pool: Any, n_enterprises: int, n_trips: int) -> tuple[list[uuid.UUID], int]:
    """The enterprises (each with a year of emissions and its share of the pool bought) and the
    grams bought in all."""
    now = datetime.now(UTC).replace(microsecond=0)
    year = now.astimezone(ZONE).year
    async with transaction(pool) as tx:
        await behaviours.import_districts(tx, read_districts_file(synthetic.TEST_DISTRICTS))
        codes = await synthetic.district_codes(tx)
        await behaviours.register_operator(
            tx, "bench-metro", name="Metro", kind="transit", region_code="440300"
        )
        await behaviours.add_signing_key(tx, "bench-metro", "k1", SECRET, privacy=PrivacySettings())
    d = synthetic.district(seed=7, enterprises=n_enterprises, year=year, districts=codes)
    csv = "credit_code,name,industry,district,size_class\n" + "".join(
        f"{r.credit_code},{r.name},{r.industry},{r.district},{r.size_class}\n"
        for r in (e.registration for e in d.enterprises)
    )
    async with transaction(pool) as tx:
        await service.import_csv(tx, csv)
        found = await service.enterprises_by_credit_code(
            tx.conn, [e.registration.credit_code for e in d.enterprises]
        )
    ids = [e.id for e in found.values()]
    rows = [
        ActivityRow(
            enterprise_id=e,
            month=date(year, m, 1),
            kind="electricity",
            quantity=200_000.0,
            source="report",
        )
        for e in ids
        for m in range(1, 13)
    ]
    async with transaction(pool) as tx:
        await accounting.record(
            tx, rows, start=date(year, 1, 1), end=date(year + 1, 1, 1), basis=Basis.of(SETTINGS)
        )
    # Residents' trips of this year, through the pipeline (verified, credited).
    async with pool.acquire() as conn:
        people = await residents.create_residents(conn, ["440305"] * 500)
    async with transaction(pool) as tx:
        await behaviours.import_links(
            tx,
            "bench-metro",
            [(f"s{i}", r) for i, r in enumerate(people)],
            ["*"],
            now - timedelta(days=30),
        )
    policy = ingest_policy(Settings.from_env({"TANPUHUI_ENV": "test"}))
    # Inside the pipeline's 7-day window, and in this year (the vintage pooled).
    day0 = max(datetime(year, 1, 1, tzinfo=ZONE).astimezone(UTC), now - timedelta(days=6))
    step = (now - timedelta(hours=1) - day0) / n_trips
    for start in range(0, n_trips, 500):
        trips = [
            TransitTrip(
                record_id=f"t{i}",
                subject=f"s{i % len(people)}",
                mode="metro",
                boarded_at=day0 + step * i,
                alighted_at=day0 + step * i + timedelta(minutes=25),
                distance_m=12_000,
            )
            for i in range(start, min(start + 500, n_trips))
        ]
        async with transaction(pool) as tx:
            verdicts = await behaviours.ingest(
                tx, Source(operator_id="bench-metro"), trips, policy=policy
            )
        refused = [v for v in verdicts if v.status != "accepted"]
        if refused:
            raise RuntimeError(f"{len(refused)} trips refused, e.g. {refused[0]}")
    async with transaction(pool) as tx:
        block = await pooling.issue(
            tx,
            POLICY,
            request_key="bench-pool",
            methodology="low-carbon-travel",
            vintage=year,
            region_code="440300",
        )
    share = block.amount // len(ids)
    for e in ids:
        async with transaction(pool) as tx:
            await offsets.buy(
                tx,
                POLICY,
                request_key=f"bench-buy:{e}",
                enterprise_id=e,
                quantity_g=share,
                price_yuan_per_t=60.0,
            )
    print(
        f"prepared {len(ids)} enterprises with a year of emissions, {n_trips:,} trips pooled "
        f"into serials {block.serial_start}-{block.serial_end} ({block.amount:,} g), "
        f"{share:,} g bought by each",
        flush=True,
    )
    return ids, share * len(ids)


async def retire_one(pool: Any, enterprise_id: uuid.UUID, grams: int, year: int, n: int) -> None:
    key = f"bench-{n}"
    scope = f"enterprise-user:{enterprise_id}"
    async with transaction(pool) as tx:

        async def run() -> Retirement:
            return await offsets.retire(
                tx,
                POLICY,
                SETTINGS,
                request_key=f"{scope}:{key}",
                enterprise_id=enterprise_id,
                quantity_g=grams,
                period=year,
            )

        digest = idempotency.request_hash("POST", "offsets/retirements", f"{grams}:{year}".encode())
        await idempotency.replay_or_run(tx, scope, key, digest, run, Retirement, status=201)


async def retirements(
    pool: Any, ids: list[uuid.UUID], n: int, clients: int
) -> tuple[int, float, list[float], int]:
    year = datetime.now(UTC).astimezone(ZONE).year
    rng = random.Random(7)
    plan = [rng.randint(1, 10) for _ in range(n)]
    latencies: list[float] = []
    counter = iter(range(n))
    done = 0

    async def client(c: int) -> None:
        nonlocal done
        mine = ids[c::clients]
        for i in counter:
            t0 = time.perf_counter()
            await retire_one(pool, mine[i % len(mine)], plan[i], year, i)
            latencies.append(time.perf_counter() - t0)
            done += 1

    t0 = time.perf_counter()
    await asyncio.gather(*(client(c) for c in range(clients)))
    return done, time.perf_counter() - t0, latencies, sum(plan)


async def check(pool: Any, ids: list[uuid.UUID], bought: int, retired: int) -> None:
    async with pool.acquire() as conn:
        held = gone = 0
        for e in ids:
            h = await offsets.holdings(conn, e)
            bal = sum(
                b.posted
                for b in await ledger.balances(conn, "enterprise", f"{e}:offsets")
                if b.asset == "CO2E_G"
            )
            assert bal == h.held_g, (e, bal, h.held_g)
            held += h.held_g
            gone += sum(
                b.posted
                for b in await ledger.balances(conn, "enterprise", f"{e}:offsets_retired")
                if b.asset == "CO2E_G"
            )
    print(
        f"check: {gone:,} g on the retired offsets accounts = {retired:,} g retired; "
        f"{held:,} g still held = {bought:,} bought - {retired:,} retired",
        flush=True,
    )
    assert gone == retired and held == bought - retired


async def run(url: str) -> tuple[int, float]:
    n_enterprises = _env("BENCH_ENTERPRISES", 200)
    n_trips = _env("BENCH_TRIPS", 3000)
    n = _env("BENCH_RETIREMENTS", 100_000)
    clients = _env("BENCH_CLIENTS", 16)
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        await migrate(conn)
        await apply_seeds(conn, "440300")
    finally:
        await conn.close()
    pool = await create_pool(url, min_size=clients, max_size=clients, command_timeout=600)
    try:
        t0 = time.perf_counter()
        ids, bought = await prepare(pool, n_enterprises, n_trips)
        print(f"set-up in {time.perf_counter() - t0:.1f} s", flush=True)
        async with pool.acquire() as c:
            await c.execute("ANALYZE")
        done, elapsed, lat, grams = await retirements(pool, ids, n, clients)
        print(
            f"retirements: {done:,} ({grams:,} g) from {clients} clients in {elapsed:.1f} s: "
            f"{done / elapsed:,.0f}/s, p50 {_pct(lat, 0.5):.1f} ms, p99 {_pct(lat, 0.99):.1f} ms",
            flush=True,
        )
        await check(pool, ids, bought, grams)
        async with transaction(pool) as tx:
            from points.journal import seal

            while await seal(tx) > 0:
                pass
    finally:
        await pool.close()
    return done, elapsed


def audit(url: str) -> int:
    """`tanpuhui audit` on the benchmark's database, as an operator would run it."""
    env = {**os.environ, "DATABASE_URL": url, "TANPUHUI_ENV": "test"}
    done = subprocess.run(
        [sys.executable, "-m", "server.cli", "audit"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=3600,
        check=False,
    )
    sys.stdout.write(done.stdout + done.stderr)
    print(f"tanpuhui audit: {'passed' if done.returncode == 0 else 'FAILED'}", flush=True)
    return done.returncode


def main() -> int:
    with stores.postgres() as pg:
        if pg.embedded is not None and not os.environ.get("BENCH_PG_DEFAULTS"):
            print(stores.tuned_line())
        uvloop.run(run(pg.url))
        return 0 if audit(pg.url) == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
