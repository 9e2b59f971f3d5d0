"""Sign-in by SMS code and WeChat, token rotation, sign-out, and what is kept about a phone."""

from __future__ import annotations

import logging
import time

import jwt as pyjwt
import msgspec
from litestar.testing import AsyncTestClient

from kit.auth import JwtKeys, Role
from server.app import create_app
from tests.mobile.conftest import API, bearer, sign_in

PHONE = "13812345678"


class TestSmsSignIn:
    async def test_code_goes_through_the_http_gateway_and_signs_up_once(self, mclient, upstreams):
        first = await sign_in(mclient, upstreams, "+86" + PHONE)
        assert first["new_account"] is True
        assert upstreams.sms[-1]["phone"] == PHONE
        assert upstreams.sms[-1]["authorization"] == "Bearer sms-token"
        second = await sign_in(mclient, upstreams, PHONE)
        assert second["new_account"] is False
        assert second["resident_id"] == first["resident_id"]
        me = await mclient.get(f"{API}/me", headers=bearer(second))
        assert me.status_code == 200
        assert me.json()["phone_masked"] == "138****5678"
        assert me.json()["district_code"] == "440305"

    async def test_phone_is_never_stored_in_clear(self, mclient, upstreams, pool, redis):
        await sign_in(mclient, upstreams, PHONE)
        async with pool.acquire() as conn:
            rows = await conn.fetch("SELECT * FROM resident_identities")
            dump = repr([dict(r) for r in rows]) + repr(await conn.fetch("SELECT * FROM residents"))
        assert PHONE not in dump and PHONE[3:] not in dump
        assert rows[0]["phone_masked"] == "138****5678"
        assert len(rows[0]["phone_hmac"]) == 32
        keys = [k.decode() for k in await redis.keys("*")]
        assert not any(PHONE in k for k in keys)

    async def test_wrong_code_then_cut_off_after_max_attempts(self, mclient, upstreams):
        await mclient.post(f"{API}/auth/sms-codes", json={"phone": PHONE})
        good = upstreams.last_code(PHONE)
        wrong = f"{(int(good) + 1) % 1_000_000:06d}"
        for left in (4, 3, 2, 1):
            r = await mclient.post(f"{API}/auth/sms-sign-in", json={"phone": PHONE, "code": wrong})
            assert r.status_code == 401
            assert r.json()["code"] == "code_invalid"
            assert r.json()["extra"]["attempts_left"] == left
        r = await mclient.post(f"{API}/auth/sms-sign-in", json={"phone": PHONE, "code": wrong})
        assert r.status_code == 429
        assert r.json()["code"] == "code_attempts_exceeded"
        # The right code is useless now: guessing is cut off, not slowed down.
        r = await mclient.post(f"{API}/auth/sms-sign-in", json={"phone": PHONE, "code": good})
        assert r.status_code == 401
        assert r.json()["code"] == "code_invalid"

    async def test_a_code_works_once(self, mclient, upstreams):
        await mclient.post(f"{API}/auth/sms-codes", json={"phone": PHONE})
        code = upstreams.last_code(PHONE)
        r = await mclient.post(f"{API}/auth/sms-sign-in", json={"phone": PHONE, "code": code})
        assert r.status_code == 200
        r = await mclient.post(f"{API}/auth/sms-sign-in", json={"phone": PHONE, "code": code})
        assert r.status_code == 401

    async def test_bad_phone_and_unknown_fields_are_validation_errors(self, mclient):
        r = await mclient.post(f"{API}/auth/sms-codes", json={"phone": "12345"})
        assert r.status_code == 400
        assert r.json()["code"] == "validation_failed"
        r = await mclient.post(f"{API}/auth/sms-codes", json={"phone": PHONE, "x": 1})
        assert r.status_code == 400

    async def test_district_outside_region_is_refused(self, mclient, upstreams):
        await mclient.post(f"{API}/auth/sms-codes", json={"phone": PHONE})
        r = await mclient.post(
            f"{API}/auth/sms-sign-in",
            json={"phone": PHONE, "code": upstreams.last_code(PHONE), "district_code": "110105"},
        )
        assert r.status_code == 400
        assert r.json()["code"] == "district_invalid"

    async def test_gateway_failure_is_503(self, mclient, upstreams):
        upstreams.sms_status = 500
        r = await mclient.post(f"{API}/auth/sms-codes", json={"phone": PHONE})
        assert r.status_code == 503
        assert r.json()["code"] == "sms_unavailable"


