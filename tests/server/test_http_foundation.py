"""Error shapes, request ids, readiness, and the transaction dependency through the real app."""

from typing import Any

import msgspec
import pytest
from litestar import get, post
from litestar.di import NamedDependency
from litestar.params import JSONBody
from litestar.testing import AsyncTestClient

from kit.db import Tx
from kit.errors import Conflict
from server.app import create_app


class Payload(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    amount_g: int = msgspec.field(default=0)


@post("/t/validate")
async def validate(data: JSONBody[Payload]) -> dict[str, Any]:
    return {"name": data.name}


@get("/t/conflict")
async def conflict() -> None:
    raise Conflict("That thing already exists.", code="thing_exists")


@get("/t/boom")
async def boom() -> None:
    raise RuntimeError("secret internals: password=hunter2")


@post("/t/write")
async def write(tx: NamedDependency[Tx], data: JSONBody[dict[str, Any]]) -> dict[str, Any]:
    await tx.conn.execute(
        "INSERT INTO idempotency_keys (scope, key, request_hash, status, response) "
        "VALUES ('t', $1, '\\x00', 200, '\\x00')",
        data["key"],
    )
    if data.get("fail"):
        raise Conflict("rolled back on purpose")
    return {"ok": True}


HANDLERS = [validate, conflict, boom, write]


@pytest.fixture(scope="module")
async def tclient(settings):
    async with AsyncTestClient(
        app=create_app(settings, extra_handlers=HANDLERS), raise_server_exceptions=False
    ) as c:
        yield c


async def test_validation_error_is_problem_json_with_paths(tclient, stores):
    r = await tclient.post("/t/validate", json={"name": 5, "extra": 1})
    assert r.status_code == 400
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["code"] == "validation_failed"
    assert body["type"].endswith("/validation_failed")
    assert body["errors"] and {"path", "message"} <= set(body["errors"][0])
    assert body["request_id"] == r.headers["x-request-id"]


async def test_malformed_json_is_400_problem(tclient, stores):
    r = await tclient.post(
        "/t/validate", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert r.status_code == 400
    assert r.json()["code"] in ("validation_failed", "bad_request")


async def test_domain_error_keeps_its_code(tclient, stores):
    r = await tclient.get("/t/conflict")
    assert r.status_code == 409
    assert r.json() == {
        "type": "https://tanpuhui.org/problems/thing_exists",
        "title": "Conflict",
        "status": 409,
        "code": "thing_exists",
        "detail": "That thing already exists.",
        "request_id": r.headers["x-request-id"],
    }


async def test_unhandled_error_is_500_without_internals(tclient, stores):
    r = await tclient.get("/t/boom", headers={"X-Request-Id": "req-12345678"})
    assert r.status_code == 500
    body = r.json()
    assert body["code"] == "internal_error"
    assert body["request_id"] == "req-12345678"
    assert "hunter2" not in r.text and "RuntimeError" not in r.text


async def test_unknown_route_is_problem_404(tclient, stores):
    r = await tclient.get("/nope")
    assert r.status_code == 404
    assert r.json()["code"] == "not_found"
    assert r.json()["request_id"] == r.headers["x-request-id"]


async def test_transaction_commits_on_success_and_rolls_back_on_error(tclient, pool):
    assert (await tclient.post("/t/write", json={"key": "a"})).status_code == 201
    assert (await tclient.post("/t/write", json={"key": "b", "fail": True})).status_code == 409
    keys = await pool.fetch("SELECT key FROM idempotency_keys WHERE scope = 't' ORDER BY key")
    assert [k["key"] for k in keys] == ["a"]


async def test_health_and_readiness(client, stores):
    assert (await client.get("/healthz")).json() == {"status": "ok", "checks": {}}
    r = await client.get("/readyz")
    assert r.status_code == 200
    checks = r.json()["checks"]
    assert (checks["postgres"], checks["redis"]) == ("ok", "ok")
    assert checks["districts"].startswith("none imported")  # a note, not a failure
    assert (await client.get("/schema/openapi.json")).status_code == 200


async def test_readyz_is_503_when_redis_is_unreachable(settings, stores):
    broken = msgspec.structs.replace(
        settings, redis=msgspec.structs.replace(settings.redis, url="redis://127.0.0.1:1/0")
    )
    async with AsyncTestClient(app=create_app(broken), raise_server_exceptions=False) as c:
        r = await c.get("/readyz")
    assert r.status_code == 503
    body = r.json()
    assert body["code"] == "not_ready"
    assert body["extra"]["checks"]["postgres"] == "ok"
    assert body["extra"]["checks"]["redis"].startswith("error")


@get("/t/slow")
async def slow(tx: NamedDependency[Tx]) -> None:
    await tx.conn.execute(
        "INSERT INTO idempotency_keys (scope, key, request_hash, status, response) "
        "VALUES ('t', 'slow', '\\x00', 200, '\\x00')"
    )
    await tx.conn.execute("SET LOCAL statement_timeout = '50ms'")
    await tx.conn.execute("SELECT pg_sleep(1)")


async def test_a_statement_timeout_is_503_retry_later_and_nothing_is_kept(settings, pool):
    async with AsyncTestClient(
        app=create_app(settings, extra_handlers=[slow]), raise_server_exceptions=False
    ) as c:
        r = await c.get("/t/slow")
    assert r.status_code == 503
    assert r.headers["retry-after"] == "2"
    assert r.json()["code"] == "retry_later"
    assert await pool.fetchval("SELECT count(*) FROM idempotency_keys WHERE key = 'slow'") == 0
