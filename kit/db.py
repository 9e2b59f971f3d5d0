"""PostgreSQL: the pool, and the one owner of transactions.

``Tx`` is what repositories receive: an asyncpg connection inside an open transaction, plus the
callbacks to run once it commits (background tasks are dispatched only after commit and are
dropped on rollback). Services never commit; :func:`transaction` (and the Litestar dependency
``provide_tx`` built on it) commits on success and rolls back on any error.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import redis.exceptions

log = logging.getLogger("tanpuhui.db")

Pool = asyncpg.Pool
Connection = asyncpg.Connection


async def _init_connection(conn: Any) -> None:
    for typename in ("jsonb", "json"):
        await conn.set_type_codec(
            typename, encoder=json.dumps, decoder=json.loads, schema="pg_catalog"
        )


async def _reset_nothing(conn: Any) -> None:
    """Pool release without asyncpg's default reset query (one round trip per request saved).

    asyncpg still rolls back an open transaction on release. The default query also resets
    session state — SETs, session advisory locks, LISTEN, cursors — which this project never
    leaves on a pool connection: only ``SET LOCAL`` and transaction-level advisory locks are used
    through the pool (migrations take their session lock on a connection of their own).
    """


async def create_pool(
    url: str, *, min_size: int = 2, max_size: int = 10, command_timeout: float = 30.0
) -> Any:
    return await asyncpg.create_pool(
        url,
        min_size=min_size,
        max_size=max_size,
        command_timeout=command_timeout,
        connect=_connect,
        init=_init_connection,
        reset=_reset_nothing,
        server_settings={"application_name": "tanpuhui", "timezone": "UTC"},
    )


async def connect(url: str) -> Any:
    conn = await asyncpg.connect(url, server_settings={"timezone": "UTC"})
    await _init_connection(conn)
    return conn


class StoreUnreachable(ConnectionError):
    """PostgreSQL could not be reached when the pool opened a connection (refused, reset, no
    socket, DNS): asyncpg lets the OS error out as it is, this names it for the handlers."""


class ConnectionLost(StoreUnreachable):
    """The connection died inside a transaction (PostgreSQL restarted, the network cut): asyncpg
    reports it first as ``ConnectionDoesNotExistError``, then, when the transaction is left, as
    an ``InterfaceError`` ("the underlying connection is closed") that would hide the first."""


async def _connect(*args: Any, **kwargs: Any) -> Any:
    try:
        return await asyncpg.connect(*args, **kwargs)
    except OSError as exc:  # ConnectionRefusedError, FileNotFoundError (unix socket), gaierror
        raise StoreUnreachable(f"PostgreSQL is unreachable: {exc}") from exc


# Failures that say "not now" rather than "never": the transaction was rolled back whole (or
# never began), so the same request can simply be sent again. The app answers them 503
# `retry_later` with Retry-After (kit.errors.handle_transient); the one list, registered by
# server.app.create_app.
# Two transactions that took the same rows in opposite orders: one was rolled back and can be
# run again at once (a worker retries it in place; a request answers 503 like the rest).
RACE_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.exceptions.DeadlockDetectedError,
    asyncpg.exceptions.SerializationError,
)

TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    TimeoutError,  # asyncpg's command timeout, pool acquire timeout
    # PostgreSQL: busy, conflicting, shutting down, or the connection gone.
    asyncpg.exceptions.QueryCanceledError,  # statement_timeout, lock_timeout
    asyncpg.exceptions.DeadlockDetectedError,
    asyncpg.exceptions.SerializationError,
    asyncpg.exceptions.LockNotAvailableError,
    asyncpg.exceptions.TooManyConnectionsError,
    asyncpg.exceptions.OperatorInterventionError,  # admin/crash shutdown, cannot connect now
    asyncpg.exceptions.PostgresConnectionError,  # connection does not exist / failed / rejected
    asyncpg.exceptions.ConnectionDoesNotExistError,  # (the common one: lost mid-batch)
    StoreUnreachable,  # connect refused or no socket; ConnectionLost mid-transaction
    # Redis: down, hung (socket timeout), loading its data, failing over.
    redis.exceptions.ConnectionError,  # includes BusyLoadingError, MaxConnectionsError
    redis.exceptions.BusyLoadingError,
    redis.exceptions.TimeoutError,
    redis.exceptions.TryAgainError,
    redis.exceptions.ReadOnlyError,
    redis.exceptions.ClusterDownError,
)


class Tx:
    """A connection inside an open transaction, with after-commit callbacks.

    ``held``: the row keys this transaction has locked, recorded by the code that locked them,
    so that a later step of the same transaction can prefer a row it already holds to taking a
    new lock after the first (the way two transactions deadlock; docs/ledger.md, "Locks")."""

    __slots__ = ("_after_commit", "conn", "held")

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.held: set[object] = set()
        self._after_commit: list[Callable[[], Awaitable[None] | None]] = []

    def after_commit(self, callback: Callable[[], Awaitable[None] | None]) -> None:
        """Run ``callback`` once the transaction has committed; never if it rolls back."""
        self._after_commit.append(callback)

    async def _run_after_commit(self) -> None:
        callbacks, self._after_commit = self._after_commit, []
        for callback in callbacks:
            try:
                result = callback()
                if result is not None:
                    await result
            except Exception:
                # The transaction is committed; a failed dispatch must not turn it into an error
                # answer. Periodic tasks re-scan for work that was never picked up.
                log.exception("after-commit callback failed")


def _lost(conn: Any) -> bool:
    """Whether ``conn`` is closed (a pool's proxy is detached once its connection died)."""
    try:
        return bool(conn.is_closed())
    except asyncpg.exceptions.InterfaceError:
        return True


@asynccontextmanager
async def transaction(pool: Any, *, isolation: str = "read_committed") -> AsyncIterator[Tx]:
    async with pool.acquire() as conn:
        tx = Tx(conn)
        try:
            async with conn.transaction(isolation=isolation):
                yield tx
        except asyncpg.exceptions.InterfaceError as exc:
            if _lost(conn):
                raise ConnectionLost("the PostgreSQL connection was lost mid-transaction") from exc
            raise
        await tx._run_after_commit()


@asynccontextmanager
async def transaction_on(conn: Any) -> AsyncIterator[Tx]:
    """The same ownership on a connection the caller already holds (workers, CLI, tests)."""
    tx = Tx(conn)
    try:
        async with conn.transaction():
            yield tx
    except asyncpg.exceptions.InterfaceError as exc:
        if _lost(conn):
            raise ConnectionLost("the PostgreSQL connection was lost mid-transaction") from exc
        raise
    await tx._run_after_commit()
