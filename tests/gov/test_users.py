"""Government users: created by the CLI's service call and by administrators, signing in with a
password and a TOTP code (right, wrong, replayed, outside the window), the attempt budgets,
disabled users and changed roles refused at once, and the secrets kept sealed."""

from __future__ import annotations

import asyncio
import base64
import time
import uuid

import pyotp
import pytest

from kit.cipher import SecretBox
from kit.db import transaction
from kit.errors import InvalidInput
from reporting import users
from reporting.users import totp_step
from tests.gov.factories import PASSWORD, bearer, gov_user, new_gov_user, token_for

API = "/api/gov/v1"


def code_at(secret: str, at: float) -> str:
    return pyotp.TOTP(secret).at(at)


def sign_in_body(login: str, code: str, password: str = PASSWORD) -> dict[str, str]:
    return {"login": login, "password": password, "totp": code}


class TestTotp:
    def test_the_step_of_a_code_within_the_drift_window(self):
        secret = pyotp.random_base32()
        now = 1_800_000_000.0
        step = int(now) // 30
        assert totp_step(secret, code_at(secret, now), drift=1, now=now) == step
        assert totp_step(secret, code_at(secret, now - 30), drift=1, now=now) == step - 1
        assert totp_step(secret, code_at(secret, now + 30), drift=1, now=now) == step + 1
        assert totp_step(secret, code_at(secret, now - 60), drift=1, now=now) is None
        assert totp_step(secret, code_at(secret, now - 30), drift=0, now=now) is None

    @pytest.mark.parametrize("code", ["", "12345", "1234567", "١٢٣٤٥٦", "12a456", " 12345"])
    def test_malformed_codes_match_nothing(self, code):
        assert totp_step(pyotp.random_base32(), code, drift=2, now=time.time()) is None

    def test_an_rfc_6238_vector(self):
        # RFC 6238 appendix B, SHA-1, T = 59 s: 94287082 (8 digits); its last 6 digits here.
        secret = base64.b32encode(b"12345678901234567890").decode()
        assert totp_step(secret, "287082", drift=0, now=59) == 1


class TestCreation:
    async def test_the_cli_path_creates_a_user_with_a_sealed_secret(
        self, pool, owner_pool, settings
    ):
        made = await new_gov_user(pool, settings, role="gov_admin", login="Admin.Wang ")
        assert made.user.login == "admin.wang" and made.user.role == "gov_admin"
        assert made.user.created_by is None
        assert made.totp_uri.startswith("otpauth://totp/tanpuhui:admin.wang?secret=")
        assert f"secret={made.totp_secret}" in made.totp_uri
        async with owner_pool.acquire() as conn:
            row = await conn.fetchrow(
                "SELECT password_hash, totp_secret FROM gov_users WHERE id = $1", made.user.id
            )
        assert made.totp_secret not in row["totp_secret"] and PASSWORD not in row["password_hash"]
        box = SecretBox.from_settings(settings.privacy)
        assert box.open(row["totp_secret"], context=f"gov_users:{made.user.id}") == made.totp_secret
        # Bound to its row: the same ciphertext opens for no other user.
        assert box.open(row["totp_secret"], context=f"gov_users:{uuid.uuid4()}") is None

    async def test_rules_and_unique_logins(self, pool, settings):
        await new_gov_user(pool, settings, login="analyst.li")
        with pytest.raises(users.GovLoginTaken):
            await new_gov_user(pool, settings, login="ANALYST.LI")
        with pytest.raises(InvalidInput) as bad:
            await new_gov_user(pool, settings, login="x", password="short")
        assert {e.path for e in bad.value.errors or []} == {"login", "password"}
        with pytest.raises(InvalidInput) as bad_role:
            await new_gov_user(pool, settings, role="resident")
        assert [e.path for e in bad_role.value.errors or []] == ["role"]


