"""Races against the real database: idempotency keys and overlapping bulk batches."""

import asyncio
import contextvars
import itertools
import random

import pytest

from kit.db import transaction
from points import engine, service
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


@pytest.mark.usefixtures("strict_lock_order")
class TestReverseThenIssue:
    async def test_crossed_shards_neither_deadlock_nor_take_a_second_shard(self, pool, monkeypatch):
        """Two transactions each reverse a credit (A's from shard 3, B's from shard 5), wait for
        each other, then issue; a fresh draw would hand A shard 5 and B shard 3 — each holding
        what the other then wants. Issuance draws from the shard the transaction already holds."""
        who: contextvars.ContextVar[str] = contextvars.ContextVar("who")
        draws: list[str] = []

        def draw(n: int) -> int:
            draws.append(who.get())
            return {"A": 3, "B": 5, "A again": 5, "B again": 3}[who.get()]

        monkeypatch.setattr(random, "randrange", draw)
        first = {name: issuance(resident(), 25) for name in "AB"}
        for name in "AB":
            who.set(name)
            async with transaction(pool) as tx:
                await service.issue_reductions(tx, [first[name]], POLICY)
        both_reversed = asyncio.Barrier(2)

        async def reverse_then_issue(name: str) -> str:
            who.set(f"{name} again")
            old = first[name]
            async with transaction(pool) as tx:
                refused = await service.reverse_issuances(
                    tx, [old.source_ref], POLICY, reason_code="superseded", key_prefix="t"
                )
                assert refused == set()
                await both_reversed.wait()
                await service.issue_reductions(tx, [issuance(old.resident_id, 40)], POLICY)
            async with pool.acquire() as conn:
                return await conn.fetchval(
                    "SELECT d.owner_id FROM ledger_transfers t "
                    "JOIN ledger_accounts c ON c.id = t.credit_account_id "
                    "JOIN ledger_accounts d ON d.id = t.debit_account_id "
                    "WHERE t.kind = 'issuance' AND c.owner_id = $1 AND t.amount = 40",
                    old.resident_id,
                )

        shards = await asyncio.wait_for(
            asyncio.gather(reverse_then_issue("A"), reverse_then_issue("B")), timeout=30
        )
        assert list(shards) == ["issuance.3", "issuance.5"]
        assert draws == ["A", "B"]  # no draw after the reversals
        async with pool.acquire() as conn:
            await invariants(conn)

    async def test_a_carry_clawback_returns_to_the_shard_it_came_from(self, pool, monkeypatch):
        """Reversing a credit whose grams a later point relied on claws a point back through the
        carry; it goes to the credit's own shard (locked with it), not to a shard locked later."""
        monkeypatch.setattr(random, "randrange", lambda n: 5)
        r = resident()
        first = issuance(r, 15)  # 1 point, 5 g carried
        async with transaction(pool) as tx:
            await service.issue_reductions(tx, [first, issuance(r, 8)], POLICY)  # 1 more, 3 g
        async with transaction(pool) as tx:
            refused = await service.reverse_issuances(
                tx, [first.source_ref], POLICY, reason_code="superseded", key_prefix="t"
            )
        assert refused == set()
        async with pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT t.kind, t.amount, c.owner_id FROM ledger_transfers t "
                "JOIN ledger_accounts c ON c.id = t.credit_account_id "
                "WHERE t.kind IN ('reversal', 'carry_clawback') AND t.asset = 'POINT'"
            )
            assert sorted((x["kind"], x["amount"], x["owner_id"]) for x in rows) == [
                ("carry_clawback", 1, "issuance.5"),
                ("reversal", 1, "issuance.5"),
            ]
            await invariants(conn)
        assert (await service.balances(pool, "resident", r))[1].posted == 0


@pytest.mark.usefixtures("strict_lock_order")
class TestLockOrder:
    async def test_a_lock_below_one_held_is_refused_in_tests(self, pool):
        """A resident's accounts, then a merchant's, in one transaction: the merchant's sorts
        first, so another transaction taking both in order could deadlock with this one."""
        r = resident()

        async def issue_then_spend() -> None:
            async with transaction(pool) as tx:
                await service.issue_reductions(tx, [issuance(r, 100)], POLICY)
                await service.transfer(tx, [spend(r, 1)], POLICY)

        with pytest.raises(engine.LockOrderViolation, match="merchant POINT account locked after"):
            await issue_then_spend()
        assert await service.balances(pool, "resident", r) == await service.balances(
            pool, "resident", resident()
        )  # nothing was kept
