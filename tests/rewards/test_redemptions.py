"""Redemption on the ledger: hold + stock + reward in one transaction, never oversold; confirm,
cancel, expire and refund each exactly once; limits under concurrency."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest

from kit.db import transaction
from points import service as ledger
from points.schemas import Issuance
from rewards import service
from rewards.errors import (
    InsufficientPoints,
    LimitReached,
    NotAvailable,
    OutOfStock,
    RewardAlreadyUsed,
    RewardExpired,
    RewardNotFound,
    RewardNotUsed,
)
from tests.points.factories import invariants
from tests.residents.factories import resident, residents
from tests.rewards.factories import DISTRICT, NOW, config, fund, funded, item, merchant, points_of


async def redeem(pool, cfg, rid, item_id, now=NOW):
    async with transaction(pool) as tx:
        return await service.redeem(tx, cfg, rid, item_id, now=now)


async def attempt(pool, cfg, rid, item_id, now=NOW):
    """The reward, or the refusal's code."""
    try:
        return await redeem(pool, cfg, rid, item_id, now)
    except (OutOfStock, InsufficientPoints, LimitReached, NotAvailable) as exc:
        return exc.code


async def pending_holds(pool, merchant_id):
    """Open holds towards the merchant, from the ledger's own statement."""
    page = await ledger.statement(pool, "merchant", merchant_id, "POINT", cursor=None, limit=500)
    assert not page.next_cursor
    return page


async def count_rewards(pool, item_id):
    async with pool.acquire() as conn:
        return await conn.fetchval("SELECT count(*) FROM rewards WHERE item_id = $1::uuid", item_id)


class TestRedeem:
    async def test_a_redemption_holds_points_takes_stock_and_issues_a_code(self, pool, settings):
        cfg = config(settings)
        m = await merchant(pool, cfg)
        it = await item(pool, m.merchant.id, cost_points=300, total_stock=5)
        rid = await funded(pool, cfg, 1000)
        reward = await redeem(pool, cfg, rid, it.id)
        assert reward.status == "issued" and reward.cost_points == 300
        assert len(reward.code) == 14 and reward.code.count("-") == 2
        assert reward.qr_payload == f"TPH1:{m.merchant.id}:{reward.code.replace('-', '')}"
        assert reward.valid_until == NOW + timedelta(days=7)
        assert await points_of(pool, "resident", rid) == (1000, 300, 700)
        assert (await service.get_item(pool, it.id)).remaining == 4
        async with pool.acquire() as conn:
            await invariants(conn)

    async def test_distinct_refusals_and_nothing_kept(self, pool, settings):
        cfg = config(settings)
        m = await merchant(pool, cfg)
        rid = await funded(pool, cfg, 150)
        cheap = await item(pool, m.merchant.id, cost_points=100, total_stock=1)
        dear = await item(pool, m.merchant.id, cost_points=200)
        closed = await item(
            pool,
            m.merchant.id,
            active_from=NOW + timedelta(days=1),
            active_until=NOW + timedelta(days=2),
        )
        elsewhere = await item(pool, m.merchant.id, districts=["440306"])
        assert await attempt(pool, cfg, rid, dear.id) == "insufficient_points"
        assert await attempt(pool, cfg, rid, closed.id) == "not_available"
        assert await attempt(pool, cfg, rid, elsewhere.id) == "not_available"
        assert not isinstance(await attempt(pool, cfg, rid, cheap.id), str)
        other = await funded(pool, cfg, 500)
        assert await attempt(pool, cfg, other, cheap.id) == "out_of_stock"
        # Refused attempts held nothing and took no stock.
        assert await points_of(pool, "resident", rid) == (150, 100, 50)
        assert await points_of(pool, "resident", other) == (500, 0, 500)
        assert (await service.get_item(pool, dear.id)).remaining == 50

    async def test_a_resident_outside_every_district_sees_only_open_items(self, pool, settings):
        cfg = config(settings)
        m = await merchant(pool, cfg)
        await item(pool, m.merchant.id, title="open")
        await item(pool, m.merchant.id, title="local", districts=[DISTRICT])
        page = await service.browse(pool, district=None, any_district=False, now=NOW)
        assert [i.title for i in page.items] == ["open"]
        page = await service.browse(pool, district=DISTRICT, any_district=False, now=NOW)
        assert sorted(i.title for i in page.items) == ["local", "open"]