class TestSignIn:
    async def test_password_and_code_give_a_token_of_the_users_role(self, client, pool, settings):
        made = await new_gov_user(pool, settings, role="gov_admin", login="admin.zhang")
        r = await client.post(
            f"{API}/sessions",
            json=sign_in_body("Admin.Zhang", code_at(made.totp_secret, time.time())),
        )
        assert r.status_code == 201, r.text
        body = r.json()
        assert body["token_type"] == "Bearer" and body["role"] == "gov_admin"
        assert set(body) == {"access_token", "token_type", "role", "expires_at"}
        me = await client.get(f"{API}/me", headers=bearer(body["access_token"]))
        assert me.status_code == 200, me.text
        assert me.json()["login"] == "admin.zhang" and me.json()["disabled"] is False

    async def test_wrong_password_code_or_login_are_one_answer(self, client, pool, settings):
        made = await new_gov_user(pool, settings, login="analyst.one")
        now = time.time()
        good = code_at(made.totp_secret, now)
        wrong_code = f"{(int(good) + 1) % 1_000_000:06d}"
        for body in (
            sign_in_body("analyst.one", good, password="wrong password!!"),
            sign_in_body("analyst.one", wrong_code),
            sign_in_body("analyst.one", code_at(made.totp_secret, now - 120)),  # outside the window
            sign_in_body("nobody.here", good),
            sign_in_body("!!", good),
            sign_in_body("analyst.one", "abcdef"),
        ):
            r = await client.post(f"{API}/sessions", json=body)
            assert r.status_code == 401, (body, r.text)
            assert r.headers["content-type"].startswith("application/problem+json")
            assert r.json()["code"] == "sign_in_rejected"

    async def test_a_code_is_accepted_once_and_never_an_earlier_one(self, client, pool, settings):
        made = await new_gov_user(pool, settings, login="analyst.two")
        now = time.time()
        first = sign_in_body("analyst.two", code_at(made.totp_secret, now))
        assert (await client.post(f"{API}/sessions", json=first)).status_code == 201
        replay = await client.post(f"{API}/sessions", json=first)
        assert (replay.status_code, replay.json()["code"]) == (401, "sign_in_rejected")
        # The previous step is inside the drift window, but earlier than the step accepted.
        earlier = sign_in_body("analyst.two", code_at(made.totp_secret, now - 30))
        assert (await client.post(f"{API}/sessions", json=earlier)).status_code == 401
        # The next step's code is still good (the window allows one step ahead).
        later = sign_in_body("analyst.two", code_at(made.totp_secret, now + 30))
        assert (await client.post(f"{API}/sessions", json=later)).status_code == 201

    async def test_concurrent_sign_ins_with_one_code_succeed_once(self, pool, redis, settings):
        made = await new_gov_user(pool, settings, login="analyst.three")
        now = time.time()
        from kit.auth import JwtKeys

        jwt = JwtKeys.from_settings(settings.auth)

        async def attempt(n: int) -> bool:
            try:
                await users.sign_in(
                    pool,
                    redis,
                    settings.gov_users,
                    settings.privacy,
                    jwt,
                    login="analyst.three",
                    password=PASSWORD,
                    totp=code_at(made.totp_secret, now),
                    client=f"10.0.0.{n}",
                    now=now,
                )
            except users.GovSignInRejected:
                return False
            return True

        results = await asyncio.gather(*(attempt(n) for n in range(4)))
        assert sorted(results) == [False, False, False, True]

    async def test_failures_are_budgeted_and_a_success_gives_back(self, client, pool, settings):
        made = await new_gov_user(pool, settings, login="analyst.four")
        now = time.time()
        wrong = sign_in_body("analyst.four", "000000", password="wrong password!!")
        for _ in range(4):
            assert (await client.post(f"{API}/sessions", json=wrong)).status_code == 401
        right = sign_in_body("analyst.four", code_at(made.totp_secret, now))
        assert (await client.post(f"{API}/sessions", json=right)).status_code == 201
        assert (await client.post(f"{API}/sessions", json=wrong)).status_code == 401
        later = sign_in_body("analyst.four", code_at(made.totp_secret, now + 30))
        r = await client.post(f"{API}/sessions", json=later)
        assert r.status_code == 429, r.text
        assert r.json()["code"] == "gov_sign_in_rate_limited"
        assert 1 <= int(r.headers["retry-after"]) <= settings.gov_users.sign_in_window_s
        # Another login from the same client is not locked by this one's failures.
        other = await new_gov_user(pool, settings, login="analyst.five")
        ok = sign_in_body("analyst.five", code_at(other.totp_secret, now))
        assert (await client.post(f"{API}/sessions", json=ok)).status_code == 201

    async def test_a_disabled_user_cannot_sign_in(self, client, pool, settings):
        made = await new_gov_user(pool, settings, login="analyst.six")
        async with transaction(pool) as tx:
            await users.set_disabled(tx, made.user.id, True, actor="cli:test")
        r = await client.post(
            f"{API}/sessions",
            json=sign_in_body("analyst.six", code_at(made.totp_secret, time.time())),
        )
        assert (r.status_code, r.json()["code"]) == (401, "sign_in_rejected")

    @pytest.mark.parametrize(
        "body",
        [
            {"login": "a", "password": "b"},
            {"login": "a", "password": "b", "totp": 123456},
            {"login": "a", "password": "b", "totp": "1", "extra": 1},
        ],
    )
    async def test_a_schema_mismatch_is_validation_failed(self, client, body):
        r = await client.post(f"{API}/sessions", json=body)
        assert (r.status_code, r.json()["code"]) == (400, "validation_failed")


