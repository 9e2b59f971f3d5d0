"""Two-phase holds, and the failures other ledgers shipped with."""

import asyncio
from datetime import timedelta

import pytest

from kit.db import transaction
from kit.tasks import WorkerContext
from points import service
from points.errors import (
    HoldAlreadySettled,
    HoldExpired,
    HoldNotFound,
    InsufficientFunds,
    PostExceedsHold,
)
from points.schemas import Balance
from points.tasks import void_timed_out_holds_body
from tests.points.factories import POLICY, invariants, issuance, resident, spend


async def funded(pool, points):
    r = resident()
    async with transaction(pool) as tx:
        await service.issue_reductions(tx, [issuance(r, points * 10)], POLICY)
    return r


async def hold(pool, r, amount, **kw):
    async with transaction(pool) as tx:
        return await service.place_hold(tx, spend(r, amount, **kw), POLICY)


async def points_balance(pool, r):
    return (await service.balances(pool, "resident", r))[1]


class TestHolds:
    async def test_available_counts_pending_debits(self, pool):
        r = await funded(pool, 10)
        await hold(pool, r, 7)
        assert await points_balance(pool, r) == Balance("POINT", 10, 7, 3)
        with pytest.raises(InsufficientFunds):
            await hold(pool, r, 4)  # 4 > available 3 though posted is 10
        with pytest.raises(InsufficientFunds):
            async with transaction(pool) as tx:
                await service.transfer(tx, [spend(r, 4)], POLICY)

    async def test_post_in_full_and_in_part(self, pool):
        r = await funded(pool, 10)
        h1 = await hold(pool, r, 4)
        h2 = await hold(pool, r, 5)
        async with transaction(pool) as tx:
            await service.post_hold(tx, h1.id, POLICY, idempotency_key="p1")
            await service.post_hold(tx, h2.id, POLICY, idempotency_key="p2", amount=2)
        assert await points_balance(pool, r) == Balance("POINT", 4, 0, 4)
        assert (await service.balances(pool, "merchant", "m1"))[1].posted == 6
        async with pool.acquire() as conn:
            await invariants(conn)

    async def test_void_twice_is_refused(self, pool):
        r = await funded(pool, 10)
        h = await hold(pool, r, 4)
        async with transaction(pool) as tx:
            await service.void_hold(tx, h.id, POLICY, idempotency_key="v1")
        with pytest.raises(HoldAlreadySettled):
            async with transaction(pool) as tx:
                await service.void_hold(tx, h.id, POLICY, idempotency_key="v2")
        assert await points_balance(pool, r) == Balance("POINT", 10, 0, 10)

    async def test_voided_hold_is_never_posted(self, pool):
        r = await funded(pool, 10)
        h = await hold(pool, r, 4)
        async with transaction(pool) as tx:
            await service.void_hold(tx, h.id, POLICY, idempotency_key="v1")
        with pytest.raises(HoldAlreadySettled):
            async with transaction(pool) as tx:
                await service.post_hold(tx, h.id, POLICY, idempotency_key="p1")
        assert await points_balance(pool, r) == Balance("POINT", 10, 0, 10)

    async def test_rejected_hold_cannot_be_posted(self, pool):
        r = await funded(pool, 1)
        with pytest.raises(InsufficientFunds):
            await hold(pool, r, 5, key="rejected")
        async with pool.acquire() as conn:
            assert (
                await conn.fetchval(
                    "SELECT count(*) FROM ledger_transfers WHERE idempotency_key = 'rejected'"
                )
                == 0
            )
        # A hold id that never committed does not exist; nor does a non-hold transfer.
        with pytest.raises(HoldNotFound):
            async with transaction(pool) as tx:
                await service.post_hold(tx, "999999", POLICY, idempotency_key="p")

    async def test_posting_more_than_held_is_refused(self, pool):
        r = await funded(pool, 10)
        h = await hold(pool, r, 4)
        with pytest.raises(PostExceedsHold):
            async with transaction(pool) as tx:
                await service.post_hold(tx, h.id, POLICY, idempotency_key="p", amount=5)
        assert await points_balance(pool, r) == Balance("POINT", 10, 4, 6)

    async def test_post_replay_returns_original(self, pool):
        r = await funded(pool, 10)
        h = await hold(pool, r, 4)
        async with transaction(pool) as tx:
            first = await service.post_hold(tx, h.id, POLICY, idempotency_key="p")
        async with transaction(pool) as tx:
            again = await service.post_hold(tx, h.id, POLICY, idempotency_key="p")
        assert again == first
        assert await points_balance(pool, r) == Balance("POINT", 6, 0, 6)

    async def test_post_after_timeout_is_refused_and_task_voids(self, pool, settings):
        r = await funded(pool, 10)
        h = await hold(pool, r, 4)
        assert h.timeout_at is not None
        later = h.timeout_at + timedelta(seconds=1)
        with pytest.raises(HoldExpired):
            async with transaction(pool) as tx:
                await service.post_hold(tx, h.id, POLICY, idempotency_key="p", now=later)
        async with transaction(pool) as tx:
            assert await service.void_timed_out_holds(tx, POLICY, now=later) == 1
        async with transaction(pool) as tx:
            assert await service.void_timed_out_holds(tx, POLICY, now=later) == 0
        assert await points_balance(pool, r) == Balance("POINT", 10, 0, 10)
        async with pool.acquire() as conn:
            await invariants(conn)

    async def test_timeout_task_body_runs(self, pool, settings):
        r = await funded(pool, 10)
        async with transaction(pool) as tx:
            await service.place_hold(tx, spend(r, 3), POLICY, timeout_s=1)
        await asyncio.sleep(1.1)
        ctx = WorkerContext(settings=settings, pool=pool, redis=None)
        assert await void_timed_out_holds_body(ctx) == 1
        assert await points_balance(pool, r) == Balance("POINT", 10, 0, 10)


class TestHoldConcurrency:
    async def test_fifty_holds_on_room_for_ten(self, pool):
        r = await funded(pool, 10)

        async def one():
            try:
                await hold(pool, r, 1)
                return True
            except InsufficientFunds:
                return False

        results = await asyncio.gather(*(one() for _ in range(50)))
        assert sum(results) == 10
        assert await points_balance(pool, r) == Balance("POINT", 10, 10, 0)

    async def test_concurrent_post_and_void_settle_once(self, pool):
        r = await funded(pool, 10)
        h = await hold(pool, r, 4)

        async def post():
            async with transaction(pool) as tx:
                await service.post_hold(tx, h.id, POLICY, idempotency_key="p")

        async def void():
            async with transaction(pool) as tx:
                await service.void_hold(tx, h.id, POLICY, idempotency_key="v")

        results = await asyncio.gather(post(), void(), post(), void(), return_exceptions=True)
        ok = [x for x in results if x is None]
        # The same-key retries replay; the other settlement is refused.
        assert all(isinstance(x, HoldAlreadySettled) for x in results if x is not None)
        assert len(ok) == 2
        bal = await points_balance(pool, r)
        assert bal.pending == 0 and bal.posted in (6, 10)
        async with pool.acquire() as conn:
            await invariants(conn)
