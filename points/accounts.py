"""Opening accounts ahead of their first transfer (a resident signing up, a migration of a
programme's members from another platform, the benchmarks' synthetic city). Transfers open the
accounts they touch themselves; this is for opening many at once, set-wise; and for locking a
transaction's resident accounts up front, before a write that will lock other rows first."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from kit.db import Tx
from points import engine
from points import repository as repo
from points.schemas import FLAG_ISSUANCE, RESIDENT_ASSETS, AccountKey

__all__ = ["FLAG_ISSUANCE", "lock_resident_accounts", "open_accounts"]


async def open_accounts(conn: Any, keys: Sequence[AccountKey], *, flags: int = 0) -> int:
    """Create the accounts of ``keys`` that do not exist yet (existing ones are left as they
    are, unlocked); returns how many keys were given."""
    await repo.ensure_accounts(conn, keys, [flags] * len(keys))
    return len(keys)


async def lock_resident_accounts(tx: Tx, resident_ids: Sequence[str]) -> None:
    """Open and lock the residents' accounts (grams and points) in one sorted step.

    For a transaction that writes the ledger in more than one call (an ingestion batch that
    reverses displaced credits, then issues): every resident account sorts before the system
    accounts, so locking all of them first, then the issuance shards the reversal reads, then
    issuing from a shard already held (``engine.issuance_source``) takes every lock in the one
    global order, as a single call does."""
    await engine.lock(
        tx, [AccountKey("resident", r, a) for r in resident_ids for a in RESIDENT_ASSETS]
    )