class TestTokens:
    async def test_a_disabled_users_token_is_refused_at_once(self, client, pool, settings):
        user, token = await gov_user(pool, settings)
        assert (await client.get(f"{API}/me", headers=bearer(token))).status_code == 200
        async with transaction(pool) as tx:
            await users.set_disabled(tx, user.id, True, actor="cli:test")
        r = await client.get(f"{API}/me", headers=bearer(token))
        assert (r.status_code, r.json()["code"]) == (401, "gov_user_disabled")
        async with transaction(pool) as tx:
            await users.set_disabled(tx, user.id, False, actor="cli:test")
        assert (await client.get(f"{API}/me", headers=bearer(token))).status_code == 200

    async def test_a_changed_role_refuses_the_old_roles_token(self, client, pool, settings):
        user, token = await gov_user(pool, settings, role="gov_admin")
        await gov_user(pool, settings, role="gov_admin")  # the programme keeps an administrator
        async with transaction(pool) as tx:
            await users.set_role(tx, user.id, "gov_analyst", actor="cli:test")
        r = await client.get(f"{API}/me", headers=bearer(token))
        assert (r.status_code, r.json()["code"]) == (401, "gov_role_changed")

    async def test_a_token_naming_no_user_is_refused(self, client, settings):
        from kit.auth import JwtKeys, Role

        jwt = JwtKeys.from_settings(settings.auth)
        nobody = jwt.issue(str(uuid.uuid4()), Role.GOV_ANALYST, 600, extra={"typ": "access"})
        r = await client.get(f"{API}/me", headers=bearer(nobody))
        assert (r.status_code, r.json()["code"]) == (401, "gov_user_disabled")
        not_a_uuid = jwt.issue("admin", Role.GOV_ADMIN, 600, extra={"typ": "access"})
        r = await client.get(f"{API}/me", headers=bearer(not_a_uuid))
        assert (r.status_code, r.json()["code"]) == (401, "token_invalid")

    async def test_the_last_administrator_is_kept(self, pool, settings):
        admin, _ = await gov_user(pool, settings, role="gov_admin")
        async with transaction(pool) as tx:
            with pytest.raises(users.GovLastAdmin):
                await users.set_disabled(tx, admin.id, True, actor="cli:test")
        async with transaction(pool) as tx:
            with pytest.raises(users.GovLastAdmin):
                await users.set_role(tx, admin.id, "gov_analyst", actor="cli:test")
        other, _ = await gov_user(pool, settings, role="gov_admin")
        async with transaction(pool) as tx:
            with pytest.raises(users.GovLastAdmin):  # not oneself
                await users.set_disabled(tx, other.id, True, actor=str(other.id))
            done = await users.set_disabled(tx, other.id, True, actor=str(admin.id))
        assert done.disabled_at is not None
        assert token_for(settings, done)  # tokens can be made; the guard refuses them
