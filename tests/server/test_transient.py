"""A store that fails after start-up answers 503 `retry_later` with Retry-After, never 500, and
the request can be sent again as it is once the store is back.

Redis: an embedded Redis of the test's own, stopped (or frozen) under a running app. PostgreSQL:
the app's backend terminated while a batch waits inside its transaction; and the app reaching
PostgreSQL through a TCP relay that is then cut (pooled connections dropped, new ones refused).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit, urlunsplit

import asyncpg
import msgspec
import pytest
from litestar.testing import AsyncTestClient

from kit.auth import JwtKeys, Role, sign_request
from server.app import create_app
from server.embedded import EmbeddedRedis
from server.settings import Settings
from tests.behaviours.factories import SECRET, linked, metro, operator
from tests.residents.factories import resident

MOBILE = "/api/mobile/v1"
EVENTS = "/api/operators/v1/events"


def _replace(settings: Settings, **sections: dict[str, Any]) -> Settings:
    r = msgspec.structs.replace
    return r(settings, **{k: r(getattr(settings, k), **v) for k, v in sections.items()})


def assert_retry_later(r: Any) -> None:
    assert r.status_code == 503, (r.status_code, r.text)
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["code"] == "retry_later"
    assert int(r.headers["retry-after"]) > 0


async def _resident(pool: Any, jwt_keys: JwtKeys) -> dict[str, str]:
    rid = await resident(pool, "440305")
    token = jwt_keys.issue(rid, Role.RESIDENT, 3600, extra={"typ": "access"})
    return {"authorization": f"Bearer {token}"}


def _signed(body: bytes) -> dict[str, str]:
    headers = sign_request(SECRET, "POST", EVENTS, body, operator_id="metro", key_id="k1")
    return {**headers, "content-type": "application/json"}


def _steps() -> bytes:
    from datetime import UTC, datetime, timedelta

    day = (datetime.now(UTC) - timedelta(days=1)).date().isoformat()
    return msgspec.json.encode({"type": "steps", "day": day, "steps": 8000})


# --- Redis ---------------------------------------------------------------------------------


@pytest.fixture
async def own_redis(tmp_path: Path) -> AsyncIterator[EmbeddedRedis]:
    rd = EmbeddedRedis(tmp_path / "redis", persist=False)
    rd.start()
    yield rd
    if rd._proc is not None and rd._proc.poll() is None:
        os.kill(rd._proc.pid, signal.SIGCONT)
    rd.stop()


@pytest.fixture
async def redis_app(settings, own_redis, pool, jwt_keys) -> AsyncIterator[tuple[Any, Any]]:
    app = create_app(_replace(settings, redis={"url": own_redis.url}))
    async with AsyncTestClient(app=app, raise_server_exceptions=False) as client:
        await operator(pool, "metro")
        yield client, await _resident(pool, jwt_keys)


def _requests(auth: dict[str, str]) -> dict[str, tuple[str, str, bytes, dict[str, str]]]:
    batch = msgspec.json.encode({"events": []})
    json = {"content-type": "application/json"}
    return {
        "resident read (session check)": ("GET", f"{MOBILE}/me", b"", auth),
        "summary (leaderboard)": ("GET", f"{MOBILE}/summary", b"", auth),
        "activity report": ("POST", f"{MOBILE}/activities", _steps(), {**auth, **json}),
        "sms code (rate limits)": (
            "POST",
            f"{MOBILE}/auth/sms-codes",
            b'{"phone": "13812345678"}',
            json,
        ),
        "operator batch (nonce)": ("POST", EVENTS, batch, {}),
    }


async def _send(client: Any, method: str, path: str, body: bytes, headers: dict[str, str]) -> Any:
    if path == EVENTS:
        headers = _signed(body)
    return await client.request(method, path, content=body, headers=headers)


async def test_redis_stopped_after_start_is_503_on_every_route_that_touches_it(
    redis_app, own_redis
):
    client, auth = redis_app
    cases = _requests(auth)
    for what, (method, path, body, headers) in cases.items():  # all well while Redis is up
        r = await _send(client, method, path, body, headers)
        assert r.status_code < 300, (what, r.status_code, r.text)
    own_redis.stop()
    for what, (method, path, body, headers) in cases.items():
        r = await _send(client, method, path, body, headers)
        try:
            assert_retry_later(r)
        except AssertionError as exc:
            raise AssertionError(f"{what}: {exc}") from None


async def test_redis_hung_is_503_after_its_timeout(redis_app, own_redis):
    client, auth = redis_app
    assert (await client.get(f"{MOBILE}/me", headers=auth)).status_code == 200
    assert own_redis._proc is not None
    os.kill(own_redis._proc.pid, signal.SIGSTOP)  # alive, but answers nothing
    try:
        assert_retry_later(await client.get(f"{MOBILE}/me", headers=auth))
    finally:
        os.kill(own_redis._proc.pid, signal.SIGCONT)
    assert (await client.get(f"{MOBILE}/me", headers=auth)).status_code == 200


def test_every_redis_and_postgres_outage_is_in_the_transient_list():
    import redis.exceptions as rx

    from kit.db import TRANSIENT_ERRORS, StoreUnreachable

    for kind in (
        rx.ConnectionError,
        rx.TimeoutError,
        rx.BusyLoadingError,
        rx.TryAgainError,
        asyncpg.exceptions.ConnectionDoesNotExistError,
        asyncpg.exceptions.ConnectionFailureError,
        asyncpg.exceptions.AdminShutdownError,
        asyncpg.exceptions.CannotConnectNowError,
        StoreUnreachable,
    ):
        assert issubclass(kind, TRANSIENT_ERRORS), kind
    assert not issubclass(ValueError, TRANSIENT_ERRORS)  # a bug stays a 500


# --- PostgreSQL ----------------------------------------------------------------------------


class Relay:
    """A TCP relay to PostgreSQL between the app and the server, that the test can cut.

    Threads, not the test's event loop: Litestar's test client runs the app on a loop of its own
    and blocks the test's loop for the length of each request."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        host = parse_qs(parts.query).get("host", [parts.hostname or "localhost"])[0]
        port = parts.port or 5432
        self._unix = f"{host}/.s.PGSQL.{port}" if host.startswith("/") else None
        self._tcp = (host, port)
        self._url = parts
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()

    def start(self) -> str:
        threading.Thread(target=self._accept, daemon=True).start()
        port = self._listener.getsockname()[1]
        user = self._url.username or "postgres"
        password = f":{self._url.password}" if self._url.password else ""
        return urlunsplit(
            ("postgresql", f"{user}{password}@127.0.0.1:{port}", self._url.path, "", "")
        )

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self._unix:
                upstream = socket.socket(socket.AF_UNIX)
                upstream.connect(self._unix)
            else:
                upstream = socket.create_connection(self._tcp)
            with self._lock:
                self._sockets += [client, upstream]
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                dst.sendall(data)
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_RDWR)

    def drop(self) -> None:
        """Every connection open through the relay is lost (new ones are still relayed)."""
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def cut(self) -> None:
        """PostgreSQL is gone: open connections lost, new ones refused."""
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        self.drop()


