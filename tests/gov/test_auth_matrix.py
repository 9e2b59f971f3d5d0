"""The auth matrix of the whole government surface: every route of the app under
``/api/gov/v1`` (read from the app's route table, so a route added by any package is covered
the day it lands), every method, called with no token, a resident's, an enterprise
administrator's, an analyst's, an administrator's, and a disabled administrator's token.

- ``/api/gov/v1/admin/...`` and the enterprise-level reports (``ADMIN_REPORTS``):
  administrators only (others 401 without a token, 403 ``role_required`` with another role's);
- every other route but the public ones: analysts and administrators;
- the public ones (``PUBLIC``: the sign-in): no token needed;
- a disabled user's token: 401 ``gov_user_disabled`` everywhere it is needed.

Calls carry no body: the guards run before any body is read, and an allowed caller's request
is then refused for its missing body or unknown ids, never with 401/403 and never with a 5xx.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest

from kit.auth import JwtKeys, Role
from kit.db import transaction
from reporting import users
from server.app import create_app
from server.settings import Settings
from tests.conftest import JWT_KEYS
from tests.gov.factories import bearer, gov_user

PREFIX = "/api/gov/v1"
ADMIN = f"{PREFIX}/admin"
# Routes anyone may call: (method, path template).
PUBLIC = {("POST", f"{PREFIX}/sessions")}
# Report routes for administrators only: enterprise-level detail (issue 14, item 4: "only for
# gov_admin, with the access logged") and the reconciliation of the rollups with the ledger.
ADMIN_REPORTS = {
    ("GET", f"{PREFIX}/reports/enterprises/retrofit"),
    ("GET", f"{PREFIX}/reports/reconciliation"),
}
_PARAM = re.compile(r"\{(\w+)(?::(\w+))?\}")


def gov_routes() -> list[tuple[str, str]]:
    app = create_app(Settings.from_env({"TANPUHUI_AUTH_JWT_KEYS": JWT_KEYS}))
    out = set()
    for route in app.routes:
        if route.path == PREFIX or route.path.startswith(PREFIX + "/"):
            for method in getattr(route, "methods", set()):
                if method not in ("OPTIONS", "HEAD"):
                    out.add((method, route.path))
    return sorted(out)


ROUTES = gov_routes()


def concrete(path: str) -> str:
    def value(m: re.Match[str]) -> str:
        kind = m.group(2) or "str"
        if kind == "uuid":
            return str(uuid.uuid4())
        if kind == "int":
            return "2025"
        return "abc"

    return _PARAM.sub(value, path)


def expected_roles(method: str, path: str) -> set[str] | None:
    """The roles that pass the guard (None: public)."""
    if (method, path) in PUBLIC:
        return None
    if path == ADMIN or path.startswith(ADMIN + "/") or (method, path) in ADMIN_REPORTS:
        return {"gov_admin"}
    return {"gov_analyst", "gov_admin"}


def test_the_matrix_sees_the_whole_surface():
    paths = {p for _, p in ROUTES}
    assert f"{PREFIX}/sessions" in paths and f"{PREFIX}/me" in paths
    assert sum(p.startswith(ADMIN) for p in paths) >= 15
    # Every public route is one the app serves (a renamed one must be renamed here).
    assert set(PUBLIC) <= set(ROUTES) and set(ROUTES) >= ADMIN_REPORTS


@pytest.fixture
async def callers(pool, settings) -> dict[str, dict[str, str]]:
    jwt = JwtKeys.from_settings(settings.auth)
    _, analyst = await gov_user(pool, settings, role="gov_analyst")
    _, admin = await gov_user(pool, settings, role="gov_admin")
    gone, gone_token = await gov_user(pool, settings, role="gov_admin")
    async with transaction(pool) as tx:
        await users.set_disabled(tx, gone.id, True, actor="cli:test")
    resident = jwt.issue(str(uuid.uuid4()), Role.RESIDENT, 600, extra={"typ": "access"})
    enterprise = jwt.issue(
        str(uuid.uuid4()),
        Role.ENTERPRISE_ADMIN,
        600,
        extra={"typ": "access", "ent": str(uuid.uuid4())},
    )
    return {
        "none": {},
        "resident": bearer(resident),
        "enterprise_admin": bearer(enterprise),
        "gov_analyst": bearer(analyst),
        "gov_admin": bearer(admin),
        "disabled_gov_admin": bearer(gone_token),
    }


def verdict(allowed: set[str] | None, who: str, status: int, code: str | None) -> str | None:
    """What is wrong with ``who``'s answer (None: as the matrix says)."""
    if status >= 500:
        return "a fault"
    if allowed is None:
        return "refused a public route" if status in (401, 403) else None
    if who == "none":
        want: tuple[int, str | None] = (401, "token_missing")
    elif who == "disabled_gov_admin":
        want = (401, "gov_user_disabled") if "gov_admin" in allowed else (403, "role_required")
    elif who in allowed:
        return "refused an allowed role" if status in (401, 403) else None
    else:
        want = (403, "role_required")
    return None if (status, code) == want else f"expected {want}"


async def test_every_route_answers_each_caller_as_its_role_allows(
    client: Any, callers: dict[str, dict[str, str]]
) -> None:
    # One test over every route (the users are made once: each costs a password hash).
    wrong = []
    for method, path in ROUTES:
        allowed = expected_roles(method, path)
        url = concrete(path)
        for who, headers in callers.items():
            r = await client.request(method, url, headers=headers)
            problem = r.headers.get("content-type", "").startswith("application/problem+json")
            code = r.json().get("code") if problem else None
            bad = verdict(allowed, who, r.status_code, code)
            if bad is None and r.status_code >= 400 and not problem:
                bad = "an error that is not problem+json"
            if bad:
                wrong.append(f"{method} {path} as {who}: {r.status_code} {code}: {bad}")
    assert not wrong, "\n".join(wrong)
