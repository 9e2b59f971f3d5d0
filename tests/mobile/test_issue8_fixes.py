"""Issue 8, items 6, 10 and 11: SMS budgets, ASCII digits, profile PATCH semantics, one level
rule, one DataSource builder, the history's order, imported districts, and a contract that
derives from the code."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import pytest
from litestar.testing import AsyncTestClient

from behaviours import service as behaviours_service
from behaviours.rules import Reason
from behaviours.tracks import REASONS as TRACK_REASONS
from kit.db import transaction
from kit.errors import DomainError
from mobile_api_spec.generate import build
from points import service as points_service
from residents import service as residents_service
from residents.errors import SmsRateLimited
from server.app import create_app
from server.mobile.schemas import LINKABLE_KINDS
from server.mobile.service import residents_config
from server.settings import Settings, SettingsError
from tests.mobile.conftest import API, bearer, sign_in
from tests.mobile.test_reads_activities import ride, track
from tests.points.factories import POLICY, issuance

PHONE = "13812345678"
ROOT = Path(__file__).resolve().parents[2]


def _sms(settings: Settings, **kw: Any) -> Settings:
    return msgspec.structs.replace(settings, sms=msgspec.structs.replace(settings.sms, **kw))


# --- item 6: SMS budgets count only codes sent; digits are ASCII -----------------------------


class TestSmsBudget:
    async def test_refused_requests_do_not_consume_the_hourly_budget(
        self, mobile_settings, upstreams, redis
    ):
        """Six requests inside the resend wait used to spend the phone's hourly budget."""
        spaced = _sms(mobile_settings, resend_interval_s=60, per_phone_per_hour=2)
        async with AsyncTestClient(app=create_app(spaced)) as c:
            assert (await c.post(f"{API}/auth/sms-codes", json={"phone": PHONE})).status_code == 202
            for _ in range(6):
                r = await c.post(f"{API}/auth/sms-codes", json={"phone": PHONE})
                assert r.status_code == 429 and r.json()["code"] == "sms_rate_limited"
            # The resend wait is over (its slot expires): the second code of the hour is sent.
            [slot] = await redis.keys("mobile:sms:resend:*")
            await redis.delete(slot)
            r = await c.post(f"{API}/auth/sms-codes", json={"phone": PHONE})
            assert r.status_code == 202, r.text
            await redis.delete(slot)
            # The budget still holds: two codes were sent this hour.
            r = await c.post(f"{API}/auth/sms-codes", json={"phone": PHONE})
            assert r.status_code == 429 and int(r.headers["retry-after"]) > 60
        assert len([m for m in upstreams.sms if m["phone"] == PHONE]) == 2

    async def test_a_code_the_gateway_refused_does_not_count(self, mobile_settings, upstreams):
        tight = _sms(mobile_settings, per_phone_per_hour=2)
        async with AsyncTestClient(app=create_app(tight)) as c:
            upstreams.sms_status = 500
            for _ in range(3):
                r = await c.post(f"{API}/auth/sms-codes", json={"phone": PHONE})
                assert r.status_code == 503 and r.json()["code"] == "sms_unavailable"
            upstreams.sms_status = 200
            for _ in range(2):
                r = await c.post(f"{API}/auth/sms-codes", json={"phone": PHONE})
                assert r.status_code == 202, r.text

    async def test_one_client_cannot_lock_a_phone_out(self, mobile_settings, upstreams, redis):
        """Concurrent requests from one address get exactly its budget for the phone (no
        overshoot); another address still gets codes; the phone's own cap holds for all."""
        s = _sms(
            mobile_settings,
            resend_interval_s=0,
            per_phone_per_hour=3,
            per_phone_all_clients_per_hour=5,
            per_ip_per_hour=100,
        )

        async def send(ip: str) -> bool:
            try:
                await residents_service.send_code(redis, residents_config(s), PHONE, ip)
            except SmsRateLimited:
                return False
            return True

        outcomes = await asyncio.gather(*(send("198.51.100.7") for _ in range(10)))
        assert sum(outcomes) == 3
        assert await send("203.0.113.9") and await send("203.0.113.9")
        # Five codes went to this phone this hour: its cap, whoever asks.
        assert not await send("192.0.2.44")
        assert len(upstreams.sms) == 5

    def test_the_phone_cap_must_exceed_one_clients_budget(self):
        env = {"TANPUHUI_SMS_PER_PHONE_PER_HOUR": "5"}
        with pytest.raises(SettingsError) as err:
            Settings.from_env({**env, "TANPUHUI_SMS_PER_PHONE_ALL_CLIENTS_PER_HOUR": "5"})
        assert err.value.variable == "TANPUHUI_SMS_PER_PHONE_ALL_CLIENTS_PER_HOUR"
        ok = Settings.from_env({**env, "TANPUHUI_SMS_PER_PHONE_ALL_CLIENTS_PER_HOUR": "6"})
        assert ok.sms.per_phone_all_clients_per_hour == 6

    async def test_other_unicode_digits_are_refused(self, mclient, upstreams):
        """`\\d` matched Arabic-Indic digits: `1380000004١` was another account than
        `13800000041`, with budgets of its own."""
        for phone in ("1380000004\u0661", "\uff11\uff13800000041", PHONE + "\n"):
            r = await mclient.post(f"{API}/auth/sms-codes", json={"phone": phone})
            assert r.status_code == 400, phone
            assert r.json()["code"] == "validation_failed"
        assert upstreams.sms == []
        with pytest.raises(DomainError) as err:
            residents_service.normalise_phone("1380000004\u0661")
        assert err.value.status == 400
        await mclient.post(f"{API}/auth/sms-codes", json={"phone": PHONE})
        code = upstreams.last_code(PHONE)
        arabic = code[:-1] + chr(0x0660 + int(code[-1]))
        r = await mclient.post(f"{API}/auth/sms-sign-in", json={"phone": PHONE, "code": arabic})
        assert r.status_code == 400 and r.json()["code"] == "validation_failed"
        pair = await sign_in(mclient, upstreams)
        for district in ("44030\u0665", "440305\n"):
            r = await mclient.patch(
                f"{API}/me", json={"district_code": district}, headers=bearer(pair)
            )
            assert r.status_code == 400, district


