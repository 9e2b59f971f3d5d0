"""An enterprise administrator of A is refused on EVERY endpoint of B: the routes are taken
from the app's route table (so a route added later is walked too), each called with A's token
on B's enterprise and B's own items, and each answers 404 ``enterprise_not_found`` — exactly
what an enterprise that does not exist answers — before any body or parameter is looked at.
B's own token on the same requests is not refused for scope (the ids are real)."""

from __future__ import annotations

import re
import uuid
from typing import Any
from zoneinfo import ZoneInfo

from litestar.routes import HTTPRoute

from enterprises import energy, report
from enterprises.energy_schemas import SiteIn
from kit.db import transaction
from server.app import create_app
from server.enterprise.base import PREFIX
from server.settings import Settings
from tests.enterprises.api import Admin, admin, signed_in

SCOPED = PREFIX + "/enterprises/{enterprise_id:uuid}"
# The routes of the surface that name no enterprise: signing in, and the caller itself.
UNSCOPED = {("POST", PREFIX + "/sessions"), ("GET", PREFIX + "/me")}
_PARAM = re.compile(r"\{(\w+):\w+\}")


def enterprise_routes() -> list[tuple[str, str]]:
    app = create_app(Settings())
    out = []
    for route in app.routes:
        if not isinstance(route, HTTPRoute) or not route.path.startswith(PREFIX):
            continue
        for method in sorted(route.methods - {"OPTIONS", "HEAD"}):
            out.append((str(method), route.path))
    return out


async def _b_items(pool: Any, b: Admin) -> dict[str, str]:
    """Real ids of B's items, one per path parameter name the surface uses."""
    async with transaction(pool) as tx:
        await energy.add_site(tx, b.enterprise.id, SiteIn(name="一号厂区"))
        issued = await report.issue(
            tx,
            b.enterprise.id,
            "2026-01",
            [],
            issued_by=b.user.id,
            zone=ZoneInfo("Asia/Shanghai"),
        )
    return {
        "enterprise_id": str(b.enterprise.id),
        "user_id": str(b.user.id),
        "report_id": str(issued.id),
    }


def _path(template: str, values: dict[str, str]) -> str:
    return _PARAM.sub(lambda m: values.get(m.group(1), str(uuid.uuid4())), template)


def _request(method: str, path: str) -> dict[str, Any]:
    if method not in ("POST", "PUT", "PATCH"):
        return {}
    if path.endswith("/csv"):
        return {"content": b"kind,quantity,unit\n", "headers": {"Content-Type": "text/csv"}}
    return {"json": {}}


def test_the_walk_sees_the_whole_surface():
    routes = enterprise_routes()
    unscoped = {r for r in routes if not r[1].startswith(SCOPED)}
    assert unscoped == UNSCOPED, "a route of the enterprise API outside /enterprises/{id}"
    assert len(routes) >= 19, routes


async def test_an_admin_of_a_is_refused_on_every_endpoint_of_b(client, pool):
    a = await signed_in(client, await admin(pool, 1))
    b = await signed_in(client, await admin(pool, 2))
    values = await _b_items(pool, b)
    walked = 0
    for method, template in enterprise_routes():
        if (method, template) in UNSCOPED:
            continue
        path = _path(template, values)
        extra = _request(method, path)
        headers = {**extra.pop("headers", {}), **a.headers}
        r = await client.request(method, path, headers=headers, **extra)
        assert r.status_code == 404, (method, template, r.status_code, r.text)
        assert r.json()["code"] == "enterprise_not_found", (method, template, r.text)
        # The same answer as for an enterprise that does not exist.
        ghost = _path(template, {**values, "enterprise_id": str(uuid.uuid4())})
        extra = _request(method, ghost)
        r2 = await client.request(
            method, ghost, headers={**extra.pop("headers", {}), **a.headers}, **extra
        )
        assert (r2.status_code, r2.json()["code"]) == (404, "enterprise_not_found")
        assert {k: v for k, v in r.json().items() if k != "request_id"} == {
            k: v for k, v in r2.json().items() if k != "request_id"
        }
        # B itself is not refused for scope on the same request.
        extra = _request(method, path)
        own = {**extra.pop("headers", {}), **b.headers}
        r3 = await client.request(method, path, headers=own, **extra)
        assert r3.status_code < 500, (method, template, r3.text)
        if r3.status_code == 404:
            assert r3.json()["code"] != "enterprise_not_found", (method, template)
        walked += 1
    assert walked >= 17


async def test_a_refused_request_changed_nothing(client, pool):
    a = await signed_in(client, await admin(pool, 1))
    b = await signed_in(client, await admin(pool, 2))
    r = await client.post(
        f"{b.base}/users",
        json={"login": "intruder", "display_name": "x", "password": "correct horse battery"},
        headers=a.headers,
    )
    assert r.status_code == 404
    r = await client.post(f"{b.base}/sites", json={"name": "x"}, headers=a.headers)
    assert r.status_code == 404
    users = (await client.get(f"{b.base}/users", headers=b.headers)).json()
    assert [u["login"] for u in users] == ["admin2"]
    assert (await client.get(f"{b.base}/sites", headers=b.headers)).json() == []