class TestSmsRateLimits:
    async def test_per_phone_per_ip_and_resend_interval(self, mobile_settings, stores, upstreams):
        r_ = msgspec.structs.replace
        tight = r_(
            mobile_settings,
            sms=r_(mobile_settings.sms, per_phone_per_hour=2, per_ip_per_hour=4),
        )
        async with AsyncTestClient(app=create_app(tight)) as c:
            for _ in range(2):
                assert (
                    await c.post(f"{API}/auth/sms-codes", json={"phone": PHONE})
                ).status_code == 202
            r = await c.post(f"{API}/auth/sms-codes", json={"phone": PHONE})
            assert r.status_code == 429
            assert r.json()["code"] == "sms_rate_limited"
            assert int(r.headers["retry-after"]) > 0
            for phone in ("13900000001", "13900000002"):
                assert (
                    await c.post(f"{API}/auth/sms-codes", json={"phone": phone})
                ).status_code == 202
            # The fifth code sent at this client's request this hour, whatever the phone (the
            # refused request above counted nothing).
            r = await c.post(f"{API}/auth/sms-codes", json={"phone": "13900000004"})
            assert r.status_code == 429
        spaced = r_(mobile_settings, sms=r_(mobile_settings.sms, resend_interval_s=60))
        async with AsyncTestClient(app=create_app(spaced)) as c:
            assert (
                await c.post(f"{API}/auth/sms-codes", json={"phone": "13900000003"})
            ).status_code == 202
            r = await c.post(f"{API}/auth/sms-codes", json={"phone": "13900000003"})
            assert r.status_code == 429
            assert 0 < int(r.headers["retry-after"]) <= 60

    async def test_console_gateway_logs_the_code_and_only_the_masked_phone(
        self, mobile_settings, stores, caplog
    ):
        console = msgspec.structs.replace(
            mobile_settings, sms=msgspec.structs.replace(mobile_settings.sms, gateway="console")
        )
        caplog.set_level(logging.INFO)
        async with AsyncTestClient(app=create_app(console)) as c:
            r = await c.post(f"{API}/auth/sms-codes", json={"phone": PHONE})
            assert r.status_code == 202
            [record] = [x for x in caplog.records if hasattr(x, "sms_code")]
            code = record.sms_code
            r = await c.post(f"{API}/auth/sms-sign-in", json={"phone": PHONE, "code": code})
            assert r.status_code == 200
        everything = "".join(f"{x.getMessage()} {x.__dict__}" for x in caplog.records)
        assert PHONE not in everything
        assert sum(code in repr(x.__dict__) for x in caplog.records) == 1


class TestWechatSignIn:
    async def test_openid_signs_up_once_and_is_kept_hashed(self, mclient, upstreams, pool):
        upstreams.openids.update({"c1": "o-abc-openid", "c2": "o-abc-openid"})
        r = await mclient.post(f"{API}/auth/wechat-sign-in", json={"code": "c1"})
        assert r.status_code == 200, r.text
        first = r.json()
        r = await mclient.post(f"{API}/auth/wechat-sign-in", json={"code": "c2"})
        assert r.json()["resident_id"] == first["resident_id"]
        assert r.json()["new_account"] is False
        assert upstreams.wechat_calls[0]["grant_type"] == ["authorization_code"]
        async with pool.acquire() as conn:
            dump = repr(await conn.fetch("SELECT * FROM resident_identities"))
        assert "o-abc-openid" not in dump
        me = await mclient.get(f"{API}/me", headers=bearer(first))
        assert me.json()["wechat_linked"] is True

    async def test_refused_code_is_401(self, mclient, upstreams):
        r = await mclient.post(f"{API}/auth/wechat-sign-in", json={"code": "nope"})
        assert r.status_code == 401
        assert r.json()["code"] == "wechat_login_failed"

    async def test_unreachable_wechat_is_503(self, mobile_settings, stores):
        down = msgspec.structs.replace(
            mobile_settings,
            wechat=msgspec.structs.replace(
                mobile_settings.wechat, code2session_url="http://127.0.0.1:9/x", timeout_s=1
            ),
        )
        async with AsyncTestClient(app=create_app(down)) as c:
            r = await c.post(f"{API}/auth/wechat-sign-in", json={"code": "c"})
        assert r.status_code == 503
        assert r.json()["code"] == "wechat_unavailable"


