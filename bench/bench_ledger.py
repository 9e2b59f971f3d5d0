"""Ledger benchmark: bulk issuance over many resident accounts, and single holds.

    .venv/bin/python bench/bench_ledger.py

Uses ``BENCH_DATABASE_URL`` when set (a fresh database is created on that server and dropped
afterwards), otherwise starts an embedded PostgreSQL in a temporary directory. Knobs:
``BENCH_RESIDENTS`` (1,000,000), ``BENCH_BATCHES`` (60 batches of ``BENCH_BATCH_SIZE`` = 1,000
issuances), ``BENCH_WRITERS`` (2 concurrent batch writers), ``BENCH_HOLD_CLIENTS`` (32),
``BENCH_HOLD_SECONDS`` (10). Prints one line per measurement.

The embedded server is given a configuration sized for a write-heavy ledger on this machine
(``stores.TUNED``: bigger shared buffers and WAL buffers, fewer checkpoints, compressed full-page
images; never ``fsync`` or ``synchronous_commit`` off: every commit stays durable).
``BENCH_PG_DEFAULTS=1`` keeps PostgreSQL's defaults instead, for comparison.
"""

from __future__ import annotations

import asyncio
import os
import random
import secrets
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import asyncpg
import stores
from stores import TUNED

from kit.db import create_pool, transaction
from points import journal, service
from points.engine import ISSUANCE_SHARDS
from points.errors import InsufficientFunds
from points.schemas import FLAG_ISSUANCE, AccountKey, Issuance, Owner, PointsPolicy, TransferRequest
from server.migrate import migrate

POLICY = PointsPolicy(grams_per_point=10, expiry_years=2, hold_timeout_s=900)
NOW = datetime(2026, 6, 1, tzinfo=UTC)


# Applied with ALTER SYSTEM and a restart (embedded server only). Durability is untouched:
# fsync, synchronous_commit and full_page_writes keep their defaults (on).


