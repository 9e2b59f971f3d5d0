"""The operator API at the edge, through a real `tanpuhui serve` (uvicorn, its HTTP parser, a
small pool): slow bodies hold no pooled connection, a stale upload is refused before its body is
read, an oversized request head is refused, and `X-Forwarded-For` is not believed by default."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest

from kit.auth import sign_request
from server.cli import uvicorn_options
from server.settings import Settings, SettingsError
from tests.behaviours.factories import SECRET, operator
from tests.conftest import JWT_KEYS

ROOT = Path(__file__).resolve().parents[2]
EVENTS = "/api/operators/v1/events"
FILES = "/api/operators/v1/files?format=ndjson"
POOL_MAX = 5


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def live(stores: tuple[str, str]) -> Iterator[str]:
    """`tanpuhui serve` on a free port, one worker, a pool of ``POOL_MAX`` connections."""
    db_url, redis_url = stores
    port = _free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("TANPUHUI_")},
        "DATABASE_URL": db_url,
        "REDIS_URL": redis_url,
        "TANPUHUI_ENV": "test",
        "TANPUHUI_AUTH_JWT_KEYS": JWT_KEYS,
        "TANPUHUI_HTTP_PORT": str(port),
        "TANPUHUI_HTTP_WORKERS": "1",
        "TANPUHUI_DATABASE_POOL_MIN": "1",
        "TANPUHUI_DATABASE_POOL_MAX": str(POOL_MAX),
        "TANPUHUI_SMS_PER_IP_PER_HOUR": "1",
        "TANPUHUI_LOG_LEVEL": "WARNING",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "server.cli", "serve"],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
                pytest.fail(f"tanpuhui serve exited with {proc.returncode}:\n{err[-4000:]}")
            try:
                if httpx.get(base + "/healthz", timeout=1, trust_env=False).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("tanpuhui serve did not answer /healthz within 60 s")
            time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stderr:
            proc.stderr.close()  # else an unclosed-file ResourceWarning (an error in the suite)


@pytest.fixture
async def http(live: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=live, timeout=5, trust_env=False) as c:
        yield c


def _port(base: str) -> int:
    return int(base.rsplit(":", 1)[1])


def _head(method: str, target: str, headers: dict[str, str], length: int | None = None) -> bytes:
    lines = [f"{method} {target} HTTP/1.1", "Host: 127.0.0.1"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    if length is not None:
        media = "application/x-ndjson" if target.startswith(FILES) else "application/json"
        lines += [f"Content-Type: {media}", f"Content-Length: {length}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


async def _read_answer(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=10)
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    body = await asyncio.wait_for(reader.readexactly(length), timeout=10) if length else b""
    return status, body


async def _idle_in_transaction(pool: Any) -> int:
    """The app's backends idle inside an open transaction. The server connects as the role of
    ``pool`` (``DATABASE_URL``), so their state is visible to it."""
    count: int = await pool.fetchval(
        """
        SELECT count(*) FROM pg_stat_activity
        WHERE datname = current_database() AND usename = current_user
          AND application_name = 'tanpuhui' AND state LIKE 'idle in transaction%'
          AND pid <> pg_backend_pid()
        """
    )
    return count


# --- slow bodies ---------------------------------------------------------------------------


async def test_trickling_bodies_hold_no_pooled_connection(live, http, pool):
    await operator(pool, "metro")
    async with pool.acquire() as conn, conn.transaction():  # the count sees an open transaction
        await conn.execute("SELECT 1")
        assert await _idle_in_transaction(pool) == 1
    port = _port(live)
    body = b'{"events": []}' + b" " * 986
    streams: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    for i in range(20):
        target = EVENTS if i % 2 else FILES
        headers = sign_request(SECRET, "POST", target, body, operator_id="metro", key_id="k1")
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(_head("POST", target, headers, len(body)) + body[:1])
        await writer.drain()
        streams.append((reader, writer))

    async def trickle() -> None:
        sent = 1
        while True:
            await asyncio.sleep(0.25)
            for _, writer in streams:
                writer.write(body[sent : sent + 1])
                await writer.drain()
            sent += 1

    trickler = asyncio.create_task(trickle())
    try:
        # While 20 bodies trickle in (4 times the pool), no transaction is held open for them...
        for _ in range(10):
            assert await _idle_in_transaction(pool) == 0
            await asyncio.sleep(0.1)
        # ...and a signed request and readiness answer at once (the client times out at 5 s).
        empty = b'{"events": []}'
        headers = sign_request(SECRET, "POST", EVENTS, empty, operator_id="metro", key_id="k1")
        headers["Content-Type"] = "application/json"
        r = await http.post(EVENTS, content=empty, headers=headers)
        assert r.status_code == 200, r.text
        assert r.json()["accepted"] == 0
        r = await http.get("/readyz")
        assert r.status_code == 200, r.text
        assert r.json()["checks"]["postgres"] == "ok"
        assert await _idle_in_transaction(pool) == 0
        assert not trickler.done()  # still trickling: none of them was answered meanwhile
    finally:
        trickler.cancel()
        with contextlib.suppress(asyncio.CancelledError, ConnectionError):
            await trickler
        for _, writer in streams:
            writer.close()


@pytest.mark.parametrize(
    ("tamper", "code"),
    [
        ({"X-Timestamp": str(int(time.time()) - 3600)}, "signature_stale"),
        ({"X-Signature": None}, "signature_missing"),
        ({"X-Timestamp": "1" * 5000}, "signature_invalid"),
    ],
)
async def test_a_huge_upload_with_bad_headers_is_refused_before_its_body(live, pool, tamper, code):
    """200 MiB declared, 64 KiB sent: the 401 comes back while the client has sent almost
    nothing (the body was never read), on both body-carrying routes."""
    await operator(pool, "metro")
    for target in (FILES, EVENTS):
        headers = sign_request(SECRET, "POST", target, b"", operator_id="metro", key_id="k1")
        for name, value in tamper.items():
            if value is None:
                del headers[name]
            else:
                headers[name] = value
        reader, writer = await asyncio.open_connection("127.0.0.1", _port(live))
        try:
            writer.write(_head("POST", target, headers, 200 * 1024 * 1024) + b"x" * 65536)
            await writer.drain()
            status, answer = await _read_answer(reader)
        finally:
            writer.close()
        assert status == 401, answer
        assert msgspec.json.decode(answer)["code"] == code


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("X-Timestamp", b"\xb2"),  # superscript two (Latin-1): str.isdigit() says yes, int() no
        ("X-Timestamp", b"1" * 5000),
        ("X-Signature", b"\xe9" * 64),  # compare_digest() refuses non-ASCII str
    ],
)
async def test_hostile_signature_header_bytes_on_the_wire_are_signature_invalid(
    live, pool, name, value
):
    """Raw bytes through uvicorn (the in-process test client re-encodes non-ASCII header
    values), on a route with a body and one without."""
    await operator(pool, "metro")
    body = b'{"events": []}'
    status_path = "/api/operators/v1/files/00000000-0000-0000-0000-000000000000"
    for method, target, content in (("POST", EVENTS, body), ("GET", status_path, b"")):
        headers = sign_request(SECRET, method, target, content, operator_id="metro", key_id="k1")
        del headers[name]
        head = _head(method, target, headers, len(content) if content else None)
        head = head.replace(b"\r\n\r\n", b"\r\n" + name.encode() + b": " + value + b"\r\n\r\n")
        reader, writer = await asyncio.open_connection("127.0.0.1", _port(live))
        try:
            writer.write(head + content)
            await writer.drain()
            status, answer = await _read_answer(reader)
        finally:
            writer.close()
        assert status == 401, (method, answer)
        assert msgspec.json.decode(answer)["code"] == "signature_invalid"


# --- request heads -------------------------------------------------------------------------


def _send_head(port: int, header_bytes: int, piece: int) -> bytes:
    """A GET /healthz whose one header carries ``header_bytes`` bytes, sent ``piece`` bytes at
    a time; the first line of the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ")
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            for start in range(0, header_bytes, piece):
                s.sendall(b"a" * min(piece, header_bytes - start))
            s.sendall(b"\r\n\r\n")
        answer = b""
        with contextlib.suppress(ConnectionResetError):
            while b"\r\n" not in answer:
                chunk = s.recv(4096)
                if not chunk:
                    break
                answer += chunk
    return answer.split(b"\r\n", 1)[0]


