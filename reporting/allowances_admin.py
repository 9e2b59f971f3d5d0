"""The government's acts on targets and emission rights (docs/allowances.md): set a region's
control target for a year, allocate it, close the period, approve or reject a transfer awaiting
approval. Each is one call of ``enterprises.allowances`` plus one audit entry
(reporting/audit.py) in the same transaction, with the state before and after; the reads
(periods, allocations, pending and settled transfers) need no entry."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from enterprises import allowances
from enterprises.allowances_schemas import (
    Allocation,
    AllocationIn,
    Closed,
    Offer,
    OfferPage,
    Period,
    PeriodRef,
    RejectIn,
    TargetIn,
)
from enterprises.settings import EnterprisesSettings
from kit.db import Tx
from points.schemas import PointsPolicy, utcnow
from reporting import audit


def _target(region_code: str, year: int) -> str:
    return f"allowance-period:{region_code}:{year}"


async def set_target(tx: Tx, data: TargetIn, *, actor: str, now: datetime | None = None) -> Period:
    before, after = await allowances.set_target(
        tx, data.region_code, data.year, data.target_g, now=now or utcnow()
    )
    await audit.record(
        tx,
        actor=actor,
        action="allowance.target",
        target=_target(data.region_code, data.year),
        before=before,
        after=after,
    )
    return after


async def allocate(
    tx: Tx,
    policy: PointsPolicy,
    settings: EnterprisesSettings,
    data: AllocationIn,
    *,
    actor: str,
    now: datetime | None = None,
) -> Allocation:
    done = await allowances.allocate(tx, policy, settings, data, actor=actor, now=now or utcnow())
    await audit.record(
        tx,
        actor=actor,
        action="allowance.allocate",
        target=_target(data.region_code, data.year),
        after={
            "allocation_id": done.id,
            "method": done.method,
            "parameters": done.parameters,
            "amount_g": done.amount_g,
            "by_industry": done.by_industry,
            "lines": [(str(x.enterprise_id), x.amount_g) for x in done.lines],
        },
    )
    return done


async def close(
    tx: Tx,
    policy: PointsPolicy,
    settings: EnterprisesSettings,
    data: PeriodRef,
    *,
    actor: str,
    now: datetime | None = None,
) -> Closed:
    done = await allowances.close(
        tx, policy, settings, data.region_code, data.year, now=now or utcnow()
    )
    await audit.record(
        tx,
        actor=actor,
        action="allowance.close",
        target=_target(data.region_code, data.year),
        before={"status": "open"},
        after=done,
    )
    return done


async def approve(
    tx: Tx,
    policy: PointsPolicy,
    settings: EnterprisesSettings,
    offer_id: uuid.UUID,
    *,
    actor: str,
    now: datetime | None = None,
) -> Offer:
    """Approve a pending emission-right transfer (legality checked again, then settled)."""
    done = await allowances.approve(
        tx, policy, settings, offer_id, actor=actor, now=now or utcnow()
    )
    await audit.record(
        tx,
        actor=actor,
        action="allowance.approve",
        target=f"allowance-offer:{offer_id}",
        before={"status": "pending_approval", "buyer_id": str(done.buyer_id)},
        after=done,
    )
    return done


async def reject(
    tx: Tx, offer_id: uuid.UUID, data: RejectIn, *, actor: str, now: datetime | None = None
) -> Offer:
    """Reject a pending emission-right transfer with a reason: the offer is open again."""
    done = await allowances.reject(tx, offer_id, data.reason, actor=actor, now=now or utcnow())
    await audit.record(
        tx,
        actor=actor,
        action="allowance.reject",
        target=f"allowance-offer:{offer_id}",
        before={
            "status": "pending_approval",
            "buyer_id": None if done.approval is None else str(done.approval.buyer_id),
        },
        after=done,
    )
    return done


async def pending(
    conn: Any, *, region_code: str | None = None, year: int | None = None
) -> list[Offer]:
    return await allowances.pending(conn, region_code=region_code, year=year)


async def periods(conn: Any, year: int | None = None) -> list[Period]:
    return await allowances.periods(conn, year)


async def allocations(conn: Any, region_code: str, year: int) -> list[Allocation]:
    return await allowances.allocations(conn, region_code, year)


async def transfers(
    conn: Any,
    *,
    region_code: str | None,
    year: int | None,
    cursor: str | None,
    limit: int,
) -> OfferPage:
    return await allowances.transfers(
        conn, region_code=region_code, year=year, cursor=cursor, limit=limit
    )
