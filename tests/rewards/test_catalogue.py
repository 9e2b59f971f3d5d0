"""Merchants and the catalogue: registration (CLI included), signing keys sealed at rest, items'
rules, coupon code pools (CSV, unique, hashed and sealed, each code issued once)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import msgspec
import pytest

from kit.db import transaction
from kit.errors import InvalidInput
from rewards import service
from rewards.errors import CodesRejected, MerchantExists, MerchantKeyExists, OutOfStock
from tests.rewards.factories import NOW, config, coupon_item, funded, item, merchant, spec

ROOT = Path(__file__).resolve().parents[2]


async def redeem(pool, cfg, rid, item_id, now=NOW):
    async with transaction(pool) as tx:
        return await service.redeem(tx, cfg, rid, item_id, now=now)


class TestMerchants:
    async def test_keys_are_sealed_and_looked_up(self, pool, settings):
        cfg = config(settings)
        m = await merchant(pool, cfg, "cafe-1", key=("k1", "secret-0123456789abcdef"))
        assert m.webhook_secret is None
        lookup = service.secret_lookup(pool, cfg)
        assert await lookup("cafe-1", "k1") == "secret-0123456789abcdef"
        assert await lookup("cafe-1", "k2") is None
        async with pool.acquire() as conn:
            stored = await conn.fetchval("SELECT secret FROM merchant_keys")
            account = await conn.fetchval(
                "SELECT count(*) FROM ledger_accounts WHERE owner_type = 'merchant'"
            )
        assert stored.startswith("v1:") and "secret-0123" not in stored
        assert account == 1  # opened at registration
        with pytest.raises(MerchantExists):
            await merchant(pool, cfg, "cafe-1")
        with pytest.raises(MerchantKeyExists):
            async with transaction(pool) as tx:
                await service.issue_key(tx, cfg, "cafe-1", "k1")
        async with transaction(pool) as tx:
            assert await service.revoke_key(tx, "cafe-1", "k1")
        assert await lookup("cafe-1", "k1") is None

    async def test_the_cli_registers_issues_a_key_adds_an_item_and_imports_codes(
        self, pool, settings, tmp_path
    ):
        env = {**os.environ, "DATABASE_URL": settings.database.url, "PYTHONPATH": str(ROOT)}

        def tanpuhui(*args):
            done = subprocess.run(
                [sys.executable, "-m", "server.cli", "merchant", *args],
                env=env,
                cwd=ROOT,
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            return done.returncode, done.stdout, done.stderr

        code, out, err = await asyncio.to_thread(
            tanpuhui,
            "register",
            "--id",
            "metro-shop",
            "--name",
            "Metro shop",
            "--contact",
            "billing@metro.example",
            "--webhook-url",
            "https://metro.example/hooks",
        )
        assert code == 0, err
        registered = json.loads(out)
        assert registered["merchant"]["id"] == "metro-shop"
        assert len(registered["webhook_secret"]) == 64
        code, out, err = await asyncio.to_thread(
            tanpuhui, "issue-key", "--id", "metro-shop", "--key-id", "k1"
        )
        assert code == 0, err
        secret = json.loads(out)["secret"]
        cfg = config(settings)
        assert await service.secret_lookup(pool, cfg)("metro-shop", "k1") == secret
        item_file = tmp_path / "item.json"
        item_file.write_bytes(
            msgspec.json.encode(spec("metro-shop", kind="coupon_code", total_stock=0))
        )
        code, out, err = await asyncio.to_thread(tanpuhui, "add-item", "--file", str(item_file))
        assert code == 0, err
        item_id = json.loads(out)["id"]
        codes_file = tmp_path / "codes.csv"
        codes_file.write_text("code\nAAA-1\nBBB-2\nCCC-3\n")
        code, out, err = await asyncio.to_thread(
            tanpuhui, "import-codes", "--item", item_id, "--file", str(codes_file)
        )
        assert code == 0, err
        assert json.loads(out)["codes_added"] == 3
        code, out, err = await asyncio.to_thread(
            tanpuhui, "import-codes", "--item", item_id, "--file", str(codes_file)
        )
        assert code == 1 and "already" in err
        code, _, err = await asyncio.to_thread(tanpuhui, "register", "--id", "x")
        assert code == 2 and "--name" in err
        assert (await service.get_item(pool, item_id)).remaining == 3


class TestItems:
    async def test_rules_of_an_item(self, pool, settings):
        cfg = config(settings)
        m = await merchant(pool, cfg)
        for changes in (
            {"active_until": NOW - timedelta(days=2)},
            {"visible_until": NOW - timedelta(days=3)},
            {"period_limit": 1},
            {"kind": "coupon_code", "total_stock": 5},
        ):
            with pytest.raises(InvalidInput) as refused:
                await item(pool, m.merchant.id, **changes)
            assert refused.value.code == "validation_failed" and refused.value.errors

    async def test_physical_items_track_delivery(self, pool, settings):
        cfg = config(settings)
        m = await merchant(pool, cfg)
        it = await item(pool, m.merchant.id, kind="physical", title="Tote bag")
        reward = await redeem(pool, cfg, await funded(pool, cfg, 500), it.id)
        assert reward.delivery_status == "pending"
        async with transaction(pool) as tx:
            done = await service.confirm(tx, cfg, m.merchant.id, reward.code, now=NOW)
        assert done.delivery_status == "shipped"
        async with transaction(pool) as tx:
            done = await service.set_delivery(tx, cfg, m.merchant.id, reward.id, "delivered")
        assert done.delivery_status == "delivered"


class TestCoupons:
    async def test_a_pool_is_imported_whole_or_not_at_all(self, pool, settings):
        cfg = config(settings)
        m = await merchant(pool, cfg)
        it = await coupon_item(pool, cfg, m.merchant.id, ["GIFT-ALPHA-7", "B-2"])
        assert (await service.get_item(pool, it.id)).total_stock == 2
        for content, needle in (
            (b"code\nC-3\nc3\n", "repeats"),  # same code once normalised
            (b"code\n\n", None),
            (b"\xff\xfe", None),
        ):
            with pytest.raises(CodesRejected) as refused:
                async with transaction(pool) as tx:
                    await service.import_codes(tx, cfg, it.id, content)
            if needle:
                assert refused.value.errors
                assert needle in refused.value.errors[0].message
        other = await item(pool, m.merchant.id, kind="coupon_code", total_stock=0)
        with pytest.raises(CodesRejected):  # B-2 is already the merchant's
            async with transaction(pool) as tx:
                await service.import_codes(tx, cfg, other.id, b"D-4\nB2\n")
        assert (await service.get_item(pool, other.id)).total_stock == 0
        async with pool.acquire() as conn:
            stored = await conn.fetch("SELECT code_hash, code_sealed FROM reward_codes")
        assert len(stored) == 2
        # neither form holds the code in the clear (a code long enough that random
        # ciphertext or hash bytes cannot contain it by chance)
        assert all(
            b"GIFTALPHA7" not in bytes(r["code_hash"])
            and "GIFTALPHA7" not in r["code_sealed"]
            and "GIFT-ALPHA-7" not in r["code_sealed"]
            for r in stored
        )

    async def test_each_code_is_issued_once_even_when_cancelled(self, pool, settings):
        cfg = config(settings)
        m = await merchant(pool, cfg)
        it = await coupon_item(pool, cfg, m.merchant.id, ["X-1", "Y-2", "Z-3"], cost_points=10)
        people = [await funded(pool, cfg, 100) for _ in range(5)]
        outcomes = await asyncio.gather(
            *(redeem(pool, cfg, r, it.id) for r in people), return_exceptions=True
        )
        issued = [o for o in outcomes if not isinstance(o, BaseException)]
        assert sorted(o.code for o in issued) == ["X1", "Y2", "Z3"]
        assert sum(isinstance(o, OutOfStock) for o in outcomes) == 2
        # A cancelled coupon's code was seen by its resident: burnt, never issued again.
        owner = people[outcomes.index(issued[0])]
        async with transaction(pool) as tx:
            await service.cancel(tx, cfg, owner, issued[0].id, now=NOW)
        assert (await service.get_item(pool, it.id)).remaining == 0
        with pytest.raises(OutOfStock):
            await redeem(pool, cfg, people[-1], it.id)
        seen = await service.lookup(pool, cfg, m.merchant.id, issued[0].code.lower())
        assert seen.status == "cancelled" and seen.code_masked == "**"
