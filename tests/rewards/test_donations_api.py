"""Donation through the real app: the mobile routes (projects, donate with Idempotency-Key, my
certificates, the summary's holds, expiries and reminders) and the public ones (projects,
certificates, blocks), and `tanpuhui project register`."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from kit.auth import Role
from kit.db import transaction
from points import journal
from points import service as ledger
from points.schemas import Issuance, Owner, TransferRequest
from server.mobile.service import expiry_views
from tests.rewards.factories import POLICY, REGION, project, resident_with_points
from tests.server.processes import python, run, store_env

M = "/api/mobile/v1"
P = "/api/public/v1"


def auth(jwt_keys: Any, rid: str) -> dict[str, str]:
    token = jwt_keys.issue(rid, Role.RESIDENT, 600, extra={"typ": "access"})
    return {"Authorization": f"Bearer {token}"}


async def seal(pool: Any) -> None:
    async with transaction(pool) as tx:
        await journal.seal(tx)


class TestDonateOverTheApi:
    async def test_one_key_three_times_is_one_donation(self, client, pool, jwt_keys):
        p = await project(pool)
        rid = await resident_with_points(pool)  # 1,000 points
        headers = {**auth(jwt_keys, rid), "Idempotency-Key": "give-1"}
        body = {"asset": "POINT", "amount": 300}
        answers = await asyncio.gather(
            *(client.post(f"{M}/projects/{p.id}/donations", json=body, headers=headers)
              for _ in range(3))
        )  # fmt: skip
        assert [r.status_code for r in answers] == [201] * 3, [r.text for r in answers]
        assert len({r.json()["serial"] for r in answers}) == 1
        b = (await ledger.balances(pool, "resident", rid))[1]
        assert (b.posted, b.pending) == (700, 0)
        r = await client.get(f"{M}/certificates", headers=auth(jwt_keys, rid))
        assert r.status_code == 200 and [d["serial"] for d in r.json()["items"]] == [
            answers[0].json()["serial"]
        ]

    async def test_refusals(self, client, pool, jwt_keys):
        p = await project(pool)
        rid = await resident_with_points(pool, 1_000)  # 100 points
        headers = auth(jwt_keys, rid)
        url = f"{M}/projects/{p.id}/donations"
        r = await client.post(url, json={"asset": "POINT", "amount": 1}, headers=headers)
        assert r.status_code == 400, r.text  # no Idempotency-Key
        keyed = {**headers, "Idempotency-Key": "k"}
        r = await client.post(url, json={"asset": "POINT", "amount": 101}, headers=keyed)
        assert (r.status_code, r.json()["code"]) == (422, "insufficient_funds")
        r = await client.post(url, json={"asset": "POINT", "amount": 10}, headers=keyed)
        assert r.status_code == 201  # the refused attempt was rolled back, key and all
        r = await client.post(url, json={"asset": "POINT", "amount": 11}, headers=keyed)
        assert (r.status_code, r.json()["code"]) == (409, "idempotency_key_reused")
        r = await client.post(
            f"{M}/projects/{uuid.uuid4()}/donations",
            json={"asset": "POINT", "amount": 1},
            headers={**headers, "Idempotency-Key": "k2"},
        )
        assert (r.status_code, r.json()["code"]) == (404, "project_not_found")
        r = await client.post(url, json={"asset": "EUR", "amount": 1}, headers=keyed)
        assert (r.status_code, r.json()["code"]) == (400, "validation_failed")
        r = await client.post(url, json={"asset": "POINT", "amount": 1})
        assert r.status_code == 401

    async def test_projects_pages(self, client, pool, jwt_keys):
        now = datetime.now(UTC)
        made = [await project(pool, title=f"P{i}", starts_at=now - timedelta(days=i + 1))
                for i in range(3)]  # fmt: skip
        await project(pool, title="old", starts_at=now - timedelta(9), ends_at=now - timedelta(1))
        rid = await resident_with_points(pool)
        r = await client.get(f"{M}/projects?limit=2&open=true", headers=auth(jwt_keys, rid))
        assert r.status_code == 200, r.text
        first = r.json()
        r = await client.get(f"{P}/projects?limit=2&open=true&cursor={first['next_cursor']}")
        rest = r.json()
        assert [x["id"] for x in first["items"] + rest["items"]] == [x.id for x in made]
        assert rest["next_cursor"] is None
        r = await client.get(f"{P}/projects?cursor=bm90LWEtY3Vyc29y")
        assert (r.status_code, r.json()["code"]) == (400, "cursor_invalid")
        r = await client.get(f"{P}/projects/{made[0].id}")
        assert r.status_code == 200 and r.json()["status"] == "open"
        r = await client.get(f"{P}/projects/nope")
        assert (r.status_code, r.json()["code"]) == (404, "project_not_found")


class TestPublicCertificate:
    async def test_pending_then_verifiable_with_its_block(self, client, pool, jwt_keys):
        p = await project(pool, target_asset="CO2E_G", target_amount=1_000)
        rid = await resident_with_points(pool)
        await seal(pool)
        r = await client.post(
            f"{M}/projects/{p.id}/donations",
            json={"asset": "CO2E_G", "amount": 250},
            headers={**auth(jwt_keys, rid), "Idempotency-Key": "retire-1"},
        )
        assert r.status_code == 201, r.text
        url = r.json()["certificate_url"]
        r = await client.get(url)  # no login
        assert r.status_code == 200 and r.json()["status"] == "pending"
        await seal(pool)
        cert = (await client.get(url)).json()
        assert cert["status"] == "sealed" and cert["kind"] == "retirement"
        assert rid not in json.dumps(cert)
        block = (await client.get(f"{P}/journal/blocks/{cert['block']['seq']}")).json()
        assert block == cert["block"]
        checkpoint = (await client.get(f"{P}/journal/checkpoint")).json()
        assert checkpoint["public_key"] == cert["checkpoint"]["public_key"]
        page = (await client.get(f"{P}/projects/{p.id}")).json()
        assert (page["grams_retired"], page["progress_percent"], page["donors"]) == (250, 25, 1)
        r = await client.get(f"{P}/certificates/TPH-2026-P-99999999")
        assert (r.status_code, r.json()["code"]) == (404, "certificate_not_found")


class TestSummary:
    async def test_on_hold_and_every_expiry(self, client, pool, jwt_keys):
        rid = await resident_with_points(pool, 1_000)  # 100 points, expiring in ~2 years
        later = datetime.now(UTC) + timedelta(days=366)
        async with transaction(pool) as tx:
            await ledger.issue_reductions(tx, [issuance(rid, 500)], POLICY, now=later)
            await ledger.place_hold(tx, hold(rid, 30), POLICY)
        r = await client.get(f"{M}/summary", headers=auth(jwt_keys, rid))
        assert r.status_code == 200, r.text
        s = r.json()
        assert (s["points_on_hold"], s["points_pending"], s["points_available"]) == (30, 30, 120)
        assert [e["points"] for e in s["expiries"]] == [100, 50]
        first, second = (datetime.fromisoformat(e["expires_at"]) for e in s["expiries"])
        assert first < second and first > datetime.now(UTC) + timedelta(days=300)
        assert s["expiry_reminders"] == []  # nothing within 30 days

    def test_reminders_within_30_days_in_the_answers_language(self):
        from zoneinfo import ZoneInfo

        from points.schemas import ExpiringLot

        zone = ZoneInfo("Asia/Shanghai")
        at = datetime(2027, 1, 1, tzinfo=zone).astimezone(UTC)  # a year's lots end
        lots = [ExpiringLot(at, 80), ExpiringLot(at + timedelta(days=365), 5)]
        now = at - timedelta(days=10, hours=1)
        expiries, reminders = expiry_views(lots, "zh-CN", zone, now)
        assert [e.points for e in expiries] == [80, 5]
        [reminder] = reminders
        assert (reminder.points, reminder.days_left) == (80, 10)
        assert reminder.message == "80 积分将在 2026-12-31 之后过期：请在此之前使用或捐赠。"
        _, [en] = expiry_views(lots, "en", zone, now)
        assert en.message.startswith("80 points expire after 2026-12-31")
        assert expiry_views(lots, "en", zone, at - timedelta(days=31))[1] == []


def issuance(rid: str, grams: int) -> Issuance:
    return Issuance(
        resident_id=rid,
        reduction_g=grams,
        source_ref=f"evt-{uuid.uuid4()}",
        region_code=REGION,
        occurred_at=datetime.now(UTC),
    )


def hold(rid: str, amount: int) -> TransferRequest:
    return TransferRequest(
        idempotency_key=f"hold-{uuid.uuid4()}",
        debit=Owner("resident", rid),
        credit=Owner("merchant", "shop"),
        asset="POINT",
        amount=amount,
        kind="redemption",
        reason_code="reward",
        region_code=REGION,
        occurred_at=datetime.now(UTC),
    )


class TestRegisterCommand:
    async def test_register_then_listed(self, client, settings):
        now = datetime.now(UTC)
        done = run(
            python(
                "-m", "server.cli", "project", "register",
                "--title", "Trees for Longgang", "--beneficiary", "Longgang Greening Office",
                "--target-asset", "CO2E_G", "--target", "18000",
                "--starts", (now - timedelta(days=1)).isoformat(),
                "--ends", (now + timedelta(days=90)).isoformat(),
            ),
            env=store_env(settings),
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        made = json.loads(done.stdout)
        assert (made["target_asset"], made["target_amount"], made["status"]) == (
            "CO2E_G",
            18_000,
            "open",
        )
        r = await client.get(f"{P}/projects")
        assert [x["id"] for x in r.json()["items"]] == [made["id"]]
        bad = run(
            python(
                "-m", "server.cli", "project", "register", "--title", "x", "--beneficiary", "y",
                "--target-asset", "POINT", "--target", "0",
                "--starts", now.isoformat(), "--ends", now.isoformat(),
            ),
            env=store_env(settings),
        )  # fmt: skip
        assert bad.returncode == 1 and "tanpuhui project register" in bad.stderr
