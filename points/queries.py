"""The ledger's reads: balances, statements, expiring points, one transfer.

Reads take an asyncpg connection or pool and write nothing.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import msgspec

from kit import cursor as cursors
from points import engine
from points import repository as repo
from points.errors import TransferNotFound
from points.schemas import (
    ASSETS,
    RESIDENT_ASSETS,
    Asset,
    Balance,
    ExpiringLot,
    StatementPage,
    Transfer,
    utcnow,
)


async def balances(conn: Any, owner_type: str, owner_id: str) -> list[Balance]:
    """Posted, pending (held) and available balance of each asset: CO2E_G and POINT always
    (zeros when none yet), then any other asset only where the owner has an account of it (an
    enterprise's ALLOWANCE_G), in ``ASSETS`` order."""
    found = {b.asset: b for b in await repo.balances(conn, owner_type, owner_id)}
    return [found.get(a, Balance(a, 0, 0, 0)) for a in ASSETS if a in RESIDENT_ASSETS or a in found]


async def balance_as_of(
    conn: Any, owner_type: str, owner_id: str, asset: Asset, at: datetime
) -> Balance:
    """The balance as it was recorded at ``at`` (re-derived from the transfers)."""
    engine.check_aware(at, "at")
    account = await repo.account_id(conn, owner_type, owner_id, asset)
    if account is None:
        return Balance(asset, 0, 0, 0)
    posted, pending = await repo.balance_as_of(conn, account, at)
    return Balance(asset, posted, pending, posted - pending)


class _Cursor(msgspec.Struct, frozen=True):
    b: int  # the statement continues with transfer ids below this one


_MAX_ID = 2**63 - 1


def _decode_cursor(cursor: str | None) -> int:
    return _MAX_ID if cursor is None else cursors.decode(cursor, _Cursor).b


def _encode_cursor(before: int) -> str:
    return cursors.encode(_Cursor(before))


async def statement(
    conn: Any,
    owner_type: str,
    owner_id: str,
    asset: Asset,
    *,
    cursor: str | None,
    limit: int,
) -> StatementPage:
    """Entries of one account, newest first; ``next_cursor`` continues (None at the end)."""
    limit = max(1, min(limit, 500))
    before = _decode_cursor(cursor)
    account = await repo.account_id(conn, owner_type, owner_id, asset)
    if account is None:
        return StatementPage([], None)
    entries = await repo.statement(conn, account, before, limit + 1)
    more = len(entries) > limit
    entries = entries[:limit]
    return StatementPage(
        entries, _encode_cursor(int(entries[-1].transfer_id)) if more and entries else None
    )


async def expiring(
    conn: Any,
    owner_type: str,
    owner_id: str,
    *,
    within_days: int,
    now: datetime | None = None,
) -> list[ExpiringLot]:
    """Unspent points expiring within ``within_days``, by expiry date (nearest first)."""
    now = now or utcnow()
    account = await repo.account_id(conn, owner_type, owner_id, "POINT")
    if account is None:
        return []
    return await repo.expiring_lots(conn, account, now + timedelta(days=within_days))


async def get_transfer(conn: Any, transfer_id: str) -> Transfer:
    row = await repo.transfer_by_id(conn, engine.int_id(transfer_id, TransferNotFound))
    if row is None:
        raise TransferNotFound(f"no transfer {transfer_id!r}")
    return row.transfer
