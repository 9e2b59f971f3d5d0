"""The summary's standing (``residents.service.standing``) and its cached home district: with a
warm cache one SQL statement (the ledger's summary) and one Redis round trip; the same answer as
on a miss; a change of district and an erasure seen by the next summary."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from kit.db import transaction
from points import service as points_service
from residents import repository as repo
from residents import service
from residents.errors import AccountGone, SessionRevoked
from tests.points.factories import POLICY, issuance
from tests.residents.factories import config, resident
from tests.statements import CountingConnection


async def credit(pool: Any, rid: str, grams: int) -> None:
    async with transaction(pool) as tx:
        await points_service.issue_reductions(tx, [issuance(rid, grams)], POLICY)


async def standing(pool: Any, redis: Any, rid: str, family: str | None = None) -> Any:
    """The standing, and the statements it sent to PostgreSQL."""
    async with pool.acquire() as conn:
        counter = CountingConnection(conn)
        s = await service.standing(counter, redis, rid, family)
    return s, counter


async def move(pool: Any, redis: Any, rid: str, district: str | None) -> None:
    """PATCH /me's rule."""
    async with transaction(pool) as tx:
        await service.update_profile(tx, redis, config(), rid, district)


async def forget_home(redis: Any, rid: str) -> None:
    """As when the cache entry expired or Redis lost it."""
    await redis.delete(repo._home_key(rid))


class TestWarmCache:
    async def test_one_statement_and_the_same_standing_as_a_miss(self, pool, redis):
        a, b = await resident(pool), await resident(pool)
        await credit(pool, a, 120)
        await credit(pool, b, 300)
        await standing(pool, redis, b)  # builds the board

        cold, cold_sql = await standing(pool, redis, a)
        assert cold_sql.calls == 2, cold_sql.log  # the ledger's summary, then the resident
        assert await repo.cached_home(redis, a) == (True, "440305")
        warm, warm_sql = await standing(pool, redis, a)
        assert warm_sql.calls == 1, warm_sql.log  # the ledger's summary only
        assert warm == cold
        assert (warm.district_code, warm.district_rank, warm.district_residents) == (
            "440305",
            2,
            2,
        )
        assert warm.ledger.grams == 120

        await forget_home(redis, a)
        again, again_sql = await standing(pool, redis, a)
        assert again_sql.calls == 2 and again == cold

    async def test_a_stale_board_is_rebuilt_on_a_hit(self, pool, redis):
        a, b = await resident(pool), await resident(pool)
        await credit(pool, b, 500)
        await standing(pool, redis, a)  # warm the home, build the board
        await redis.delete(repo._board_key("440305") + ":built")  # stale (BOARD_FRESH_S)
        s, sql = await standing(pool, redis, a)
        assert sql.calls == 3, sql.log  # the ledger's summary, then the rebuild's two reads
        assert (s.district_rank, s.district_residents) == (2, 2)

    async def test_a_resident_without_district(self, pool, redis):
        rid = await resident(pool, None)
        cold, _ = await standing(pool, redis, rid)
        assert await repo.cached_home(redis, rid) == (True, None)
        warm, sql = await standing(pool, redis, rid)
        assert sql.calls == 1
        assert warm == cold
        assert (warm.district_code, warm.district_rank, warm.district_residents) == (
            None,
            None,
            None,
        )