class TestConcurrency:
    async def test_1000_concurrent_redemptions_of_stock_10_issue_exactly_10(self, pool, settings):
        cfg = config(settings)
        m = await merchant(pool, cfg)
        it = await item(pool, m.merchant.id, cost_points=10, total_stock=10)
        people = await residents(pool, 1000)
        async with transaction(pool) as tx:
            await ledger.issue_reductions(
                tx,
                [
                    Issuance(
                        resident_id=r,
                        reduction_g=100 * cfg.points.grams_per_point,
                        source_ref=f"evt-{uuid.uuid4()}",
                        region_code=DISTRICT,
                        occurred_at=NOW,
                    )
                    for r in people
                ],
                cfg.points,
                now=NOW,
            )
        outcomes = await asyncio.gather(*(attempt(pool, cfg, r, it.id) for r in people))
        issued = [o for o in outcomes if not isinstance(o, str)]
        assert len(issued) == 10
        assert [o for o in outcomes if isinstance(o, str)] == ["out_of_stock"] * 990
        assert (await service.get_item(pool, it.id)).remaining == 0
        assert await count_rewards(pool, it.id) == 10
        # The ledger's holds are exactly the issued rewards.
        async with pool.acquire() as conn:
            holds = await conn.fetch(
                "SELECT source_ref, amount FROM ledger_transfers WHERE phase = 'pending'"
            )
            await invariants(conn)
        assert sorted(h["source_ref"] for h in holds) == sorted(r.id for r in issued)
        assert await points_of(pool, "merchant", m.merchant.id) == (0, 0, 0)
        held = [await points_of(pool, "resident", r) for r in people]
        assert sum(p for _, p, _ in held) == 100

    async def test_six_concurrent_1000_point_redemptions_with_5000_points(self, pool, settings):
        cfg = config(settings)
        m = await merchant(pool, cfg)
        it = await item(pool, m.merchant.id, cost_points=1000, total_stock=100)
        rid = await funded(pool, cfg, 5000)
        outcomes = await asyncio.gather(*(attempt(pool, cfg, rid, it.id) for _ in range(6)))
        assert sum(1 for o in outcomes if not isinstance(o, str)) == 5
        assert [o for o in outcomes if isinstance(o, str)] == ["insufficient_points"]
        assert await points_of(pool, "resident", rid) == (5000, 5000, 0)
        assert (await service.get_item(pool, it.id)).remaining == 95

    async def test_per_resident_limit_under_concurrency(self, pool, settings):
        cfg = config(settings)
        m = await merchant(pool, cfg)
        it = await item(pool, m.merchant.id, cost_points=10, per_resident_limit=2)
        rid = await funded(pool, cfg, 1000)
        other = await funded(pool, cfg, 1000)
        outcomes = await asyncio.gather(*(attempt(pool, cfg, rid, it.id) for _ in range(8)))
        assert sum(1 for o in outcomes if not isinstance(o, str)) == 2
        assert sorted(o for o in outcomes if isinstance(o, str)) == ["limit_reached"] * 6
        assert not isinstance(await attempt(pool, cfg, other, it.id), str)  # per resident
        assert await points_of(pool, "resident", rid) == (1000, 20, 980)
        # Cancelling one gives its slot back.
        first = next(o for o in outcomes if not isinstance(o, str))
        async with transaction(pool) as tx:
            await service.cancel(tx, cfg, rid, first.id, now=NOW)
        assert not isinstance(await attempt(pool, cfg, rid, it.id), str)
        assert await attempt(pool, cfg, rid, it.id) == "limit_reached"

    async def test_per_period_limit_under_concurrency(self, pool, settings):
        cfg = config(settings)
        m = await merchant(pool, cfg)
        it = await item(pool, m.merchant.id, cost_points=10, period_limit=1, limit_period="day")
        rid = await funded(pool, cfg, 1000)
        outcomes = await asyncio.gather(*(attempt(pool, cfg, rid, it.id) for _ in range(6)))
        assert sum(1 for o in outcomes if not isinstance(o, str)) == 1
        assert sorted(o for o in outcomes if isinstance(o, str)) == ["limit_reached"] * 5
        # 23:59 Shanghai is still the same day; 00:00 the next is a new period.
        same_day = NOW.replace(hour=15, minute=59)
        assert await attempt(pool, cfg, rid, it.id, now=same_day) == "limit_reached"
        next_day = NOW.replace(hour=16, minute=0)
        later = await asyncio.gather(
            *(attempt(pool, cfg, rid, it.id, now=next_day) for _ in range(4))
        )
        assert sum(1 for o in later if not isinstance(o, str)) == 1