@pytest.fixture
async def relayed(settings: Settings) -> AsyncIterator[tuple[Relay, Any]]:
    """(relay, client) of an app that reaches PostgreSQL through a relay of its own."""
    assert settings.database.url
    relay = Relay(settings.database.url)
    url = relay.start()
    app = create_app(_replace(settings, database={"url": url, "pool_min": 1, "pool_max": 2}))
    async with AsyncTestClient(app=app, raise_server_exceptions=False) as client:
        yield relay, client
    relay.cut()


def _when_waiting_on(url: str, table: str, then: Any) -> threading.Thread:
    """A thread that calls ``then()`` once some transaction waits for a lock on ``table``
    (pg_locks lists every role's locks)."""

    async def watch() -> None:
        conn = await asyncpg.connect(url)
        try:
            for _ in range(2000):
                waiting = await conn.fetchval(
                    "SELECT count(*) FROM pg_locks WHERE relation = $1::regclass AND NOT granted",
                    table,
                )
                if waiting:
                    then()
                    return
                await asyncio.sleep(0.01)
        finally:
            await conn.close()

    thread = threading.Thread(target=asyncio.run, args=(watch(),), daemon=True)
    thread.start()
    return thread


async def test_postgres_connection_lost_mid_batch_is_503_and_the_same_batch_goes_through_after(
    relayed, pool, settings
):
    relay, client = relayed
    await operator(pool, "metro")
    _, subject = await linked(pool)
    body = msgspec.json.encode({"events": [metro(subject, "lost-1")]})
    assert settings.database.url
    locker = await asyncpg.connect(settings.database.url)
    try:
        lock = locker.transaction()
        await lock.start()
        # The batch's transaction waits on this lock, its work begun; then its connection dies.
        await locker.execute("LOCK TABLE behaviour_events IN ACCESS EXCLUSIVE MODE")
        cutter = _when_waiting_on(settings.database.url, "behaviour_events", relay.drop)
        r = await client.post(EVENTS, content=body, headers=_signed(body))
        cutter.join()
        await lock.rollback()
    finally:
        await locker.close()
    assert_retry_later(r)
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM behaviour_events") == 0
    again = await client.post(EVENTS, content=body, headers=_signed(body))  # as it is
    assert again.status_code == 200, again.text
    assert again.json()["accepted"] == 1


async def test_postgres_unreachable_after_start_is_503(settings, pool, jwt_keys):
    assert settings.database.url
    relay = Relay(settings.database.url)
    url = relay.start()
    app = create_app(_replace(settings, database={"url": url, "pool_min": 1, "pool_max": 2}))
    await operator(pool, "metro")
    auth = await _resident(pool, jwt_keys)
    async with AsyncTestClient(app=app, raise_server_exceptions=False) as client:
        assert (await client.get(f"{MOBILE}/me", headers=auth)).status_code == 200
        relay.cut()
        # the pooled connection is gone (lost), then no new one can be made (refused)
        for _ in range(3):
            assert_retry_later(await client.get(f"{MOBILE}/me", headers=auth))
        body = msgspec.json.encode({"events": []})
        assert_retry_later(await client.post(EVENTS, content=body, headers=_signed(body)))
        report = await client.post(
            f"{MOBILE}/activities",
            content=_steps(),
            headers={**auth, "content-type": "application/json"},
        )
        assert_retry_later(report)