class TestChangeOfDistrict:
    async def test_the_next_summary_shows_the_new_district_and_board(self, pool, redis):
        a, b, c = await resident(pool), await resident(pool, "440306"), await resident(pool)
        await credit(pool, a, 100)
        await credit(pool, b, 300)
        await credit(pool, c, 50)
        before, _ = await standing(pool, redis, a)
        assert (before.district_code, before.district_rank, before.district_residents) == (
            "440305",
            1,
            2,
        )
        await standing(pool, redis, b)  # 440306's board, built

        await move(pool, redis, a, "440306")
        after, sql = await standing(pool, redis, a)
        assert sql.calls == 1, sql.log  # written through, not merely forgotten
        assert (after.district_code, after.district_rank, after.district_residents) == (
            "440306",
            2,
            2,
        )
        await move(pool, redis, a, None)
        s, sql = await standing(pool, redis, a)
        assert sql.calls == 1
        assert (s.district_code, s.district_rank, s.district_residents) == (None, None, None)

    async def test_a_change_rolled_back_leaves_the_cache(self, pool, redis):
        rid = await resident(pool)
        await standing(pool, redis, rid)

        async def change_then_fail() -> None:
            async with transaction(pool) as tx:
                await service.update_profile(tx, redis, config(), rid, "440306")
                raise RuntimeError("rolled back")

        with pytest.raises(RuntimeError):
            await change_then_fail()
        assert await repo.cached_home(redis, rid) == (True, "440305")
        s, _ = await standing(pool, redis, rid)
        assert s.district_code == "440305"

    async def test_a_late_write_of_an_older_change_loses(self, pool, redis):
        """Two changes' after-commit writes may arrive in either order; the later change wins,
        and a summary's fill never overwrites a change."""
        rid = await resident(pool)
        async with transaction(pool) as tx:
            first = await repo.set_district(tx, rid, "440306")
        async with transaction(pool) as tx:
            second = await repo.set_district(tx, rid, None)
        assert first is not None and second is not None and second > first
        await repo.cache_home(redis, rid, None, second)
        await repo.cache_home(redis, rid, "440306", first)
        assert await repo.cached_home(redis, rid) == (True, None)
        state = await repo.standing(redis, rid, None, 0, fill=("440305",))
        assert state.district_code == "440305"  # what the caller read, answered as read
        assert await repo.cached_home(redis, rid) == (True, None)  # not cached over the change

    async def test_the_set_district_of_other_packages_writes_through(self, pool, redis):
        rid = await resident(pool)
        await standing(pool, redis, rid)
        async with transaction(pool) as tx:
            await service.set_district(tx, redis, rid, "440306")
        s, sql = await standing(pool, redis, rid)
        assert s.district_code == "440306"
        assert sql.calls == 3, sql.log  # the ledger's summary, the new board's first build


class TestRefusals:
    async def test_an_erased_resident_is_refused_with_a_warm_cache(self, pool, redis):
        rid = await resident(pool)
        await credit(pool, rid, 10)
        await standing(pool, redis, rid)
        assert await repo.cached_home(redis, rid) == (True, "440305")
        cfg = config()
        async with transaction(pool) as tx:
            await service.delete_account(tx, redis, cfg, rid)
        with pytest.raises(AccountGone):
            await standing(pool, redis, rid)
        # The marker outlives every access token, and the cached home went with the erasure:
        # should Redis lose the marker, PostgreSQL refuses (a miss reads the resident).
        assert await redis.ttl(repo._deleted_key(rid)) >= cfg.auth.access_ttl_s
        assert await repo.cached_home(redis, rid) == (False, None)
        await redis.delete(repo._deleted_key(rid))
        with pytest.raises(AccountGone):
            await standing(pool, redis, rid)
        assert await redis.zscore(repo._board_key("440305"), rid) is None

    async def test_no_fill_or_change_recreates_an_erased_residents_home(self, pool, redis):
        rid = await resident(pool)
        async with transaction(pool) as tx:
            await service.delete_account(tx, redis, config(), rid)
        state = await repo.standing(redis, rid, None, 0, fill=("440305",))  # a racing miss
        assert state.deleted
        await repo.cache_home(redis, rid, "440306", 2**52)  # a racing change's write
        assert await repo.cached_home(redis, rid) == (False, None)
        assert await redis.zscore(repo._board_key("440305"), rid) is None

    async def test_an_ended_sign_in_is_refused_with_a_warm_cache(self, pool, redis):
        rid, family = await resident(pool), str(uuid.uuid4())
        await standing(pool, redis, rid, family)
        await repo.mark_family_revoked(redis, family, "signed_out", 60)
        with pytest.raises(SessionRevoked):
            await standing(pool, redis, rid, family)
        s, _ = await standing(pool, redis, rid, str(uuid.uuid4()))  # another sign-in lives
        assert s.district_code == "440305"