async def confirm(pool, cfg, merchant_id, code, now=NOW):
    async with transaction(pool) as tx:
        return await service.confirm(tx, cfg, merchant_id, code, now=now)


async def refund(pool, cfg, merchant_id, reward_id, now=NOW):
    async with transaction(pool) as tx:
        return await service.refund(tx, cfg, merchant_id, reward_id, now=now)


class TestSettle:
    async def test_confirm_posts_the_hold_once(self, pool, settings):
        cfg = config(settings)
        m = await merchant(pool, cfg)
        it = await item(pool, m.merchant.id, cost_points=250)
        rid = await funded(pool, cfg, 1000)
        reward = await redeem(pool, cfg, rid, it.id)
        seen = await service.lookup(pool, cfg, m.merchant.id, reward.qr_payload)
        assert seen.status == "issued" and seen.code_masked.endswith(reward.code[-4:])
        assert reward.code.replace("-", "")[:8] not in seen.code_masked
        done = await confirm(pool, cfg, m.merchant.id, reward.code, NOW + timedelta(hours=1))
        assert done.status == "used" and done.used_at == NOW + timedelta(hours=1)
        with pytest.raises(RewardAlreadyUsed):
            await confirm(pool, cfg, m.merchant.id, reward.code.lower())
        results = await asyncio.gather(
            *(confirm(pool, cfg, m.merchant.id, reward.code) for _ in range(3)),
            return_exceptions=True,
        )
        assert all(isinstance(r, RewardAlreadyUsed) for r in results)
        assert await points_of(pool, "resident", rid) == (750, 0, 750)
        assert await points_of(pool, "merchant", m.merchant.id) == (250, 0, 250)
        async with pool.acquire() as conn:
            posts = await conn.fetchval(
                "SELECT count(*) FROM ledger_transfers WHERE phase = 'post_pending'"
            )
            await invariants(conn)
        assert posts == 1

    async def test_concurrent_confirms_post_once(self, pool, settings):
        cfg = config(settings)
        m = await merchant(pool, cfg)
        it = await item(pool, m.merchant.id, cost_points=250)
        rid = await funded(pool, cfg, 1000)
        reward = await redeem(pool, cfg, rid, it.id)
        results = await asyncio.gather(
            *(confirm(pool, cfg, m.merchant.id, reward.code) for _ in range(2)),
            return_exceptions=True,
        )
        assert sorted(type(r).__name__ for r in results) == ["MerchantReward", "RewardAlreadyUsed"]
        assert await points_of(pool, "merchant", m.merchant.id) == (250, 0, 250)

    async def test_another_merchant_cannot_see_or_confirm_the_code(self, pool, settings):
        cfg = config(settings)
        m = await merchant(pool, cfg)
        thief = await merchant(pool, cfg)
        it = await item(pool, m.merchant.id)
        reward = await redeem(pool, cfg, await funded(pool, cfg, 500), it.id)
        with pytest.raises(RewardNotFound):
            await service.lookup(pool, cfg, thief.merchant.id, reward.code)
        with pytest.raises(RewardNotFound):
            await confirm(pool, cfg, thief.merchant.id, reward.qr_payload)

    async def test_refund_three_times_reverses_once(self, pool, settings):
        cfg = config(settings)
        m = await merchant(pool, cfg)
        it = await item(pool, m.merchant.id, cost_points=400)
        rid = await funded(pool, cfg, 1000)
        reward = await redeem(pool, cfg, rid, it.id)
        with pytest.raises(RewardNotUsed):
            await refund(pool, cfg, m.merchant.id, reward.id)
        await confirm(pool, cfg, m.merchant.id, reward.code)
        results = await asyncio.gather(
            *(refund(pool, cfg, m.merchant.id, reward.id) for _ in range(3))
        )
        assert {r.status for r in results} == {"refunded"}
        assert len({r.refunded_at for r in results}) == 1
        assert await points_of(pool, "resident", rid) == (1000, 0, 1000)
        assert await points_of(pool, "merchant", m.merchant.id) == (0, 0, 0)
        async with pool.acquire() as conn:
            reversals = await conn.fetchval(
                "SELECT count(*) FROM ledger_transfers WHERE kind = 'reversal'"
            )
            await invariants(conn)
        assert reversals == 1
        with pytest.raises(RewardNotFound):
            await refund(pool, cfg, (await merchant(pool, cfg)).merchant.id, reward.id)