# --- item 10: the profile, levels, data sources, history order, districts ---------------------


class TestProfile:
    async def test_patch_without_the_field_leaves_the_district_alone(self, mclient, upstreams):
        auth = bearer(await sign_in(mclient, upstreams))
        r = await mclient.patch(f"{API}/me", json={}, headers=auth)
        assert r.status_code == 200 and r.json()["district_code"] == "440305"
        assert (await mclient.get(f"{API}/me", headers=auth)).json()["district_code"] == "440305"
        r = await mclient.patch(f"{API}/me", json={"district_code": "440306"}, headers=auth)
        assert r.json()["district_code"] == "440306"
        r = await mclient.patch(f"{API}/me", json={"district_code": None}, headers=auth)
        assert r.status_code == 200 and r.json()["district_code"] is None

    async def test_profile_export_and_summary_show_one_level(self, mclient, upstreams, pool):
        pair = await sign_in(mclient, upstreams)
        async with transaction(pool) as tx:
            await points_service.issue_reductions(
                tx, [issuance(pair["resident_id"], 12_345)], POLICY
            )
        auth = bearer(pair)
        summary = (await mclient.get(f"{API}/summary", headers=auth)).json()
        me = (await mclient.get(f"{API}/me", headers=auth)).json()
        export = (await mclient.get(f"{API}/me/export", headers=auth)).json()
        patched = (await mclient.patch(f"{API}/me", json={}, headers=auth)).json()
        assert summary["level"]["level"] == 3  # 小树 Sapling from 10,000 g
        assert me["level"] == export["profile"]["level"] == patched["level"] == summary["level"]

    async def test_a_district_that_is_not_imported_is_refused(self, mclient, upstreams):
        """440307 is inside the region (4403xx) but not one of the imported districts."""
        auth = bearer(await sign_in(mclient, upstreams))
        r = await mclient.patch(f"{API}/me", json={"district_code": "440307"}, headers=auth)
        assert r.status_code == 400 and r.json()["code"] == "district_invalid"
        assert (await mclient.get(f"{API}/me", headers=auth)).json()["district_code"] == "440305"
        await mclient.post(f"{API}/auth/sms-codes", json={"phone": "13900000009"})
        r = await mclient.post(
            f"{API}/auth/sms-sign-in",
            json={
                "phone": "13900000009",
                "code": upstreams.last_code("13900000009"),
                "district_code": "440307",
            },
        )
        assert r.status_code == 400 and r.json()["code"] == "district_invalid"


