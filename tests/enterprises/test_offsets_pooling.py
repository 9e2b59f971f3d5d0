"""Pooled reductions with serials (enterprises.pooling): blocks of the next free serials, never
overlapping (database-enforced), a zero or over-pool amount refused, the same grams never pooled
twice (also by two concurrent issuances), the grams on the ledger from the residents' pool to the
programme's account with the block in the transfer's source_ref; the ledger audit (run after
every test by the fixtures) passes."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest

from enterprises import pooling
from enterprises.offsets_errors import PoolEmpty
from kit.db import transaction
from points import service as points
from points.schemas import PointsPolicy

POLICY = PointsPolicy()


async def _events(pool: Any, grams: list[int], *, methodology: str = "M1") -> None:
    at = datetime(2026, 6, 1, 4, tzinfo=UTC)
    async with pool.acquire() as conn:
        await conn.executemany(
            """
            INSERT INTO behaviour_events (id, operator_id, record_id, subject_ref, resident_id,
                kind, mode, behaviour, started_at, ended_at, received_at, status,
                methodology_code, reduction_g)
            VALUES ($1, 'op', $2, 's', $3, 'trip', 'bus', 'bus', $4, $4, $4, 'accepted', $5, $6)
            """,
            [(uuid.uuid4(), str(uuid.uuid4()), uuid.uuid4(), at, methodology, g) for g in grams],
        )


async def _issue(pool: Any, key: str, amount: int | None, methodology: str = "M1") -> pooling.Block:
    async with transaction(pool) as tx:
        return await pooling.issue(
            tx,
            POLICY,
            request_key=key,
            methodology=methodology,
            vintage=2026,
            amount=amount,
            region_code="330110",
        )


async def _posted(pool: Any, owner_id: str) -> int:
    async with pool.acquire() as conn:
        return sum(b.posted for b in await points.balances(conn, "system", owner_id))


async def test_blocks_follow_each_other_and_move_the_grams(pool: Any):
    await _events(pool, [400, 600])
    a = await _issue(pool, "k1", 300)
    b = await _issue(pool, "k2", None)
    assert (a.serial_start, a.serial_end) == (1, 300)
    assert (b.serial_start, b.serial_end, b.amount) == (301, 1000, 700)
    assert await _issue(pool, "k1", 300) == a  # a replay returns the original block
    assert await _posted(pool, "offset_programme") == 1000
    assert await _posted(pool, "residents_pool") == -1000
    async with pool.acquire() as conn:
        assert b.transfer_id is not None
        t = await points.get_transfer(conn, str(b.transfer_id))
    assert t is not None and t.source_ref == pooling.serial_ref(b.id, 301, 1000)


async def test_zero_and_over_pool_refused_and_retired_grams_excluded(pool: Any):
    await _events(pool, [500])
    with pytest.raises(PoolEmpty):
        await _issue(pool, "z", 0)
    with pytest.raises(PoolEmpty):
        await _issue(pool, "o", 501)
    async with pool.acquire() as conn:
        await conn.execute(
            """
            WITH p AS (INSERT INTO donation_projects (title, beneficiary, target_asset,
                target_amount, starts_at, ends_at) VALUES ('t', 'b', 'CO2E_G', 1, now(),
                now() + interval '1 day') RETURNING id)
            INSERT INTO donations (vintage, asset, project_id, resident_id, donor, amount)
            SELECT 2026, 'CO2E_G', p.id, gen_random_uuid(), 'donor-000000000000', 200 FROM p
            """
        )
    assert (await _issue(pool, "all", None)).amount == 300
    with pytest.raises(PoolEmpty):
        await _issue(pool, "again", 1)  # never pooled twice


async def test_other_methodology_not_pooled(pool: Any):
    await _events(pool, [100], methodology="M2")
    with pytest.raises(PoolEmpty):
        await _issue(pool, "m1", 1)
    assert (await _issue(pool, "m2", None, "M2")).amount == 100


async def test_concurrent_issuances_pool_the_grams_once(pool: Any):
    await _events(pool, [1000])
    results = await asyncio.gather(
        _issue(pool, "c1", 700), _issue(pool, "c2", 700), return_exceptions=True
    )
    assert sorted(type(r).__name__ for r in results) == ["Block", "PoolEmpty"]


async def test_overlapping_block_refused_by_the_database(pool: Any):
    await _events(pool, [10])
    await _issue(pool, "k", 10)
    async with pool.acquire() as conn:
        with pytest.raises(asyncpg.ExclusionViolationError):
            await conn.execute(
                """
                INSERT INTO offset_issuances (request_key, programme, methodology, vintage,
                    amount, serial_start, serial_end) VALUES ('x', 'regional', 'M1', 2026, 5, 8, 12)
                """
            )
        with pytest.raises(asyncpg.CheckViolationError):
            await conn.execute(
                """
                INSERT INTO offset_issuances (request_key, programme, methodology, vintage,
                    amount, serial_start, serial_end) VALUES ('y', 'r', 'M1', 2026, 0, 20, 20)
                """
            )
