"""Redemption benchmark: hold + stock + reward (and the Idempotency-Key record the mobile route
writes), from concurrent clients, through what ``POST /api/mobile/v1/redemptions`` runs after
its guard (not through HTTP): the app's micro-batcher (``server.mobile.rewards_routes``:
``batcher_of`` → ``redeem_batch``: the account check, ``replay_or_run_many`` and
``rewards.redemptions.redeem_many``, one transaction per batch), each client submitting its
request and awaiting its own answer, as the route does.

    flock /tmp/tph-bench.lock .venv/bin/python bench/bench_redemptions.py

Uses ``BENCH_DATABASE_URL`` when set (a fresh database is created on that server and dropped
afterwards), otherwise an embedded PostgreSQL in a temporary directory with the ledger
benchmark's configuration (``stores.TUNED``; durable commits). Knobs: ``BENCH_RESIDENTS``
(20,000 funded residents), ``BENCH_ITEMS`` (64 catalogue items of one merchant),
``BENCH_CLIENTS`` (32), ``BENCH_SECONDS`` (10 per phase), ``BENCH_PHASES`` (which phases run,
``spread,hot,one,bare``: all). Phases: batched redemptions spread
over the items (a city's catalogue), then every client on one item (its stock row is the hot
spot); for comparison the one-by-one path (``redeem_one``: ``rewards.service.redeem`` inside
``kit.idempotency.replay_or_run``, one transaction per request, the route before batching),
spread; and bare holds (``points.place_hold`` alone, one per transaction) as the reference under
the same load. Prints one line per phase (the batched ones with their mean batch size; each
with its CPU per redemption: this process's, and the embedded server's processes'), then
checks that the ledger's holds of the redemptions equal the stock taken.
"""

from __future__ import annotations

import asyncio
import os
import random
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import asyncpg
import stores
import uvloop

from kit.db import create_pool, transaction
from kit.settings import DatabaseSettings, PrivacySettings
from points import service as ledger
from points.schemas import Issuance, Owner, PointsPolicy, TransferRequest
from residents import service as residents
from rewards import service
from rewards.schemas import ItemSpec, MerchantRegistration, RedeemRequest
from rewards.settings import RewardsConfig, RewardsSettings
from server.migrate import migrate
from server.mobile.rewards_routes import Redemption, batcher_of, redeem_one

CFG = RewardsConfig(
    # BENCH_BATCH_CONCURRENCY: TANPUHUI_REWARDS_REDEMPTION_BATCH_CONCURRENCY for the run
    rewards=RewardsSettings(
        redemption_batch_concurrency=int(os.environ.get("BENCH_BATCH_CONCURRENCY", "1"))
    ),
    points=PointsPolicy(grams_per_point=10, expiry_years=2, hold_timeout_s=900),
    privacy=PrivacySettings(),
    region_code="440300",
    timezone="Asia/Shanghai",
)


