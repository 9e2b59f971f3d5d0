"""Expiry: unspent points past their lot's expiry date go to the system expiry account."""

from __future__ import annotations

import uuid
from datetime import datetime

from kit.db import Tx
from points import engine
from points import repository as repo
from points.content import TransferContent
from points.engine import EXPIRY, Write
from points.schemas import AccountKey, PointsPolicy, utcnow


async def expire_lots(
    tx: Tx,
    policy: PointsPolicy,
    *,
    region_code: str,
    now: datetime | None = None,
    limit: int = 1000,
) -> int:
    """Post expired, unspent points of up to ``limit`` residents to the system expiry account.

    Idempotent: what expired is consumed from its lots, so a second run finds nothing. Points
    under a pending hold are not expired yet (the hold was placed while they were valid); if
    the hold is voided, the next run expires them.
    """
    now = now or utcnow()
    owners = await repo.accounts_with_expired_lots(tx.conn, now, limit)
    if not owners:
        return 0
    keys = [AccountKey("resident", o, "POINT") for o in owners]
    accounts = await engine.lock(tx, [*keys, AccountKey("system", EXPIRY.owner_id, "POINT")])
    totals = await repo.expired_totals(tx.conn, [accounts[k].id for k in keys], now)
    writes: list[Write] = []
    for k in keys:
        acct = accounts[k]
        amount = min(totals.get(acct.id, 0), acct.posted - acct.pending_debits)
        if amount <= 0:
            continue
        writes.append(
            Write(
                TransferContent(
                    idempotency_key=f"expiry:{acct.id}:{uuid.uuid4().hex}",
                    phase="posted",
                    kind="expiry",
                    reason_code="lot_expired",
                    asset="POINT",
                    debit=k.owner,
                    credit=EXPIRY,
                    amount=amount,
                    source_ref=None,
                    region_code=region_code,
                    occurred_at=now,
                )
            )
        )
    if writes:
        await engine.apply(tx, writes, policy, now)
    return len(writes)
