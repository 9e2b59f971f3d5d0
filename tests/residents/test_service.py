"""The residents' rules, called directly (the HTTP flows are tests/mobile/): personal data in
keyed-hash form only, phones in ASCII digits, home districts, erasure, levels, the batch lock."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from kit.db import transaction
from kit.errors import DomainError
from kit.settings import PrivacySettings
from residents import service
from residents.errors import AccountGone, BadDistrict
from tests.residents.factories import config, resident, residents


class TestPersonalData:
    def test_phones_normalise_to_eleven_ascii_digits(self):
        for phone in ("13812345678", "8613812345678", "+8613812345678"):
            assert service.normalise_phone(phone) == "13812345678"
        for phone in ("1380000004\u0661", "\uff11\uff13800000041", "12812345678", "138123456"):
            with pytest.raises(DomainError) as err:
                service.normalise_phone(phone)
            assert err.value.status == 400

    def test_masked_phone_shows_only_its_ends(self):
        assert service.mask_phone("13812345678") == "138****5678"

    def test_keyed_hash_depends_on_key_and_purpose(self):
        a = PrivacySettings(phone_hash_key="key-a-0123456789abcdef")
        b = PrivacySettings(phone_hash_key="key-b-0123456789abcdef")
        assert service.keyed_hash(a, "phone", "1") != service.keyed_hash(b, "phone", "1")
        assert service.keyed_hash(a, "phone", "1") != service.keyed_hash(a, "ip", "1")
        assert len(service.keyed_hash(a, "phone", "1")) == 32


class TestDistricts:
    async def test_only_imported_districts_inside_the_region(self):
        cfg = config()
        await service.check_district(None, cfg, None)
        await service.check_district(None, cfg, "440305")
        for code in ("440300", "110105", "440399"):
            with pytest.raises(BadDistrict):
                await service.check_district(None, cfg, code)


class TestLevels:
    def test_levels_start_at_zero_and_grow(self):
        levels = service.levels()
        assert levels[0].min_grams == 0
        assert service.level_of(0) == (levels[0], levels[1])
        assert service.level_of(levels[-1].min_grams) == (levels[-1], None)


class TestResidentsForOtherPackages:
    async def test_created_in_one_statement_and_erasable(self, pool, redis):
        rids = await residents(pool, 3)
        async with pool.acquire() as conn:
            for rid in rids:
                assert await service.require_active(conn, rid) == "440305"
        async with transaction(pool) as tx:
            await service.delete_account(tx, redis, config(), rids[0])
        async with pool.acquire() as conn:
            with pytest.raises(AccountGone):
                await service.require_active(conn, rids[0])
            with pytest.raises(AccountGone):
                await service.resident_row(conn, str(uuid.uuid4()))

    async def test_lock_homes_reports_districts_and_erasure(self, pool, redis):
        a, b = await resident(pool, "440305"), await resident(pool, None)
        async with transaction(pool) as tx:
            await service.delete_account(tx, redis, config(), b)
        async with transaction(pool) as tx:
            homes = await service.lock_homes(tx.conn, [b, a, str(uuid.uuid4()), a])
        assert homes == {
            a: service.Home("440305", erased=False),
            b: service.Home(None, erased=True),
        }

    async def test_lock_homes_serialises_transactions_on_one_resident(self, pool):
        rid = await resident(pool)
        order: list[str] = []
        first_locked = asyncio.Event()

        async def first() -> None:
            async with transaction(pool) as tx:
                await service.lock_homes(tx.conn, [rid])
                first_locked.set()
                await asyncio.sleep(0.2)
                order.append("first")

        async def second() -> None:
            await first_locked.wait()
            async with transaction(pool) as tx:
                await service.lock_homes(tx.conn, [rid])
                order.append("second")

        await asyncio.gather(first(), second())
        assert order == ["first", "second"]