class TestTokens:
    async def test_refresh_rotates_and_reuse_revokes_the_family(self, mclient, upstreams):
        pair = await sign_in(mclient, upstreams)
        r = await mclient.post(f"{API}/auth/refresh", json={"refresh_token": pair["refresh_token"]})
        assert r.status_code == 200
        rotated = r.json()
        assert rotated["refresh_token"] != pair["refresh_token"]
        assert rotated["resident_id"] == pair["resident_id"]
        assert (await mclient.get(f"{API}/me", headers=bearer(rotated))).status_code == 200
        # The old token again: a stolen copy. The family dies, the newest token too.
        r = await mclient.post(f"{API}/auth/refresh", json={"refresh_token": pair["refresh_token"]})
        assert r.status_code == 401
        assert r.json()["code"] == "refresh_reused"
        r = await mclient.post(
            f"{API}/auth/refresh", json={"refresh_token": rotated["refresh_token"]}
        )
        assert r.status_code == 401
        assert r.json()["code"] == "refresh_invalid"

    async def test_other_sign_ins_survive_a_reuse(self, mclient, upstreams):
        a = await sign_in(mclient, upstreams)
        b = await sign_in(mclient, upstreams)
        await mclient.post(f"{API}/auth/refresh", json={"refresh_token": a["refresh_token"]})
        await mclient.post(f"{API}/auth/refresh", json={"refresh_token": a["refresh_token"]})
        r = await mclient.post(f"{API}/auth/refresh", json={"refresh_token": b["refresh_token"]})
        assert r.status_code == 200

    async def test_sign_out_revokes_refresh(self, mclient, upstreams):
        pair = await sign_in(mclient, upstreams)
        r = await mclient.post(f"{API}/auth/sign-out", headers=bearer(pair))
        assert r.status_code == 204
        r = await mclient.post(f"{API}/auth/refresh", json={"refresh_token": pair["refresh_token"]})
        assert r.status_code == 401

    async def test_unknown_refresh_token(self, mclient):
        r = await mclient.post(f"{API}/auth/refresh", json={"refresh_token": "x" * 43})
        assert r.status_code == 401
        assert r.json()["code"] == "refresh_invalid"


class TestTokenSecurity:
    async def test_expired_forged_and_foreign_tokens_are_refused(
        self, mclient, upstreams, jwt_keys: JwtKeys
    ):
        pair = await sign_in(mclient, upstreams)
        rid = pair["resident_id"]
        expired = jwt_keys.issue(
            rid, Role.RESIDENT, 60, extra={"typ": "access"}, now=time.time() - 3600
        )
        forged = pyjwt.encode(
            {
                "iss": "tanpuhui",
                "sub": rid,
                "role": "resident",
                "iat": int(time.time()),
                "exp": int(time.time()) + 600,
                "jti": "x",
                "typ": "access",
            },
            "not-the-server-key-0123456789abcdef",
            algorithm="HS256",
            headers={"kid": "k2"},
        )
        unsigned = pyjwt.encode(
            {"sub": rid, "role": "resident", "exp": int(time.time()) + 600},
            None,  # type: ignore[arg-type]  # alg "none" takes no key
            algorithm="none",
        )
        operator = jwt_keys.issue("op-1", Role.OPERATOR, 600)
        wrong_typ = jwt_keys.issue(rid, Role.RESIDENT, 600, extra={"typ": "refresh"})
        cases = [
            ({}, 401, "token_missing"),
            ({"Authorization": f"Bearer {expired}"}, 401, "token_expired"),
            ({"Authorization": f"Bearer {forged}"}, 401, "token_invalid"),
            ({"Authorization": f"Bearer {unsigned}"}, 401, "token_invalid"),
            ({"Authorization": f"Bearer {pair['refresh_token']}"}, 401, "token_invalid"),
            ({"Authorization": f"Bearer {wrong_typ}"}, 401, "token_invalid"),
            ({"Authorization": f"Bearer {operator}"}, 403, "role_required"),
        ]
        for headers, status, code in cases:
            r = await mclient.get(f"{API}/me", headers=headers)
            assert (r.status_code, r.json()["code"]) == (status, code), headers

    async def test_token_is_checked_before_the_body(self, mclient):
        r = await mclient.patch(
            f"{API}/me", content=b"{not json", headers={"content-type": "application/json"}
        )
        assert r.status_code == 401


class TestAccountDeletion:
    async def test_delete_erases_personal_data_and_sessions(self, mclient, upstreams, pool):
        pair = await sign_in(mclient, upstreams)
        r = await mclient.delete(f"{API}/me", headers=bearer(pair))
        assert r.status_code == 204
        async with pool.acquire() as conn:
            assert await conn.fetchval("SELECT count(*) FROM resident_identities") == 0
            assert await conn.fetchval("SELECT count(*) FROM refresh_families") == 0
            row = await conn.fetchrow("SELECT deleted_at, district_code FROM residents")
        assert row["deleted_at"] is not None and row["district_code"] is None
        r = await mclient.get(f"{API}/me", headers=bearer(pair))
        assert r.status_code == 401
        assert r.json()["code"] == "account_deleted"
        r = await mclient.post(f"{API}/auth/refresh", json={"refresh_token": pair["refresh_token"]})
        assert r.status_code == 401
        again = await sign_in(mclient, upstreams)
        assert again["new_account"] is True
        assert again["resident_id"] != pair["resident_id"]
