"""Offsets (enterprises.offsets): buying the programme's lowest free serials, retiring them within
the cap, the database refusing any move of retired serials and any overlap of live holdings,
concurrent buyers and retirers served exactly once, the net emissions; the ledger audit (run
after every test by the fixtures) passes."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import asyncpg
import pytest

from enterprises import offsets
from enterprises.offsets_errors import OffsetCapExceeded, OffsetHoldingsShort, OffsetSupplyShort
from enterprises.offsets_schemas import Retirement
from points import service as points
from tests.enterprises.offsets_factories import (
    SETTINGS,
    YEAR,
    buy,
    emitting,
    events,
    issue,
    retire,
)


async def _posted(pool: Any, owner_type: str, owner_id: str) -> int:
    async with pool.acquire() as conn:
        return sum(
            b.posted
            for b in await points.balances(conn, owner_type, owner_id)
            if b.asset == "CO2E_G"
        )


async def _cap_g(pool: Any, enterprise_id: uuid.UUID) -> int:
    async with pool.acquire() as conn:
        return (await offsets.cap(conn, enterprise_id, YEAR, SETTINGS)).cap_g


class TestBuy:
    async def test_lowest_free_serials_across_blocks(self, pool: Any):
        await events(pool, [300, 400])
        await issue(pool, "b1", 300)
        await issue(pool, "b2", 400)
        a, b = await emitting(pool, 2)
        p1 = await buy(pool, a, 200)
        p2 = await buy(pool, b, 250)  # the rest of block 1 and the start of block 2
        assert [(r.start, r.end) for r in p1.serials] == [(1, 200)]
        assert [(r.issuance_id, r.start, r.end) for r in p2.serials] == [
            (1, 201, 300),
            (2, 301, 450),
        ]
        assert p2.amount_yuan == round(250 / 1e6 * 50, 2)
        assert await _posted(pool, "enterprise", f"{b}:offsets") == 250
        assert await _posted(pool, "system", "offset_programme") == 700 - 450
        async with pool.acquire() as conn:
            assert p2.transfer_id is not None
            t = await points.get_transfer(conn, p2.transfer_id)
        assert t is not None and t.source_ref == f"offset-purchase:{p2.id}:serials:201-300,301-450"

    async def test_replay_and_short_supply(self, pool: Any):
        await events(pool, [100])
        await issue(pool, "b", None)
        [a] = await emitting(pool, 1)
        first = await buy(pool, a, 60, key="k")
        assert await buy(pool, a, 60, key="k") == first  # a replay: nothing bought twice
        with pytest.raises(OffsetSupplyShort) as e:
            await buy(pool, a, 41)
        assert e.value.extra == {"available_g": 40}
        assert await _posted(pool, "enterprise", f"{a}:offsets") == 60

    async def test_concurrent_buyers_of_the_same_serials(self, pool: Any):
        await events(pool, [100])
        await issue(pool, "b", None)
        a, b = await emitting(pool, 2)
        got = await asyncio.gather(buy(pool, a, 100), buy(pool, b, 100), return_exceptions=True)
        assert sorted(type(r).__name__ for r in got) == ["OffsetSupplyShort", "Purchase"]


class TestRetire:
    async def test_retire_splits_holdings_and_moves_the_grams(self, pool: Any):
        await events(pool, [1000])
        await issue(pool, "b", None)
        [a] = await emitting(pool, 1)
        await buy(pool, a, 300)
        r = await retire(pool, a, 120)
        assert r.serial == f"TPH-{YEAR}-O-00000001" and r.period == YEAR
        assert [(s.start, s.end) for s in r.serials] == [(1, 120)]
        async with pool.acquire() as conn:
            h = await offsets.holdings(conn, a)
            assert await offsets.retired_grams(conn, a, YEAR) == 120
            assert await offsets.retired_grams(conn, a, YEAR - 1) == 0
            assert r.transfer_id is not None
            t = await points.get_transfer(conn, r.transfer_id)
        assert (h.held_g, h.retired_g) == (180, 120)
        assert [(x.state, x.serial_start, x.serial_end) for x in h.holdings] == [
            ("retired", 1, 120),
            ("held", 121, 300),
        ]
        assert t is not None and t.source_ref == offsets.retirement_ref(
            r.serial, a, YEAR, [(1, 120)]
        )
        assert await _posted(pool, "enterprise", f"{a}:offsets") == 180
        assert await _posted(pool, "enterprise", f"{a}:offsets_retired") == 120
        # a retirement replayed answers the first; more than held is refused
        again = await retire(pool, a, 50)
        assert [(s.start, s.end) for s in again.serials] == [(121, 170)]
        with pytest.raises(OffsetHoldingsShort) as e:
            await retire(pool, a, 131)
        assert e.value.extra == {"held_g": 130}

    async def test_over_the_cap_refused_with_its_code(self, pool: Any):
        await events(pool, [1000])
        await issue(pool, "b", None)
        [a] = await emitting(pool, 1, kwh_per_month=0.1)  # a tiny emitter: a small cap
        cap = await _cap_g(pool, a)
        assert 0 < cap < 1000
        await buy(pool, a, 1000)
        await retire(pool, a, cap - 10)
        with pytest.raises(OffsetCapExceeded) as e:
            await retire(pool, a, 11)
        assert e.value.code == "offset_cap_exceeded" and e.value.status == 422
        assert e.value.extra is not None
        assert (e.value.extra["cap_g"], e.value.extra["used_g"], e.value.extra["requested_g"]) == (
            cap,
            cap - 10,
            11,
        )
        await retire(pool, a, 10)  # up to the cap exactly
        with pytest.raises(OffsetCapExceeded):
            await retire(pool, a, 1, period=YEAR - 1)  # no emissions that year: a cap of 0
        async with pool.acquire() as conn:
            n = await offsets.net(conn, a, YEAR, SETTINGS)
        assert n.offsets_retired_g == cap and n.cap.remaining_g == 0
        assert n.net_emissions_kg == pytest.approx(n.gross_emissions_kg - cap / 1000, abs=1e-3)

    async def test_same_serials_retired_concurrently_once(self, pool: Any):
        await events(pool, [500])
        await issue(pool, "b", None)
        [a] = await emitting(pool, 1)
        await buy(pool, a, 500)
        got = await asyncio.gather(
            retire(pool, a, 400), retire(pool, a, 400), return_exceptions=True
        )
        assert sorted(type(r).__name__ for r in got) == ["OffsetHoldingsShort", "Retirement"]

    async def test_two_enterprises_racing_for_the_same_serials_retire_them_once(self, pool: Any):
        # Each buys the same lowest serials and retires them at once, on its own connection.
        await events(pool, [200])
        await issue(pool, "b", None)
        a, b = await emitting(pool, 2)

        async def buy_and_retire(e: uuid.UUID) -> Retirement:
            await buy(pool, e, 200)
            return await retire(pool, e, 200)

        got = await asyncio.gather(buy_and_retire(a), buy_and_retire(b), return_exceptions=True)
        won = [r for r in got if isinstance(r, Retirement)]
        assert len(won) == 1 and isinstance(
            next(r for r in got if not isinstance(r, Retirement)), OffsetSupplyShort
        )
        assert [(s.start, s.end) for s in won[0].serials] == [(1, 200)]
        assert await _posted(pool, "enterprise", f"{won[0].enterprise_id}:offsets_retired") == 200


class TestDatabase:
    async def test_retired_serials_never_move_and_live_holdings_never_overlap(
        self, pool: Any, owner_pool: Any
    ):
        await events(pool, [100])
        await issue(pool, "b", None)
        a, b = await emitting(pool, 2)
        p = await buy(pool, a, 100)
        await retire(pool, a, 40)
        async with pool.acquire() as conn:
            rid = await conn.fetchval("SELECT id FROM offset_holdings WHERE state = 'retired'")
            # the application role: no DELETE, no UPDATE but of ended_at
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute("DELETE FROM offset_holdings WHERE id = $1", rid)
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute(
                    "UPDATE offset_holdings SET enterprise_id = $2 WHERE id = $1", rid, b
                )
            with pytest.raises(asyncpg.CheckViolationError):
                await conn.execute("UPDATE offset_holdings SET ended_at = now() WHERE id = $1", rid)
            # an overlapping live holding for another enterprise
            with pytest.raises(asyncpg.ExclusionViolationError):
                await conn.execute(
                    """
                    INSERT INTO offset_holdings (issuance_id, serial_start, serial_end,
                        enterprise_id, state, purchase_id) VALUES (1, 30, 50, $1, 'held', $2)
                    """,
                    b,
                    p.id,
                )
            # the ledger's retired offsets never leave their account
            with pytest.raises(asyncpg.CheckViolationError):
                await conn.execute(
                    "UPDATE ledger_accounts SET posted = posted - 1"
                    " WHERE owner_type = 'enterprise' AND owner_id = $1",
                    f"{a}:offsets_retired",
                )
        async with owner_pool.acquire() as conn:  # not even the schema's owner
            with pytest.raises(asyncpg.CheckViolationError):
                await conn.execute("DELETE FROM offset_holdings WHERE id = $1", rid)
            with pytest.raises(asyncpg.CheckViolationError):
                await conn.execute("UPDATE offset_holdings SET state = 'held' WHERE id = $1", rid)
            with pytest.raises(asyncpg.CheckViolationError):
                await conn.execute("DELETE FROM offset_retirements")
            with pytest.raises(asyncpg.CheckViolationError):  # outside its block
                await conn.execute(
                    """
                    INSERT INTO offset_holdings (issuance_id, serial_start, serial_end,
                        enterprise_id, state, purchase_id) VALUES (1, 101, 101, $1, 'held', $2)
                    """,
                    b,
                    p.id,
                )

    async def test_two_connections_racing_to_hold_the_same_serials(self, pool: Any):
        # Below the service: two transactions inserting the same live serials, in parallel.
        await events(pool, [100])
        await issue(pool, "b", None)
        a, b = await emitting(pool, 2)
        p = await buy(pool, a, 10)
        async with pool.acquire() as c1, pool.acquire() as c2:

            async def hold(conn: Any, e: uuid.UUID) -> str:
                async with conn.transaction():
                    await conn.execute(
                        """
                        INSERT INTO offset_holdings (issuance_id, serial_start, serial_end,
                            enterprise_id, state, purchase_id)
                        VALUES (1, 50, 60, $1, 'held', $2)
                        """,
                        e,
                        p.id,
                    )
                    await asyncio.sleep(0.2)
                return "held"

            got = await asyncio.gather(hold(c1, a), hold(c2, b), return_exceptions=True)
        assert sorted(type(r).__name__ for r in got) == ["ExclusionViolationError", "str"]
        # (the row a test inserted under the service's nose is left in the table; nothing reads it
        # but the holdings listing)
