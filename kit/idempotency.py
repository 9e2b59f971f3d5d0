"""``Idempotency-Key`` for any POST that moves value: replay the first answer or run once.

A key lives in a caller's ``scope`` (e.g. ``resident:<id>``), so two callers never share keys.
The first request with a key runs and its answer is remembered in the same transaction; a
retry with the same key and the same request gets that answer back, unchanged; the same key
with another request is refused (409 ``idempotency_key_reused``). Concurrent requests with one
key are serialised by a transaction-level advisory lock, so exactly one of them runs.

The kernel owns the ``idempotency_keys`` table (migration 0001); this module is its only SQL.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from typing import Any, NamedTuple, TypeVar

import msgspec

from kit.db import Tx
from kit.errors import IdempotencyConflict

T = TypeVar("T")


class Stored(NamedTuple):
    status: int
    body: bytes


def request_hash(method: str, path: str, body: bytes) -> bytes:
    """What must be equal for a retry to be the same request."""
    return hashlib.sha256(b"\n".join((method.encode(), path.encode(), body))).digest()


async def replay(tx: Tx, scope: str, key: str, digest: bytes) -> Stored | None:
    """The stored answer for ``key`` (None: first use; the key stays locked until commit).
    Same key, other request: ``IdempotencyConflict``."""
    await tx.conn.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended($1 || ':' || $2, 31))", scope, key
    )
    row = await tx.conn.fetchrow(
        "SELECT request_hash, status, response FROM idempotency_keys WHERE scope = $1 AND key = $2",
        scope,
        key,
    )
    if row is None:
        return None
    if bytes(row["request_hash"]) != digest:
        raise IdempotencyConflict("This Idempotency-Key was used for a different request.")
    return Stored(int(row["status"]), bytes(row["response"]))


async def remember(
    tx: Tx, scope: str, key: str, digest: bytes, status: int, response: bytes
) -> None:
    """Keep the answer given to the first request with ``key`` (same transaction as its work)."""
    await tx.conn.execute(
        """
        INSERT INTO idempotency_keys (scope, key, request_hash, status, response)
        VALUES ($1, $2, $3, $4, $5)
        """,
        scope,
        key,
        digest,
        status,
        response,
    )


async def replay_or_run(
    tx: Tx,
    scope: str,
    key: str | None,
    digest: bytes,
    run: Callable[[], Awaitable[T]],
    answer_type: type[T],
    *,
    status: int = 200,
) -> tuple[int, T]:
    """(status, answer): the remembered one for a known ``key``, else ``run()``'s, remembered.
    Without a key the request simply runs (the header is optional)."""
    if key:
        stored = await replay(tx, scope, key, digest)
        if stored is not None:
            return stored.status, msgspec.json.decode(stored.body, type=answer_type)
    answer = await run()
    if key:
        await remember(tx, scope, key, digest, status, _encoder.encode(answer))
    return status, answer


_encoder: Any = msgspec.json.Encoder()
