"""``Idempotency-Key`` for any POST that moves value: replay the first answer or run once.

A key lives in a caller's ``scope`` (e.g. ``resident:<id>``), so two callers never share keys.
The first request with a key runs and its answer is remembered in the same transaction; a
retry with the same key and the same request gets that answer back, unchanged; the same key
with another request is refused (409 ``idempotency_key_reused``). Concurrent requests with one
key are serialised by a transaction-level advisory lock, so exactly one of them runs.

:func:`replay_or_run_many` is the same for a batch of requests in one transaction (a micro-batch,
``kit.batcher``), set-wise: every key locked in one statement (in a fixed order), the stored
answers read in one query, the new answers remembered in one INSERT; each request's outcome is
what :func:`replay_or_run` would have given it, had the requests run one after another.

The kernel owns the ``idempotency_keys`` table (migration 0001); this module is its only SQL.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Sequence
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


class Keyed(NamedTuple):
    """One request of a batch: its caller's scope, its ``Idempotency-Key`` (None: none sent) and
    its :func:`request_hash`."""

    scope: str
    key: str | None
    digest: bytes


def _segments(requests: Sequence[Keyed]) -> list[list[int]]:
    """The batch cut, in order, into runs in which no key is sent twice: a key repeated in the
    batch is decided after its first use is (replayed if it succeeded, run if it was refused),
    as it would be one request after another."""
    out: list[list[int]] = [[]]
    seen: set[tuple[str, str]] = set()
    for i, r in enumerate(requests):
        if r.key:
            if (r.scope, r.key) in seen:
                out.append([])
                seen = set()
            seen.add((r.scope, r.key))
        out[-1].append(i)
    return out


async def replay_or_run_many(
    tx: Tx,
    requests: Sequence[Keyed],
    run_many: Callable[[list[int]], Awaitable[Sequence[T | Exception]]],
    answer_type: type[T],
    *,
    status: int = 200,
) -> list[tuple[int, T] | Exception]:
    """:func:`replay_or_run` for each request of a batch, in order: (status, answer) or the
    request's own exception (``IdempotencyConflict``, or what its run refused it with).

    ``run_many(indices)`` runs the requests at those indices (in order) and answers each with
    its result or exception; a request refused must have left nothing behind (the batch's
    transaction commits the others). An exception raised by ``run_many`` itself fails the
    whole batch (the caller rolls back)."""
    keyed = sorted({(r.scope, r.key) for r in requests if r.key})
    if keyed:
        # One statement, the locks taken in the order of their hashes (each once): two batches
        # sharing keys cannot deadlock. Volatile target functions run after the ORDER BY.
        await tx.conn.execute(
            """
            SELECT pg_advisory_xact_lock(h) FROM (
                SELECT DISTINCT hashtextextended(s || ':' || k, 31) AS h
                FROM unnest($1::text[], $2::text[]) AS u(s, k)) AS x
            ORDER BY h
            """,
            [s for s, _ in keyed],
            [k for _, k in keyed],
        )
    out: list[tuple[int, T] | Exception | None] = [None] * len(requests)
    for segment in _segments(requests):
        stored: dict[tuple[str, str], Any] = {}
        mine = [(requests[i].scope, requests[i].key) for i in segment if requests[i].key]
        if mine:
            # One primary-key probe per key (LATERAL): an ``IN (unnest)`` semi-join was planned
            # as a scan of the whole table, 3.8 ms a batch once it held 10^5 keys.
            rows = await tx.conn.fetch(
                """
                SELECT i.scope, i.key, i.request_hash, i.status, i.response
                FROM unnest($1::text[], $2::text[]) AS u(scope, key),
                LATERAL (
                    SELECT * FROM idempotency_keys WHERE scope = u.scope AND key = u.key
                ) AS i
                """,
                [s for s, _ in mine],
                [k for _, k in mine],
            )
            stored = {(r["scope"], r["key"]): r for r in rows}
        to_run: list[int] = []
        for i in segment:
            r = requests[i]
            row = stored.get((r.scope, r.key)) if r.key else None
            if row is None:
                to_run.append(i)
            elif bytes(row["request_hash"]) != r.digest:
                out[i] = IdempotencyConflict(
                    "This Idempotency-Key was used for a different request."
                )
            else:
                out[i] = (
                    int(row["status"]),
                    msgspec.json.decode(bytes(row["response"]), type=answer_type),
                )
        if not to_run:
            continue
        answers = await run_many(to_run)
        if len(answers) != len(to_run):
            raise RuntimeError("run_many answered a different number of requests")
        keep: list[tuple[Keyed, bytes]] = []
        for i, answer in zip(to_run, answers, strict=True):
            if isinstance(answer, Exception):
                out[i] = answer
                continue
            out[i] = (status, answer)
            if requests[i].key:
                keep.append((requests[i], _encoder.encode(answer)))
        if keep:
            await tx.conn.execute(
                """
                INSERT INTO idempotency_keys (scope, key, request_hash, status, response)
                SELECT s, k, h, $4, b FROM unnest($1::text[], $2::text[], $3::bytea[], $5::bytea[])
                    AS u(s, k, h, b)
                """,
                [r.scope for r, _ in keep],
                [r.key for r, _ in keep],
                [r.digest for r, _ in keep],
                status,
                [b for _, b in keep],
            )
    done = [o for o in out if o is not None]
    assert len(done) == len(requests), "every request of the batch was decided"
    return done


_encoder: Any = msgspec.json.Encoder()