class TestDataSources:
    async def test_the_link_answer_is_the_listed_source(self, mclient, upstreams, pool):
        async with transaction(pool) as tx:
            await behaviours_service.register_operator(
                tx, "bikes", name="Bikes", kind="bike_share", region_code="440300"
            )
        auth = bearer(await sign_in(mclient, upstreams))
        r = await mclient.put(
            f"{API}/data-sources/bikes/link", json={"scope": ["cycling"]}, headers=auth
        )
        assert r.status_code == 200, r.text
        linked = r.json()
        assert linked["kinds"] == ["bike_share"]
        listed = (await mclient.get(f"{API}/data-sources", headers=auth)).json()
        assert listed == [linked]  # the residents' own app (kind `app`) is not a source
        r = await mclient.put(
            f"{API}/data-sources/{behaviours_service.APP_OPERATOR_ID}/link",
            json={"scope": ["*"]},
            headers=auth,
        )
        assert r.status_code == 404 and r.json()["code"] == "unknown_operator"


class TestHistoryOrder:
    async def test_a_record_claiming_the_far_future_does_not_stay_on_top(
        self, mclient, upstreams, pool
    ):
        auth = bearer(await sign_in(mclient, upstreams))
        far = track(start=datetime(2999, 12, 30, 8, 0, tzinfo=UTC))  # in range, far away
        future = (
            await mclient.post(f"{API}/activities", json=ride(points=far), headers=auth)
        ).json()
        assert future["status"] == "rejected" and future["reason_code"] == "in_future", future
        # It was received two days ago; a ride of an hour ago is newer than it.
        async with pool.acquire() as conn:
            await conn.execute(
                "UPDATE behaviour_events SET received_at = received_at - interval '2 days' "
                "WHERE id = $1",
                future["event_id"],
            )
        recent = (await mclient.post(f"{API}/activities", json=ride(), headers=auth)).json()
        assert recent["status"] == "accepted", recent
        items = (await mclient.get(f"{API}/history", headers=auth)).json()["items"]
        assert [i["event_id"] for i in items] == [recent["event_id"], future["event_id"]]
        assert items[1]["occurred_at"].startswith("2999-12-30")  # kept as claimed
        # The cursor follows the same order.
        page = (await mclient.get(f"{API}/history?limit=1", headers=auth)).json()
        assert [i["event_id"] for i in page["items"]] == [recent["event_id"]]
        rest = (
            await mclient.get(f"{API}/history?limit=1&cursor={page['next_cursor']}", headers=auth)
        ).json()
        assert [i["event_id"] for i in rest["items"]] == [future["event_id"]]
        assert rest["next_cursor"] is None


# --- item 11: the contract says what the code does --------------------------------------------


class TestContract:
    def test_schemas_and_codes_derive_from_the_code(self):
        spec = build()
        schemas = spec["components"]["schemas"]
        scope = schemas["LinkRequest"]["properties"]["scope"]["description"]
        assert "trips" not in scope
        assert all(f"`{s}`" in scope for s in behaviours_service.SCOPES)
        meaning = spec["x-error-codes"]["scope_invalid"]["meaning"]
        assert all(s in meaning for s in behaviours_service.SCOPES)
        assert schemas["Verdict"]["properties"]["status"]["enum"] == ["accepted", "rejected"]
        reasons = str(schemas["Verdict"]["properties"]["reason_code"])
        assert all(f"`{r}`" in reasons for r in (*Reason, *TRACK_REASONS))
        kinds = schemas["DataSource"]["properties"]["kinds"]["description"]
        assert "app" not in LINKABLE_KINDS and all(f"`{k}`" in kinds for k in LINKABLE_KINDS)

    def test_guides_name_every_code_and_the_reserved_kind(self):
        readme = (ROOT / "README.md").read_text(encoding="utf-8")
        assert "`signature_missing`" in readme
        guide = (ROOT / "mobile_api_spec" / "README.md").read_text(encoding="utf-8")
        assert "`app`" in guide and "(`accepted` | `rejected`)" in guide
        assert all(f"`{s}`" in guide for s in behaviours_service.SCOPES)
        assert all(f"`{k}`" in guide and f"`{k}`" in readme for k in LINKABLE_KINDS)
