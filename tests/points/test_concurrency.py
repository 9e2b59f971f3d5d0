"""Races against the real database: idempotency keys and overlapping bulk batches."""

import asyncio
import itertools
import random

from kit.db import transaction
from points import service
from points.schemas import Owner, TransferRequest
from tests.points.factories import POLICY, REGION, T0, invariants, issuance, resident, spend


class TestIdempotencyRace:
    async def test_one_key_twenty_times_makes_one_transfer(self, pool):
        r = resident()
        async with transaction(pool) as tx:
            await service.issue_reductions(tx, [issuance(r, 1000)], POLICY)
        request = spend(r, 7, key="same-key")

        async def send():
            async with transaction(pool) as tx:
                (t,) = await service.transfer(tx, [request], POLICY)
                return t.id

        ids = await asyncio.gather(*(send() for _ in range(20)))
        assert len(set(ids)) == 1
        async with pool.acquire() as conn:
            n = await conn.fetchval(
                "SELECT count(*) FROM ledger_transfers WHERE idempotency_key = 'same-key'"
            )
            assert n == 1
            await invariants(conn)
        assert (await service.balances(pool, "resident", r))[1].posted == 93

    async def test_one_event_issued_twenty_times_concurrently(self, pool):
        r = resident()
        item = issuance(r, 55, ref="evt-race")

        async def send():
            async with transaction(pool) as tx:
                return await service.issue_reductions(tx, [item], POLICY)

        results = await asyncio.gather(*(send() for _ in range(20)))
        assert all(x == results[0] for x in results)
        bal = await service.balances(pool, "resident", r)
        assert (bal[0].posted, bal[1].posted) == (55, 5)


class TestBulkBatches:
    async def test_overlapping_batches_in_different_orders_never_deadlock(self, pool):
        residents = [resident() for _ in range(40)]
        rng = random.Random(7)

        async def batch(i):
            chosen = rng.sample(residents, 30)
            items = [issuance(r, 10 + i, ref=f"evt-{i}-{j}") for j, r in enumerate(chosen)]
            async with transaction(pool) as tx:
                await service.issue_reductions(tx, items, POLICY)
            return sum(x.reduction_g for x in items)

        totals = await asyncio.gather(*(batch(i) for i in range(16)))
        async with pool.acquire() as conn:
            issued = await conn.fetchval(
                "SELECT -sum(posted) FROM ledger_accounts "
                "WHERE owner_type = 'system' AND owner_id LIKE 'issuance.%' AND asset = 'CO2E_G'"
            )
            assert issued == sum(totals)
            await invariants(conn)

    async def test_transfers_between_residents_in_opposite_directions(self, pool):
        residents = [resident() for _ in range(10)]
        async with transaction(pool) as tx:
            await service.issue_reductions(tx, [issuance(r, 1000) for r in residents], POLICY)

        async def batch(i):
            order = residents if i % 2 else list(reversed(residents))
            requests = [
                TransferRequest(
                    idempotency_key=f"gift-{i}-{j}",
                    debit=Owner("resident", a),
                    credit=Owner("resident", b),
                    asset="POINT",
                    amount=1,
                    kind="gift",
                    reason_code="gift",
                    region_code=REGION,
                    occurred_at=T0,
                )
                for j, (a, b) in enumerate(itertools.pairwise(order))
            ]
            async with transaction(pool) as tx:
                await service.transfer(tx, requests, POLICY)

        await asyncio.gather(*(batch(i) for i in range(20)))
        async with pool.acquire() as conn:
            await invariants(conn)
            total = await conn.fetchval(
                "SELECT sum(posted) FROM ledger_accounts "
                "WHERE owner_type = 'resident' AND asset = 'POINT'"
            )
        assert total == 1000
