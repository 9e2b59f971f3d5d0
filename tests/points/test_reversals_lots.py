"""Reversals (and the spent-points policy), lots, expiry and reads."""

from datetime import UTC, datetime, timedelta

import pytest

from kit.db import transaction
from points import service
from points.errors import AlreadyReversed, NotReversible, PointsAlreadySpent
from points.schemas import Balance, PointsPolicy
from tests.points.factories import POLICY, REGION, invariants, issuance, resident, spend


async def issue(pool, r, grams, ref=None, policy=POLICY, now=None):
    async with transaction(pool) as tx:
        (res,) = await service.issue_reductions(tx, [issuance(r, grams, ref)], policy, now=now)
    return res


async def issuance_ids(pool, ref):
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT id FROM ledger_transfers WHERE source_ref = $1 AND kind = 'issuance' "
            "ORDER BY id",
            ref,
        )
    return [str(r["id"]) for r in rows]


class TestReversals:
    async def test_reversing_an_issuance_takes_back_grams_and_points_once(self, pool):
        r = resident()
        await issue(pool, r, 35, ref="evt-fraud")
        co2e_id, _ = await issuance_ids(pool, "evt-fraud")
        async with transaction(pool) as tx:
            done = await service.reverse(
                tx, co2e_id, POLICY, idempotency_key="rev-1", reason_code="fraud"
            )
        assert {t.asset for t in done} == {"CO2E_G", "POINT"}
        assert all(t.reverses_id for t in done)
        bal = await service.balances(pool, "resident", r)
        assert (bal[0].posted, bal[1].posted) == (0, 0)
        # The same request again replays; another request is refused.
        async with transaction(pool) as tx:
            again = await service.reverse(
                tx, co2e_id, POLICY, idempotency_key="rev-1", reason_code="fraud"
            )
        assert again == done
        with pytest.raises(AlreadyReversed):
            async with transaction(pool) as tx:
                await service.reverse(
                    tx, co2e_id, POLICY, idempotency_key="rev-2", reason_code="fraud"
                )
        with pytest.raises(NotReversible):
            async with transaction(pool) as tx:
                await service.reverse(
                    tx, done[0].id, POLICY, idempotency_key="rev-3", reason_code="x"
                )
        async with pool.acquire() as conn:
            await invariants(conn)

    async def test_spent_points_refuse_the_whole_reversal(self, pool):
        r = resident()
        await issue(pool, r, 50, ref="evt-spent")
        async with transaction(pool) as tx:
            await service.transfer(tx, [spend(r, 4)], POLICY)
        co2e_id, _ = await issuance_ids(pool, "evt-spent")
        with pytest.raises(PointsAlreadySpent) as info:
            async with transaction(pool) as tx:
                await service.reverse(
                    tx, co2e_id, POLICY, idempotency_key="rev", reason_code="fraud"
                )
        assert info.value.extra == {"points_owed": 5, "available": 1}
        # Nothing moved: the behaviour is not refunded while the points are kept.
        bal = await service.balances(pool, "resident", r)
        assert (bal[0].posted, bal[1].posted) == (50, 1)

    async def test_held_points_count_as_spent(self, pool):
        r = resident()
        await issue(pool, r, 50, ref="evt-held")
        async with transaction(pool) as tx:
            await service.place_hold(tx, spend(r, 1), POLICY)
        co2e_id, _ = await issuance_ids(pool, "evt-held")
        with pytest.raises(PointsAlreadySpent):
            async with transaction(pool) as tx:
                await service.reverse(tx, co2e_id, POLICY, idempotency_key="r", reason_code="f")

    async def test_reversal_keeps_the_carry_exact(self, pool):
        r = resident()
        await issue(pool, r, 7, ref="a")  # 0 points, carry 7
        await issue(pool, r, 5, ref="b")  # 1 point (7+5=12), carry 2
        b_co2e = (await issuance_ids(pool, "b"))[0]
        async with transaction(pool) as tx:
            await service.reverse(tx, b_co2e, POLICY, idempotency_key="r", reason_code="fraud")
        # Left: 7 grams, 0 points, carry 7 -> grams = points * rate + carry holds.
        bal = await service.balances(pool, "resident", r)
        assert (bal[0].posted, bal[1].posted) == (7, 0)
        a_co2e = (await issuance_ids(pool, "a"))[0]
        async with transaction(pool) as tx:
            done = await service.reverse(
                tx, a_co2e, POLICY, idempotency_key="r2", reason_code="fraud"
            )
        assert [t.kind for t in done] == ["reversal"]
        async with pool.acquire() as conn:
            carry = await conn.fetchval(
                "SELECT carry_g FROM ledger_accounts WHERE owner_id = $1 AND asset = 'CO2E_G'", r
            )
            await invariants(conn)
        assert carry == 0

    async def test_reversing_a_redemption_gives_a_new_lot(self, pool):
        r = resident()
        await issue(pool, r, 100)
        async with transaction(pool) as tx:
            (t,) = await service.transfer(tx, [spend(r, 6)], POLICY)
        async with transaction(pool) as tx:
            await service.reverse(tx, t.id, POLICY, idempotency_key="refund", reason_code="r")
        assert (await service.balances(pool, "resident", r))[1] == Balance("POINT", 10, 0, 10)
        async with pool.acquire() as conn:
            await invariants(conn)