def _env(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


async def prepare(pool: Any, n_residents: int, n_items: int) -> tuple[list[str], list[str]]:
    now = datetime.now(UTC)
    async with transaction(pool) as tx:
        people = await residents.create_residents(tx.conn, ["440305"] * n_residents)
    for i in range(0, n_residents, 1000):
        async with transaction(pool) as tx:
            await ledger.issue_reductions(
                tx,
                [
                    Issuance(
                        resident_id=r,
                        reduction_g=1_000_000,  # 100,000 points each
                        source_ref=f"fund-{r}",
                        region_code="440305",
                        occurred_at=now,
                    )
                    for r in people[i : i + 1000]
                ],
                CFG.points,
            )
    async with transaction(pool) as tx:
        await service.register_merchant(
            tx,
            CFG,
            MerchantRegistration(id="bench-shop", name="Bench", settlement_contact="x@example.org"),
        )
        items = []
        for i in range(n_items + 1):
            made = await service.add_item(
                tx,
                ItemSpec(
                    merchant_id="bench-shop",
                    kind="generated_code",
                    title=f"item {i}",
                    cost_points=1,
                    total_stock=10_000_000,
                    active_from=now - timedelta(days=1),
                    active_until=now + timedelta(days=30),
                    visible_from=now - timedelta(days=1),
                    visible_until=now + timedelta(days=30),
                    validity_s=86400,
                ),
            )
            items.append(made.id)
    return people, items


async def redemptions(
    pool: Any, people: list[str], items: list[str], clients: int, seconds: float, *, batched: bool
) -> tuple[int, float, list[float], float]:
    """(done, elapsed, latencies, mean batch size): each client redeems, one request at a time,
    through the batcher (``batched``) or the one-by-one path."""
    done = 0
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds
    batcher = batcher_of(pool, CFG)

    async def client(c: int) -> None:
        nonlocal done
        rng = random.Random(c)
        while time.perf_counter() < deadline:
            t0 = time.perf_counter()
            request = Redemption.of(
                rng.choice(people), RedeemRequest(item_id=rng.choice(items)), uuid.uuid4().hex
            )
            if batched:
                await batcher.submit(request)
            else:
                await redeem_one(pool, CFG, request)
            latencies.append(time.perf_counter() - t0)
            done += 1

    started = time.perf_counter()
    await asyncio.gather(*(client(c) for c in range(clients)))
    elapsed = time.perf_counter() - started
    await batcher.close()
    return done, elapsed, latencies, batcher.requests / max(1, batcher.batches)


async def bare_holds(
    pool: Any, people: list[str], clients: int, seconds: float
) -> tuple[int, float]:
    """The reference under the same load: ``points.place_hold`` alone, one per transaction."""
    done = 0
    deadline = time.perf_counter() + seconds

    async def client(c: int) -> None:
        nonlocal done
        rng = random.Random(c)
        while time.perf_counter() < deadline:
            request = TransferRequest(
                idempotency_key=f"bare-{uuid.uuid4()}",
                debit=Owner("resident", rng.choice(people)),
                credit=Owner("merchant", "bench-shop"),
                asset="POINT",
                amount=1,
                kind="redemption",
                reason_code="bench_hold",
                region_code="440305",
                occurred_at=datetime.now(UTC),
            )
            async with transaction(pool) as tx:
                await ledger.place_hold(tx, request, CFG.points)
            done += 1

    started = time.perf_counter()
    await asyncio.gather(*(client(c) for c in range(clients)))
    return done, time.perf_counter() - started


_TICK = os.sysconf("SC_CLK_TCK")


def _postmaster(url: str) -> int | None:
    """The embedded server's postmaster pid (None for ``BENCH_DATABASE_URL``)."""
    host = urlsplit(url).query.removeprefix("host=")
    found = sorted(Path(host).rglob("postmaster.pid")) if host.startswith("/") else []
    return int(found[0].read_text().split()[0]) if found else None


def _pg_cpu(postmaster: int | None) -> float:
    """CPU seconds (user + system) of the server: the postmaster, its children now alive and
    the children it reaped (``cutime``/``cstime``)."""
    if postmaster is None:
        return 0.0
    ticks = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid, ppid = int(stat.parent.name), int(fields[1])
        if pid == postmaster:
            ticks += sum(int(f) for f in fields[11:15])
        elif ppid == postmaster:
            ticks += int(fields[11]) + int(fields[12])
    return ticks / _TICK


class Probe:
    """The CPU a phase costs: this process's (client Python, the batcher and asyncpg) and the
    server's, per redemption."""

    def __init__(self, postmaster: int | None) -> None:
        self.postmaster = postmaster
        self.client = time.process_time()
        self.server = _pg_cpu(postmaster)

    def line(self, done: int) -> str:
        client = (time.process_time() - self.client) / max(1, done) * 1e6
        if self.postmaster is None:
            return f"cpu per redemption: client {client:.0f} us"
        server = (_pg_cpu(self.postmaster) - self.server) / max(1, done) * 1e6
        return (
            f"cpu per redemption: client {client:.0f} us + PostgreSQL {server:.0f} us = "
            f"{client + server:.0f} us"
        )


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000


async def run(url: str) -> None:
    n_residents = _env("BENCH_RESIDENTS", 20_000)
    n_items = _env("BENCH_ITEMS", 64)
    clients = _env("BENCH_CLIENTS", 32)
    seconds = float(_env("BENCH_SECONDS", 10))
    conn = await asyncpg.connect(url)
    try:
        await migrate(conn)
    finally:
        await conn.close()
    # The API's own pool per process (DatabaseSettings.pool_max, 10 by default): 32 clients
    # share it as 32 concurrent requests share one API process's pool.
    size = _env("BENCH_POOL", DatabaseSettings().pool_max)
    pool = await create_pool(url, min_size=size, max_size=size)
    try:
        t0 = time.perf_counter()
        people, items = await prepare(pool, n_residents, n_items)
        print(
            f"prepared {n_residents:,} funded residents, {n_items + 1} items in "
            f"{time.perf_counter() - t0:.1f} s"
        )
        await redemptions(pool, people, items[:-1], clients, 2, batched=True)  # warm-up
        postmaster = _postmaster(url)
        phases = os.environ.get("BENCH_PHASES", "spread,hot,one,bare").split(",")
        for phase, label, chosen, batched in (
            ("spread", f"batched, spread over {n_items} items", items[:-1], True),
            ("hot", "batched, one hot item", items[-1:], True),
            ("one", f"one by one, spread over {n_items} items", items[:-1], False),
        ):
            if phase not in phases:
                continue
            probe = Probe(postmaster)
            done, elapsed, lat, mean = await redemptions(
                pool, people, chosen, clients, seconds, batched=batched
            )
            shape = f", mean batch {mean:.1f}" if batched else ""
            print(
                f"redemptions ({label}): {done:,} from {clients} clients in {elapsed:.2f} s: "
                f"{done / elapsed:,.0f}/s, p50 {_pct(lat, 0.5):.1f} ms, "
                f"p99 {_pct(lat, 0.99):.1f} ms{shape}; {probe.line(done)}"
            )
        bare = 0
        if "bare" in phases:
            bare, elapsed = await bare_holds(pool, people, clients, seconds)
            print(
                f"reference, bare holds (points.place_hold alone): {bare:,} from {clients} "
                f"clients in {elapsed:.2f} s: {bare / elapsed:,.0f}/s"
            )
        holds, cursor = -bare, None
        while True:  # the merchant's ledger statement: every hold placed towards it
            page = await ledger.statement(
                pool, "merchant", "bench-shop", "POINT", cursor=cursor, limit=500
            )
            holds += sum(1 for e in page.entries if e.phase == "pending")
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        taken = 0
        for item_id in items:
            found = await service.get_item(pool, item_id)
            taken += found.total_stock - found.remaining
        print(f"check: {holds:,} holds on the ledger, {taken:,} units of stock taken")
        assert holds == taken
    finally:
        await pool.close()


def main() -> None:
    with stores.postgres() as pg:
        if pg.embedded is not None and not os.environ.get("BENCH_PG_DEFAULTS"):
            print(stores.tuned_line())
        uvloop.run(run(pg.url))


if __name__ == "__main__":
    main()
