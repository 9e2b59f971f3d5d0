"""Signed callers (operators, meters' pushers, merchants): the HMAC scheme's HTTP side, shared by
every surface that uses it (kit.auth holds the scheme itself).

The caller is resolved before any transaction is opened: the signature headers are checked
before a byte of the body is read, the body is read bounded, the key looked up through the
surface's ``lookup_secret`` (on the pool: no pooled connection is held while the body arrives),
then the HMAC and the nonce are verified. Only then may the route decode the body.
"""

from __future__ import annotations

from typing import Any

from litestar import Request

from behaviours.errors import BodyTooLarge
from kit.auth import KeyLookup, SignedCaller, check_signature_headers, verify_signed
from server.settings import Settings


def signed_path(request: Request[Any, Any, Any]) -> str:
    """The request target as sent on the wire: the raw path (percent-encoding untouched, never
    the decoded ``path``), then ``?`` and the raw query string when there is one."""
    raw: bytes = request.scope.get("raw_path") or request.scope["path"].encode()
    # A '?' on the request line always starts the query; some ASGI clients (the test client)
    # leave the query in raw_path.
    raw = raw.partition(b"?")[0]
    query: bytes = request.scope.get("query_string", b"")
    path = raw.decode("latin-1")
    return f"{path}?{query.decode('latin-1')}" if query else path


async def read_limited(request: Request[Any, Any, Any], limit: int, what: str) -> bytes:
    """The body, refused (413 ``body_too_large``) as soon as it passes ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared and declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(f"{what} is {declared} bytes; the limit is {limit} bytes.")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(f"{what} exceeds the limit of {limit} bytes.")
        chunks.append(chunk)
    return b"".join(chunks)


async def signed_request(
    request: Request[Any, Any, Any],
    redis: Any,
    settings: Settings,
    lookup_secret: KeyLookup,
    *,
    limit: int = 0,
    what: str = "The body",
) -> tuple[SignedCaller, bytes]:
    """The verified caller and the body (``limit`` 0: no body is read, an empty one is signed)."""
    headers = check_signature_headers(request.headers, skew_s=settings.auth.signature_skew_s)
    body = await read_limited(request, limit, what) if limit else b""
    caller = await verify_signed(
        headers,
        method=request.method,
        path=signed_path(request),
        body=body,
        lookup_secret=lookup_secret,
        redis=redis,
    )
    return caller, body
