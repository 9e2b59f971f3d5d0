"""issue_reductions: set-wise credits of grams and points, carry, idempotency."""

import pytest

from kit.db import Tx, transaction
from kit.errors import IdempotencyConflict
from points import service
from points.schemas import Balance
from tests.points.factories import POLICY, invariants, issuance, resident
from tests.statements import CountingConnection


class TestIssueReductions:
    async def test_grams_and_points_with_carry(self, pool):
        r = resident()
        items = [issuance(r, 25), issuance(r, 7), issuance(r, 8)]
        async with transaction(pool) as tx:
            results = await service.issue_reductions(tx, items, POLICY)
        # 25 -> 2 points carry 5; 5+7=12 -> 1 point carry 2; 2+8=10 -> 1 point carry 0
        assert [x.points for x in results] == [2, 1, 1]
        assert await service.balances(pool, "resident", r) == [
            Balance("CO2E_G", 40, 0, 40),
            Balance("POINT", 4, 0, 4),
        ]
        async with pool.acquire() as conn:
            await invariants(conn)

    async def test_remainder_is_carried_across_batches(self, pool):
        r = resident()
        for grams in (3, 3, 3):
            async with transaction(pool) as tx:
                (res,) = await service.issue_reductions(tx, [issuance(r, grams)], POLICY)
                assert res.points == 0
        async with transaction(pool) as tx:
            (res,) = await service.issue_reductions(tx, [issuance(r, 1)], POLICY)
        assert res.points == 1
        async with pool.acquire() as conn:
            carry = await conn.fetchval(
                "SELECT carry_g FROM ledger_accounts WHERE owner_id = $1 AND asset = 'CO2E_G'", r
            )
        assert carry == 0

    async def test_replay_returns_original_and_moves_nothing(self, pool):
        r = resident()
        item = issuance(r, 123)
        async with transaction(pool) as tx:
            first = await service.issue_reductions(tx, [item], POLICY)
        async with transaction(pool) as tx:
            again = await service.issue_reductions(tx, [item, issuance(r, 10)], POLICY)
        assert again[0] == first[0]
        assert again[1].points == 1
        bal = await service.balances(pool, "resident", r)
        assert bal[0].posted == 133 and bal[1].posted == 13

    async def test_same_event_other_content_is_a_conflict(self, pool):
        r = resident()
        item = issuance(r, 123, ref="evt-1")
        async with transaction(pool) as tx:
            await service.issue_reductions(tx, [item], POLICY)
        with pytest.raises(IdempotencyConflict):
            async with transaction(pool) as tx:
                await service.issue_reductions(tx, [issuance(r, 124, ref="evt-1")], POLICY)

    async def test_constant_statement_count(self, pool):
        """The bulk path runs the same number of statements for 1 and for 500 items."""
        counts = []
        for n in (1, 500):
            items = [issuance(resident(), 15) for _ in range(n)]
            async with transaction(pool) as tx:
                counter = CountingConnection(tx.conn)
                await service.issue_reductions(Tx(counter), items, POLICY)
            counts.append(counter.calls)
        assert counts[0] == counts[1] <= 6