class TestRelease:
    async def test_cancel_releases_hold_and_stock_once(self, pool, settings):
        cfg = config(settings)
        m = await merchant(pool, cfg)
        it = await item(pool, m.merchant.id, cost_points=100, total_stock=1)
        rid = await funded(pool, cfg, 300)
        reward = await redeem(pool, cfg, rid, it.id)
        for _ in range(2):
            async with transaction(pool) as tx:
                back = await service.cancel(tx, cfg, rid, reward.id, now=NOW)
            assert back.status == "cancelled"
        assert await points_of(pool, "resident", rid) == (300, 0, 300)
        assert (await service.get_item(pool, it.id)).remaining == 1
        with pytest.raises(RewardNotFound):  # someone else's reward
            async with transaction(pool) as tx:
                await service.cancel(tx, cfg, await resident(pool), reward.id, now=NOW)
        used = await redeem(pool, cfg, rid, it.id)
        await confirm(pool, cfg, m.merchant.id, used.code)
        with pytest.raises(RewardAlreadyUsed):
            async with transaction(pool) as tx:
                await service.cancel(tx, cfg, rid, used.id, now=NOW)

    async def test_expiry_releases_hold_and_stock_and_refuses_late_confirmation(
        self, pool, settings
    ):
        cfg = config(settings)
        m = await merchant(pool, cfg)
        it = await item(pool, m.merchant.id, cost_points=100, total_stock=2, validity_s=3600)
        rid = await funded(pool, cfg, 300)
        reward = await redeem(pool, cfg, rid, it.id)
        kept = await redeem(pool, cfg, rid, it.id, now=NOW + timedelta(minutes=30))
        assert (await service.get_item(pool, it.id)).remaining == 0
        async with transaction(pool) as tx:
            assert await service.expire(tx, cfg, now=NOW + timedelta(minutes=59)) == 0
        at = NOW + timedelta(hours=1)
        with pytest.raises(RewardExpired):  # at the end of validity, before the sweep
            await confirm(pool, cfg, m.merchant.id, reward.code, at)
        async with transaction(pool) as tx:
            assert await service.expire(tx, cfg, now=at) == 1
        async with transaction(pool) as tx:
            assert await service.expire(tx, cfg, now=at) == 0
        assert (await service.get_item(pool, it.id)).remaining == 1
        assert await points_of(pool, "resident", rid) == (300, 100, 200)
        mine = await service.my_reward(pool, cfg, rid, reward.id)
        assert mine.status == "expired" and mine.closed_at == at
        with pytest.raises(RewardExpired):
            await confirm(pool, cfg, m.merchant.id, reward.code, at)
        assert (await confirm(pool, cfg, m.merchant.id, kept.code, at)).status == "used"

    async def test_a_release_whose_lot_lapsed_goes_to_expiry_not_to_the_resident(
        self, pool, settings
    ):
        cfg = config(settings)
        m = await merchant(pool, cfg)
        rid = await resident(pool)
        earned = NOW.replace(year=2024)  # expires at the start of 2027 (Shanghai)
        await fund(pool, cfg, rid, 500, at=earned)
        lapse = cfg.points.expires_at(earned)
        it = await item(
            pool,
            m.merchant.id,
            cost_points=200,
            validity_s=30 * 86400,
            active_from=lapse - timedelta(days=10),
            active_until=lapse + timedelta(days=10),
        )
        before = lapse - timedelta(days=1)
        await redeem(pool, cfg, rid, it.id, now=before)
        after = lapse + timedelta(hours=1)
        async with transaction(pool) as tx:  # the held 200 are not expired while held
            await ledger.expire_lots(tx, cfg.points, region_code=DISTRICT, now=after)
        assert await points_of(pool, "resident", rid) == (200, 200, 0)
        end = before + timedelta(days=30)
        async with transaction(pool) as tx:
            assert await service.expire(tx, cfg, now=end) == 1
        assert await points_of(pool, "resident", rid) == (200, 0, 200)
        async with transaction(pool) as tx:
            await ledger.expire_lots(tx, cfg.points, region_code=DISTRICT, now=end)
        assert await points_of(pool, "resident", rid) == (0, 0, 0)
        assert await points_of(pool, "system", "expiry") == (500, 0, 500)
        async with pool.acquire() as conn:
            await invariants(conn)
