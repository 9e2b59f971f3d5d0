"""Factories and checks shared by the ledger tests."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from points.schemas import Issuance, Owner, PointsPolicy, TransferRequest

POLICY = PointsPolicy(grams_per_point=10, expiry_years=2, hold_timeout_s=900)
T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
REGION = "440305"


def resident() -> str:
    return str(uuid.uuid4())


def issuance(resident_id: str, grams: int, ref: str | None = None) -> Issuance:
    return Issuance(
        resident_id=resident_id,
        reduction_g=grams,
        source_ref=ref or f"evt-{uuid.uuid4()}",
        region_code=REGION,
        occurred_at=T0,
    )


def spend(
    resident_id: str, amount: int, key: str | None = None, to: str = "m1", asset: Any = "POINT"
) -> TransferRequest:
    return TransferRequest(
        idempotency_key=key or f"spend-{uuid.uuid4()}",
        debit=Owner("resident", resident_id),
        credit=Owner("merchant", to),
        asset=asset,
        amount=amount,
        kind="redemption",
        reason_code="reward",
        region_code=REGION,
        occurred_at=T0,
    )


async def invariants(conn: Any) -> None:
    """The ledger's invariants, checked straight on the tables."""
    sums = await conn.fetch("SELECT asset, sum(posted) AS s FROM ledger_accounts GROUP BY asset")
    assert all(r["s"] == 0 for r in sums), sums
    negative = await conn.fetchval(
        "SELECT count(*) FROM ledger_accounts WHERE flags & 1 = 0 "
        "AND (posted - pending_debits < 0 OR posted < 0)"
    )
    assert negative == 0
    mismatched = await conn.fetch(
        """
        SELECT a.id, a.posted, coalesce(c.s, 0) - coalesce(d.s, 0) AS derived
        FROM ledger_accounts a
        LEFT JOIN (SELECT credit_account_id AS id, sum(amount) AS s FROM ledger_transfers
                   WHERE phase IN ('posted', 'post_pending') GROUP BY 1) c ON c.id = a.id
        LEFT JOIN (SELECT debit_account_id AS id, sum(amount) AS s FROM ledger_transfers
                   WHERE phase IN ('posted', 'post_pending') GROUP BY 1) d ON d.id = a.id
        WHERE a.posted <> coalesce(c.s, 0) - coalesce(d.s, 0)
        """
    )
    assert not mismatched, mismatched
    lots = await conn.fetch(
        """
        SELECT a.id, a.posted, coalesce(sum(l.remaining), 0) AS lots
        FROM ledger_accounts a LEFT JOIN point_lots l ON l.account_id = a.id
        WHERE a.owner_type = 'resident' AND a.asset = 'POINT'
        GROUP BY a.id, a.posted HAVING a.posted <> coalesce(sum(l.remaining), 0)
        """
    )
    assert not lots, lots
