"""Enterprise administrators: password hashes, sign-in and its attempt budgets, the token's
checks (disabled users refused at once), users added, listed and disabled, and the programme's
`tanpuhui enterprise add-admin`."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
import sys
import uuid

import jwt as pyjwt
import pytest

from enterprises import users
from kit.auth import JwtKeys, Role
from kit.db import transaction
from kit.errors import InvalidInput
from tests.enterprises.api import API, PASSWORD, Admin, admin, signed_in
from tests.enterprises.factories import code
from tests.server.processes import ROOT


class TestPasswordHashes:
    def test_the_stored_string_carries_its_parameters_and_a_random_salt(self):
        a, b = users.hash_password(PASSWORD), users.hash_password(PASSWORD)
        scheme, log2_n, r, p, salt, key = a.split("$")
        assert (scheme, log2_n, r, p) == ("scrypt", "15", "8", "3")
        assert len(base64.b64decode(salt)) == 16 and len(base64.b64decode(key)) == 32
        assert a != b  # another salt
        assert users.password_matches(a, PASSWORD) and users.password_matches(b, PASSWORD)
        assert not users.password_matches(a, PASSWORD + "x")

    def test_older_parameters_still_verify(self):
        # A hash made with other (cheaper) parameters names them: it stays verifiable.
        import hashlib

        salt = b"0123456789abcdef"
        key = hashlib.scrypt(PASSWORD.encode(), salt=salt, n=2**10, r=8, p=1, dklen=32)
        stored = f"scrypt$10$8$1${base64.b64encode(salt).decode()}${base64.b64encode(key).decode()}"
        assert users.password_matches(stored, PASSWORD)
        assert not users.password_matches(stored, "wrong password!")

    def test_garbage_is_no_match(self):
        assert not users.password_matches("bcrypt$x", PASSWORD)
        assert not users.password_matches("scrypt$15$8$1$!!$!!", PASSWORD)


class TestSignIn:
    async def test_a_token_for_the_right_password_that_names_user_and_enterprise(
        self, client, pool, jwt_keys
    ):
        a = await admin(pool)
        r = await client.post(f"{API}/sessions", json={"login": "ADMIN1 ", "password": PASSWORD})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["token_type"] == "Bearer" and body["expires_in"] == 1800
        assert body["user"]["id"] == str(a.user.id)
        assert body["user"]["enterprise_id"] == str(a.enterprise.id)
        assert "password" not in r.text and "scrypt" not in r.text
        claims = pyjwt.decode(body["access_token"], options={"verify_signature": False})
        assert claims["role"] == "enterprise_admin" and claims["sub"] == str(a.user.id)
        assert claims["ent"] == str(a.enterprise.id)
        assert claims["exp"] - claims["iat"] == 1800
        me = await client.get(
            f"{API}/me", headers={"Authorization": f"Bearer {body['access_token']}"}
        )
        assert me.status_code == 200 and me.json()["login"] == "admin1"

    @pytest.mark.parametrize("login", ["admin1", "nobody", "x"])
    async def test_wrong_password_unknown_and_malformed_logins_get_one_answer(
        self, client, pool, login
    ):
        await admin(pool)
        r = await client.post(f"{API}/sessions", json={"login": login, "password": "not it at all"})
        assert r.status_code == 401
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["code"] == "sign_in_failed"

    async def test_a_schema_mismatch_is_validation_failed(self, client):
        r = await client.post(f"{API}/sessions", json={"login": "a", "password": 5})
        assert r.status_code == 400 and r.json()["code"] == "validation_failed"

    async def test_failures_are_budgeted_per_login_and_client_and_a_success_gives_back(
        self, client, pool
    ):
        await admin(pool)
        wrong = {"login": "admin1", "password": "wrong password"}
        right = {"login": "admin1", "password": PASSWORD}
        for _ in range(4):
            assert (await client.post(f"{API}/sessions", json=wrong)).status_code == 401
        # The success is counted, then given back: still one failure left after it.
        assert (await client.post(f"{API}/sessions", json=right)).status_code == 200
        assert (await client.post(f"{API}/sessions", json=wrong)).status_code == 401
        r = await client.post(f"{API}/sessions", json=right)
        assert r.status_code == 429, r.text
        assert r.json()["code"] == "sign_in_rate_limited"
        assert 1 <= int(r.headers["retry-after"]) <= 900
        # Another login from the same client is not locked by this one's failures.
        await admin(pool, 2)
        other = {"login": "admin2", "password": PASSWORD}
        assert (await client.post(f"{API}/sessions", json=other)).status_code == 200

    async def test_concurrent_guesses_cannot_overshoot_the_budget(self, client, pool):
        await admin(pool)
        wrong = {"login": "admin1", "password": "wrong password"}
        answers = await asyncio.gather(
            *(client.post(f"{API}/sessions", json=wrong) for _ in range(12))
        )
        codes = sorted(r.status_code for r in answers)
        assert codes.count(401) == 5 and codes.count(429) == 7

    async def test_a_disabled_user_cannot_sign_in(self, client, pool):
        a = await admin(pool)
        async with transaction(pool) as tx:
            other = await users.add_user(
                tx,
                a.enterprise.id,
                login="colleague",
                display_name="同事",
                password=PASSWORD,
                created_by=a.user.id,
            )
            await users.disable_user(tx, a.enterprise.id, other.id, by=a.user.id)
        r = await client.post(f"{API}/sessions", json={"login": "colleague", "password": PASSWORD})
        assert r.status_code == 401 and r.json()["code"] == "sign_in_failed"


class TestTokens:
    async def test_a_disabled_users_token_is_refused_at_once(self, client, pool):
        a = await signed_in(client, await admin(pool))
        async with transaction(pool) as tx:
            other = await users.add_user(
                tx,
                a.enterprise.id,
                login="colleague",
                display_name="同事",
                password=PASSWORD,
                created_by=a.user.id,
            )
        c = await signed_in(client, Admin(a.enterprise, other))
        assert (await client.get(f"{c.base}/users", headers=c.headers)).status_code == 200
        r = await client.post(f"{a.base}/users/{other.id}/disable", headers=a.headers)
        assert r.status_code == 200 and r.json()["disabled"] is True
        r = await client.get(f"{c.base}/users", headers=c.headers)
        assert r.status_code == 401 and r.json()["code"] == "user_disabled"

    async def test_another_roles_token_and_a_subject_that_is_no_user_are_refused(
        self, client, pool, jwt_keys
    ):
        a = await admin(pool)
        resident = jwt_keys.issue(str(uuid.uuid4()), Role.RESIDENT, 600, extra={"typ": "access"})
        r = await client.get(a.base, headers={"Authorization": f"Bearer {resident}"})
        assert r.status_code == 403 and r.json()["code"] == "role_required"
        nobody = jwt_keys.issue(
            str(uuid.uuid4()),
            Role.ENTERPRISE_ADMIN,
            600,
            extra={"typ": "access", "ent": str(a.enterprise.id)},
        )
        r = await client.get(a.base, headers={"Authorization": f"Bearer {nobody}"})
        assert r.status_code == 401 and r.json()["code"] == "user_disabled"
        not_an_id = jwt_keys.issue("admin1", Role.ENTERPRISE_ADMIN, 600, extra={"typ": "access"})
        r = await client.get(a.base, headers={"Authorization": f"Bearer {not_an_id}"})
        assert r.status_code == 401 and r.json()["code"] == "token_invalid"

    async def test_a_token_whose_enterprise_claim_is_not_the_users_is_refused(
        self, client, pool, jwt_keys
    ):
        a = await admin(pool)
        b = await admin(pool, 2)
        forged = jwt_keys.issue(
            str(a.user.id),
            Role.ENTERPRISE_ADMIN,
            600,
            extra={"typ": "access", "ent": str(b.enterprise.id)},
        )
        r = await client.get(b.base, headers={"Authorization": f"Bearer {forged}"})
        assert r.status_code == 401 and r.json()["code"] == "token_invalid"

    async def test_a_token_of_unknown_key_is_refused(self, client, pool):
        a = await admin(pool)
        foreign = JwtKeys([("other", "another-secret-0123456789abcdef-0123")]).issue(
            str(a.user.id), Role.ENTERPRISE_ADMIN, 600, extra={"typ": "access"}
        )
        r = await client.get(a.base, headers={"Authorization": f"Bearer {foreign}"})
        assert r.status_code == 401 and r.json()["code"] == "token_invalid"


class TestUsers:
    async def test_add_list_and_disable(self, client, pool):
        a = await signed_in(client, await admin(pool))
        new = {"login": "Energy.Manager", "display_name": " 能源  主管 ", "password": PASSWORD}
        r = await client.post(f"{a.base}/users", json=new, headers=a.headers)
        assert r.status_code == 201, r.text
        made = r.json()
        assert made["login"] == "energy.manager" and made["display_name"] == "能源 主管"
        assert made["disabled"] is False and "password" not in made
        listed = (await client.get(f"{a.base}/users", headers=a.headers)).json()
        assert [u["login"] for u in listed] == ["admin1", "energy.manager"]
        r = await client.post(f"{a.base}/users/{made['id']}/disable", headers=a.headers)
        assert r.status_code == 200 and r.json()["disabled"] is True
        first = r.json()["disabled_at"]
        again = await client.post(f"{a.base}/users/{made['id']}/disable", headers=a.headers)
        assert again.status_code == 200 and again.json()["disabled_at"] == first
        # The new user signs in until disabled, then not.
        r = await client.post(
            f"{API}/sessions", json={"login": "energy.manager", "password": PASSWORD}
        )
        assert r.status_code == 401

    async def test_adding_is_idempotent_with_a_key_and_logins_are_unique_everywhere(
        self, client, pool
    ):
        a = await signed_in(client, await admin(pool))
        b = await signed_in(client, await admin(pool, 2))
        new = {"login": "manager", "display_name": "主管", "password": PASSWORD}
        key = {"Idempotency-Key": "add-manager-1"}
        first = await client.post(f"{a.base}/users", json=new, headers={**a.headers, **key})
        again = await client.post(f"{a.base}/users", json=new, headers={**a.headers, **key})
        assert first.status_code == again.status_code == 201
        assert first.json() == again.json()
        other = {**new, "display_name": "另一位"}
        r = await client.post(f"{a.base}/users", json=other, headers={**a.headers, **key})
        assert r.status_code == 409 and r.json()["code"] == "idempotency_key_reused"
        r = await client.post(f"{a.base}/users", json=new, headers=a.headers)
        assert r.status_code == 409 and r.json()["code"] == "login_taken"
        r = await client.post(f"{b.base}/users", json=new, headers=b.headers)
        assert r.status_code == 409 and r.json()["code"] == "login_taken"

    @pytest.mark.parametrize(
        ("field", "value"),
        [("login", "ab"), ("login", "has space"), ("login", "中文名"), ("password", "short")],
    )
    async def test_fields_that_break_a_rule_are_named(self, client, pool, field, value):
        a = await signed_in(client, await admin(pool))
        new = {"login": "manager", "display_name": "主管", "password": PASSWORD, field: value}
        r = await client.post(f"{a.base}/users", json=new, headers=a.headers)
        assert r.status_code == 400 and r.json()["code"] == "validation_failed"
        assert [e["path"] for e in r.json()["errors"]] == [field]

    async def test_a_lone_surrogate_password_is_a_field_error_not_a_fault(self, client, pool):
        a = await signed_in(client, await admin(pool))
        body = b'{"login": "manager", "display_name": "x", "password": "abcdefghijkl\\ud800"}'
        r = await client.post(
            f"{a.base}/users",
            content=body,
            headers={**a.headers, "Content-Type": "application/json"},
        )
        assert r.status_code == 400, r.text
        assert r.json()["code"] in ("bad_request", "validation_failed")
        r = await client.post(
            f"{API}/sessions",
            content=b'{"login": "admin1", "password": "\\ud800\\ud800"}',
            headers={"Content-Type": "application/json"},
        )
        assert r.status_code in (400, 401), r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        # The service itself refuses such text as a field, whatever the decoder lets through.
        async with transaction(pool) as tx:
            with pytest.raises(InvalidInput) as refused:
                await users.add_user(
                    tx,
                    a.enterprise.id,
                    login="manager",
                    display_name="x",
                    password="abcdefghijkl\ud800",
                    created_by=None,
                )
        assert [e.path for e in refused.value.errors or []] == ["password"]

    async def test_an_administrator_cannot_disable_themselves_nor_a_stranger(self, client, pool):
        a = await signed_in(client, await admin(pool))
        b = await admin(pool, 2)
        r = await client.post(f"{a.base}/users/{a.user.id}/disable", headers=a.headers)
        assert r.status_code == 409 and r.json()["code"] == "user_is_self"
        # B's user through A's own enterprise path: no such user in A.
        r = await client.post(f"{a.base}/users/{b.user.id}/disable", headers=a.headers)
        assert r.status_code == 404 and r.json()["code"] == "not_found"
        async with pool.acquire() as conn:
            assert (await users.user(conn, b.enterprise.id, b.user.id)).disabled_at is None


class TestCommand:
    def _run(self, settings, *args, stdin=""):
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "DATABASE_URL": settings.database.url,
            "TANPUHUI_ENV": "test",
        }
        return subprocess.run(
            [sys.executable, "-m", "server.cli", "enterprise", *args],
            input=stdin,
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    async def test_add_admin_creates_the_first_administrator(self, client, pool, settings):
        a = await admin(pool)  # registers enterprise 1 (its admin1 too)
        done = await asyncio.to_thread(
            self._run,
            settings,
            "add-admin",
            a.enterprise.credit_code,
            "Boss",
            "--name",
            "总经理",
            "--password-stdin",
            stdin=PASSWORD + "\n",
        )
        assert done.returncode == 0, done.stderr
        made = json.loads(done.stdout)
        assert made["login"] == "boss" and made["created_by"] is None
        assert made["enterprise_id"] == str(a.enterprise.id) and "password" not in done.stdout
        r = await client.post(f"{API}/sessions", json={"login": "boss", "password": PASSWORD})
        assert r.status_code == 200

    async def test_add_admin_refuses_in_one_line(self, pool, settings):
        a = await admin(pool)
        unknown = await asyncio.to_thread(
            self._run, settings, "add-admin", code(99), "x-admin", "--name", "X",
            "--password-stdin", stdin=PASSWORD + "\n",
        )  # fmt: skip
        assert unknown.returncode == 1 and "No enterprise" in unknown.stderr
        short = await asyncio.to_thread(
            self._run, settings, "add-admin", a.enterprise.credit_code, "y-admin", "--name",
            "Y", "--password-stdin", stdin="short\n",
        )  # fmt: skip
        assert short.returncode == 1 and "password" in short.stderr
        assert "Traceback" not in unknown.stderr + short.stderr
