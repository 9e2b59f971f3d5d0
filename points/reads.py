"""Reads the ledger publishes for other packages: a resident's summary in one statement and
posted balances of many owners at once. Read-only; the SQL is points/repository.py's (its last
section). ``points.service`` keeps the per-account reads (balances, statement, expiring)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any, Literal

import msgspec

from points import repository as repo
from points.schemas import ExpiringLot


class OwnerSummary(msgspec.Struct, frozen=True):
    """What an owner's app screen shows of the ledger (one statement)."""

    grams: int  # posted CO2E_G: verified reduction
    points_posted: int
    points_pending: int  # held by pending debits
    points_expiring: int  # unspent POINT lots expiring by the asked time
    # Every expiry date of the unspent POINT lots with its points, nearest first (what is held
    # by a pending debit is still in its lot: it expires with it unless the hold is posted).
    expiries: tuple[ExpiringLot, ...] = ()

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
        expiries=tuple(
            ExpiringLot(at, int(amount))
            for at, amount in zip(
                row["expiry_dates"] or (), row["expiry_amounts"] or (), strict=True
            )
        ),
    )


async def posted_by_owner(
    conn: Any, owner_type: str, owner_ids: Sequence[str], asset: str
) -> dict[str, int]:
    """Posted balance of ``asset`` per owner among ``owner_ids`` (owners without an account are
    absent). One statement for any number of owners."""
    return await repo.posted_by_owner(conn, owner_type, owner_ids, asset)


class Flow(msgspec.Struct, frozen=True, kw_only=True):
    """The transfers of one period with one shape: what moved, between which kinds of owner."""

    period: date  # the first day of the period, in the programme's calendar
    asset: str
    phase: str
    kind: str
    debit_type: str
    debit_system: str | None  # a system account's name: issuance, expiry, donations...
    credit_type: str
    credit_system: str | None
    reversal: bool
    amount: int
    released: int  # settlements: the holds they released
    transfers: int


async def flows_by_period(
    conn: Any, *, unit: Literal["month", "quarter", "year"], timezone: str, until: datetime
) -> list[Flow]:
    """Every transfer recorded before ``until``, summed per period (``unit`` of the calendar in
    ``timezone``) and shape, oldest first. One statement, set-wise over the whole ledger."""
    rows = await repo.flows_by_period(conn, unit, timezone, until)
    return [_flow(r) for r in rows]


async def flows_between(
    conn: Any,
    *,
    unit: Literal["day", "month", "quarter", "year"],
    timezone: str,
    since: datetime,
    until: datetime,
) -> list[Flow]:
    """:func:`flows_by_period` of the transfers recorded in [since, until) only."""
    rows = await repo.flows_between(conn, unit, timezone, since, until)
    return [_flow(r) for r in rows]


def _flow(r: Any) -> Flow:
    return Flow(
        period=r["period"],
        asset=r["asset"],
        phase=r["phase"],
        kind=r["kind"],
        debit_type=r["debit_type"],
        debit_system=r["debit_system"],
        credit_type=r["credit_type"],
        credit_system=r["credit_system"],
        reversal=r["reversal"],
        amount=int(r["amount"]),
        released=int(r["released"]),
        transfers=int(r["transfers"]),
    )