class TestLotsAndExpiry:
    async def test_expiry_date_is_end_of_year_n_years_on(self):
        policy = PointsPolicy(expiry_years=2)
        earned = datetime(2026, 12, 31, 17, 0, tzinfo=UTC)  # 2027-01-01 01:00 in China
        assert policy.expires_at(earned) == datetime(2029, 12, 31, 16, 0, tzinfo=UTC)
        assert PointsPolicy(expiry_years=1).expires_at(
            datetime(2026, 6, 1, tzinfo=UTC)
        ) == datetime(2027, 12, 31, 16, 0, tzinfo=UTC)

    async def test_spend_takes_nearest_expiry_and_expiry_posts_the_rest(self, pool):
        r = resident()
        y2025 = datetime(2025, 5, 1, tzinfo=UTC)
        y2026 = datetime(2026, 5, 1, tzinfo=UTC)
        await issue(pool, r, 50, now=y2026)  # 5 points expiring end of 2028
        await issue(pool, r, 30, now=y2025)  # 3 points expiring end of 2027
        async with transaction(pool) as tx:
            await service.transfer(tx, [spend(r, 2)], POLICY)
        seen = await service.expiring(pool, "resident", r, within_days=10000, now=y2026)
        assert [(x.expires_at.year, x.amount) for x in seen] == [(2027, 1), (2028, 5)]
        soon = await service.expiring(pool, "resident", r, within_days=365, now=y2026)
        assert soon == []

        after_2027 = datetime(2028, 1, 2, tzinfo=UTC)
        async with transaction(pool) as tx:
            n = await service.expire_lots(tx, POLICY, region_code=REGION, now=after_2027)
        assert n == 1
        async with transaction(pool) as tx:  # idempotent: nothing left to expire
            assert await service.expire_lots(tx, POLICY, region_code=REGION, now=after_2027) == 0
        assert (await service.balances(pool, "resident", r))[1].posted == 5
        assert (await service.balances(pool, "system", "expiry"))[1].posted == 1
        async with pool.acquire() as conn:
            await invariants(conn)

    async def test_held_points_are_not_expired_under_the_hold(self, pool):
        r = resident()
        await issue(pool, r, 30, now=datetime(2025, 5, 1, tzinfo=UTC))
        async with transaction(pool) as tx:
            h = await service.place_hold(tx, spend(r, 2), POLICY)
        later = datetime(2028, 1, 2, tzinfo=UTC)
        async with transaction(pool) as tx:
            await service.expire_lots(tx, POLICY, region_code=REGION, now=later)
        assert (await service.balances(pool, "resident", r))[1] == Balance("POINT", 2, 2, 0)
        async with transaction(pool) as tx:
            await service.void_hold(tx, h.id, POLICY, idempotency_key="v")
        async with transaction(pool) as tx:
            await service.expire_lots(tx, POLICY, region_code=REGION, now=later)
        assert (await service.balances(pool, "resident", r))[1] == Balance("POINT", 0, 0, 0)
        async with pool.acquire() as conn:
            await invariants(conn)


class TestReads:
    async def test_statement_pages_with_cursor(self, pool):
        r = resident()
        async with transaction(pool) as tx:
            await service.issue_reductions(tx, [issuance(r, 10) for _ in range(7)], POLICY)
        async with transaction(pool) as tx:
            h = await service.place_hold(tx, spend(r, 3), POLICY)
        async with transaction(pool) as tx:
            await service.post_hold(tx, h.id, POLICY, idempotency_key="p", amount=2)
        seen, cursor = [], None
        while True:
            page = await service.statement(pool, "resident", r, "POINT", cursor=cursor, limit=3)
            seen += page.entries
            cursor = page.next_cursor
            if cursor is None:
                break
        assert len(seen) == 9
        ids = [int(e.transfer_id) for e in seen]
        assert ids == sorted(ids, reverse=True)
        assert sum(e.delta for e in seen) == 5
        assert sum(e.pending_delta for e in seen) == 0

    async def test_balance_as_of_a_past_time(self, pool):
        r = resident()
        await issue(pool, r, 100)
        async with pool.acquire() as conn:
            between = await conn.fetchval("SELECT now()")
        await issue(pool, r, 50)
        past = await service.balance_as_of(pool, "resident", r, "POINT", between)
        assert past == Balance("POINT", 10, 0, 10)
        now = await service.balance_as_of(
            pool, "resident", r, "POINT", datetime.now(UTC) + timedelta(seconds=1)
        )
        assert now.posted == 15