def _env(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def _resident(i: int) -> str:
    return str(uuid.UUID(int=i + 1))


async def seed_accounts(url: str, residents: int) -> float:
    """Create both accounts of ``residents`` residents (as if they had signed up)."""
    started = time.perf_counter()
    conn = await asyncpg.connect(url)
    try:
        keys = [
            AccountKey("resident", _resident(i), asset)
            for i in range(residents)
            for asset in ("CO2E_G", "POINT")
        ]
        for start in range(0, len(keys), 100_000):
            await service.open_accounts(conn, keys[start : start + 100_000])
        # The issuance sub-accounts too, as in a ledger that has been running for a while.
        await service.open_accounts(
            conn,
            [
                AccountKey("system", f"issuance.{s}", asset)
                for s in range(ISSUANCE_SHARDS)
                for asset in ("CO2E_G", "POINT")
            ],
            flags=FLAG_ISSUANCE,
        )
        await conn.execute("VACUUM ANALYZE ledger_accounts")
    finally:
        await conn.close()
    return time.perf_counter() - started


async def bulk_issuance(
    pool: Any, residents: int, batches: int, size: int, writers: int
) -> tuple[int, int, float]:
    rng = random.Random(1)
    work = [
        [
            Issuance(
                resident_id=_resident(rng.randrange(residents)),
                reduction_g=rng.randrange(20, 2000),
                source_ref=f"evt-{b}-{j}-{secrets.token_hex(4)}",
                region_code="440305",
                occurred_at=NOW,
            )
            for j in range(size)
        ]
        for b in range(batches)
    ]
    queue: asyncio.Queue[list[Issuance]] = asyncio.Queue()
    for batch in work:
        queue.put_nowait(batch)
    transfers = 0
    items = 0

    async def writer() -> None:
        nonlocal transfers, items
        while not queue.empty():
            batch = queue.get_nowait()
            async with transaction(pool) as tx:
                results = await service.issue_reductions(tx, batch, POLICY)
            items += len(results)
            transfers += len(results) + sum(1 for r in results if r.points)

    started = time.perf_counter()
    await asyncio.gather(*(writer() for _ in range(writers)))
    return items, transfers, time.perf_counter() - started


async def seal_all(pool: Any) -> tuple[int, float]:
    started = time.perf_counter()
    total = 0
    while True:
        async with transaction(pool) as tx:
            n = await journal.seal(tx)
        total += n
        if n == 0:
            return total, time.perf_counter() - started


async def holds(pool: Any, funded: list[str], clients: int, seconds: float) -> tuple[int, float]:
    done = 0
    refused = 0
    deadline = time.perf_counter() + seconds

    async def client(c: int) -> None:
        nonlocal done, refused
        rng = random.Random(c)
        while time.perf_counter() < deadline:
            request = TransferRequest(
                idempotency_key=f"hold-{uuid.uuid4()}",
                debit=Owner("resident", rng.choice(funded)),
                credit=Owner("merchant", "bench-merchant"),
                asset="POINT",
                amount=1,
                kind="redemption",
                reason_code="reward",
                region_code="440305",
                occurred_at=NOW,
            )
            try:
                async with transaction(pool) as tx:
                    await service.place_hold(tx, request, POLICY)
                done += 1
            except InsufficientFunds:
                refused += 1

    started = time.perf_counter()
    await asyncio.gather(*(client(c) for c in range(clients)))
    return done, time.perf_counter() - started


async def run(url: str) -> None:
    residents = _env("BENCH_RESIDENTS", 1_000_000)
    batches = _env("BENCH_BATCHES", 60)
    size = _env("BENCH_BATCH_SIZE", 1000)
    writers = _env("BENCH_WRITERS", 2)
    clients = _env("BENCH_HOLD_CLIENTS", 32)
    seconds = float(_env("BENCH_HOLD_SECONDS", 10))

    conn = await asyncpg.connect(url)
    try:
        await migrate(conn)
    finally:
        await conn.close()
    took = await seed_accounts(url, residents)
    print(f"seed: {2 * residents:,} resident accounts in {took:.1f} s")
    conn = await asyncpg.connect(url)
    try:
        shown = [
            f"{r['name']}={r['value']}"
            for r in await conn.fetch(
                "SELECT name, current_setting(name) AS value FROM pg_settings "
                "WHERE name = ANY($1) ORDER BY name",
                [*TUNED, "fsync", "synchronous_commit", "full_page_writes"],
            )
        ]
    finally:
        await conn.close()
    print("postgres: " + " ".join(shown))

    pool = await create_pool(url, min_size=clients, max_size=clients + 2)
    try:
        # Warm-up (also funds the residents the hold benchmark spends from).
        funded = [_resident(i) for i in range(0, residents, max(1, residents // 2000))][:2000]
        async with transaction(pool) as tx:
            await service.issue_reductions(
                tx,
                [
                    Issuance(
                        resident_id=r,
                        reduction_g=100_000,
                        source_ref=f"fund-{r}",
                        region_code="440305",
                        occurred_at=NOW,
                    )
                    for r in funded
                ],
                POLICY,
            )
        items, transfers, elapsed = await bulk_issuance(pool, residents, batches, size, writers)
        print(
            f"bulk issuance: {items:,} issuances = {transfers:,} transfers in {elapsed:.2f} s "
            f"with {writers} writers, batches of {size}: {transfers / elapsed:,.0f} transfers/s "
            f"({items / elapsed:,.0f} issuances/s)"
        )
        sealed, seal_s = await seal_all(pool)
        print(f"journal: sealed {sealed:,} blocks in {seal_s:.2f} s")
        done, elapsed = await holds(pool, funded, clients, seconds)
        print(
            f"holds: {done:,} single holds from {clients} clients in {elapsed:.2f} s: "
            f"{done / elapsed:,.0f} holds/s"
        )
    finally:
        await pool.close()


def main() -> None:
    with stores.postgres() as pg:
        asyncio.run(run(pg.url))


if __name__ == "__main__":
    main()