async def test_an_oversized_request_head_is_refused(live, pool):
    port = _port(live)
    assert await asyncio.to_thread(_send_head, port, 8 * 1024, 8 * 1024) == b"HTTP/1.1 200 OK"
    too_large = b"HTTP/1.1 431 Request Header Fields Too Large"
    # whole (the parser hands the header over) and in pieces (still incomplete: counted by read)
    assert await asyncio.to_thread(_send_head, port, 64 * 1024, 64 * 1024) == too_large
    assert await asyncio.to_thread(_send_head, port, 8 * 1024 * 1024, 1024) == too_large
    # the server is still there
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert s.recv(4096).startswith(b"HTTP/1.1 200")


# --- client address ------------------------------------------------------------------------


async def test_x_forwarded_for_from_loopback_is_not_believed_by_default(http, pool):
    """One SMS code per client IP per hour (this server's setting): two numbers behind two
    claimed X-Forwarded-For addresses are still one client, the socket's peer."""
    first = await http.post(
        "/api/mobile/v1/auth/sms-codes",
        json={"phone": "13800000001"},
        headers={"X-Forwarded-For": "203.0.113.1"},
    )
    assert first.status_code == 202, first.text
    second = await http.post(
        "/api/mobile/v1/auth/sms-codes",
        json={"phone": "13800000002"},
        headers={"X-Forwarded-For": "203.0.113.2"},
    )
    assert second.status_code == 429, second.text
    assert second.json()["code"] == "sms_rate_limited"


def test_uvicorn_options_trust_no_proxy_by_default_and_bound_the_head():
    options = uvicorn_options(Settings.from_env({}))
    assert options["proxy_headers"] is False
    assert options["forwarded_allow_ips"] == []
    assert options["http"] == "server.http_limits:BoundedHttpToolsProtocol"
    assert options["h11_max_incomplete_event_size"] == 16 * 1024


def test_uvicorn_options_trusted_proxies_setting():
    env = {"TANPUHUI_HTTP_TRUSTED_PROXIES": "10.0.0.1, 10.8.0.0/16,", "TANPUHUI_HTTP_PORT": "9"}
    options = uvicorn_options(Settings.from_env(env))
    assert options["proxy_headers"] is True
    assert options["forwarded_allow_ips"] == ["10.0.0.1", "10.8.0.0/16"]
    with pytest.raises(SettingsError) as info:
        uvicorn_options(Settings.from_env({"TANPUHUI_HTTP_TRUSTED_PROXIES": "proxy.local"}))
    assert info.value.variable == "TANPUHUI_HTTP_TRUSTED_PROXIES"
