"""Ending access tokens: sign-out ends its sign-in, a reused refresh token ends its family, and a
deleted account is refused by every resident endpoint, even after Redis lost its markers."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from mobile_api_spec.generate import build
from server import guards
from server.mobile.routes import PREFIX
from tests.mobile.conftest import API, bearer, sign_in

YESTERDAY = (datetime.now(UTC) - timedelta(days=1)).date().isoformat()

# One call per resident route (method, path as in openapi.json, concrete path, JSON body).
CALLS: list[tuple[str, str, str, Any]] = [
    ("post", "/auth/sign-out", "/auth/sign-out", None),
    ("get", "/me", "/me", None),
    ("patch", "/me", "/me", {"district_code": "440305"}),
    ("delete", "/me", "/me", None),
    ("get", "/me/export", "/me/export", None),
    ("get", "/summary", "/summary", None),
    ("get", "/history", "/history", None),
    ("get", "/history/{event_id}", f"/history/{uuid.uuid4()}", None),
    ("get", "/monthly", "/monthly", None),
    ("get", "/leaderboard", "/leaderboard", None),
    ("get", "/levels", "/levels", None),
    ("get", "/data-sources", "/data-sources", None),
    (
        "put",
        "/data-sources/{operator_id}/link",
        "/data-sources/metro/link",
        {"scope": ["transit"]},
    ),
    ("delete", "/data-sources/{operator_id}/link", "/data-sources/metro/link", None),
    ("post", "/activities", "/activities", {"type": "steps", "day": YESTERDAY, "steps": 5000}),
    ("get", "/catalogue", "/catalogue", None),
    ("get", "/catalogue/{item_id}", f"/catalogue/{uuid.uuid4()}", None),
    ("post", "/redemptions", "/redemptions", {"item_id": str(uuid.uuid4())}),
    ("get", "/rewards", "/rewards", None),
    ("get", "/rewards/{reward_id}", f"/rewards/{uuid.uuid4()}", None),
    ("post", "/rewards/{reward_id}/cancel", f"/rewards/{uuid.uuid4()}/cancel", None),
    ("get", "/projects", "/projects", None),
    ("get", "/projects/{project_id}", "/projects/mangroves", None),
    (
        "post",
        "/projects/{project_id}/donations",
        "/projects/mangroves/donations",
        {"asset": "POINT", "amount": 5},
    ),
    ("get", "/certificates", "/certificates", None),
    ("get", "/commuting/consent", "/commuting/consent", None),
    ("get", "/commuting/memberships", "/commuting/memberships", None),
    (
        "post",
        "/commuting/memberships",
        "/commuting/memberships",
        {"consent_version": "2026-12-01", "invitation_token": "t" * 43},
    ),
    (
        "delete",
        "/commuting/memberships/{programme_id}",
        f"/commuting/memberships/{uuid.uuid4()}",
        None,
    ),
]


def test_calls_cover_every_resident_route():
    guarded = {
        (method, path.removeprefix(PREFIX))
        for path, item in build()["paths"].items()
        for method, op in item.items()
        if op.get("security")
    }
    assert guarded == {(m, p) for m, p, _, _ in CALLS}


async def refused_everywhere(client: Any, headers: dict[str, str], code: str) -> None:
    wrong = []
    for method, template, path, body in CALLS:
        kwargs: dict[str, Any] = {"headers": headers | {"Idempotency-Key": uuid.uuid4().hex}}
        if body is not None:
            kwargs["json"] = body
        r = await getattr(client, method)(API + path, **kwargs)
        if (r.status_code, r.json().get("code")) != (401, code):
            wrong.append(f"{method} {template}: {r.status_code} {r.json().get('code')}")
    assert not wrong, "\n".join(wrong)


class TestSignOut:
    async def test_ends_this_sign_ins_access_tokens_and_no_other(self, mclient, upstreams):
        phone = bearer(await sign_in(mclient, upstreams))
        pair = await sign_in(mclient, upstreams)  # the same resident on a second device
        other = bearer(pair)
        assert (await mclient.get(f"{API}/summary", headers=phone)).status_code == 200
        r = await mclient.post(f"{API}/auth/sign-out", headers=phone)
        assert r.status_code == 204
        await refused_everywhere(mclient, phone, "token_revoked")
        # The second sign-in goes on: its access token and its refresh token.
        assert (await mclient.get(f"{API}/summary", headers=other)).status_code == 200
        assert (await mclient.get(f"{API}/history", headers=other)).status_code == 200
        r = await mclient.post(f"{API}/auth/refresh", json={"refresh_token": pair["refresh_token"]})
        assert r.status_code == 200

    async def test_reused_refresh_token_ends_the_familys_access_tokens(self, mclient, upstreams):
        pair = await sign_in(mclient, upstreams)
        r = await mclient.post(f"{API}/auth/refresh", json={"refresh_token": pair["refresh_token"]})
        rotated = r.json()
        r = await mclient.post(f"{API}/auth/refresh", json={"refresh_token": pair["refresh_token"]})
        assert r.json()["code"] == "refresh_reused"
        for tokens in (pair, rotated):  # the thief's and the owner's access tokens alike
            r = await mclient.get(f"{API}/history", headers=bearer(tokens))
            assert (r.status_code, r.json()["code"]) == (401, "token_revoked")


class TestDeletedAccount:
    async def test_every_endpoint_refuses_the_old_token(self, mclient, upstreams, redis):
        pair = await sign_in(mclient, upstreams)
        auth = bearer(pair)
        r = await mclient.post(
            f"{API}/activities",
            json={"type": "steps", "day": YESTERDAY, "steps": 8000},
            headers=auth,
        )
        event_id = r.json()["event_id"]
        assert (await mclient.delete(f"{API}/me", headers=auth)).status_code == 204
        await refused_everywhere(mclient, auth, "account_deleted")
        r = await mclient.get(f"{API}/history/{event_id}", headers=auth)
        assert (r.status_code, r.json()["code"]) == (401, "account_deleted")

    async def test_refused_by_the_database_when_redis_lost_the_marker(
        self, mclient, upstreams, redis
    ):
        auth = bearer(await sign_in(mclient, upstreams))
        assert (await mclient.delete(f"{API}/me", headers=auth)).status_code == 204
        await redis.flushdb()
        await refused_everywhere(mclient, auth, "account_deleted")


class TestVerifiedTokenCache:
    async def test_a_cached_token_still_expires(self, mclient, upstreams, monkeypatch):
        auth = bearer(await sign_in(mclient, upstreams))
        assert (await mclient.get(f"{API}/summary", headers=auth)).status_code == 200
        later = time.time() + 3600  # past the access token's life; its verdict is cached
        monkeypatch.setattr(guards, "clock", lambda: later)
        r = await mclient.get(f"{API}/summary", headers=auth)
        assert (r.status_code, r.json()["code"]) == (401, "token_expired")
