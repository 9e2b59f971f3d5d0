"""Reads the ledger publishes for other packages: a resident's summary in one statement and
posted balances of many owners at once. Read-only; the SQL is points/repository.py's (its last
section). ``points.service`` keeps the per-account reads (balances, statement, expiring)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import msgspec

from points import repository as repo


class OwnerSummary(msgspec.Struct, frozen=True):
    """What an owner's app screen shows of the ledger (one statement)."""

    grams: int  # posted CO2E_G: verified reduction
    points_posted: int
    points_pending: int  # held by pending debits
    points_expiring: int  # unspent POINT lots expiring by the asked time

    @property
    def points_available(self) -> int:
        return self.points_posted - self.points_pending


async def owner_summary(
    conn: Any, owner_type: str, owner_id: str, *, expiring_until: datetime
) -> OwnerSummary:
    """The same figures as ``service.balances`` and ``service.expiring`` (zeros for an owner
    without accounts), in one round trip instead of four."""
    row = await repo.owner_summary(conn, owner_type, owner_id, expiring_until)
    return OwnerSummary(
        grams=int(row["grams"]),
        points_posted=int(row["points_posted"]),
        points_pending=int(row["points_pending"]),
        points_expiring=int(row["points_expiring"]),
    )


async def posted_by_owner(
    conn: Any, owner_type: str, owner_ids: Sequence[str], asset: str
) -> dict[str, int]:
    """Posted balance of ``asset`` per owner among ``owner_ids`` (owners without an account are
    absent). One statement for any number of owners."""
    return await repo.posted_by_owner(conn, owner_type, owner_ids, asset)
