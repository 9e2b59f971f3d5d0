"""Plain transfers: posted moves between two accounts, all of a list or none."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from kit.db import Tx
from points import engine
from points.content import TransferContent
from points.engine import Write, is_issuance
from points.errors import InvalidTransfer
from points.schemas import PointsPolicy, Transfer, TransferRequest, utcnow


def content_of(r: TransferRequest) -> TransferContent:
    """The content of a posted transfer of ``r`` (a hold replaces the phase and the timeout)."""
    return TransferContent(
        idempotency_key=r.idempotency_key,
        phase="posted",
        kind=r.kind,
        reason_code=r.reason_code,
        asset=r.asset,
        debit=r.debit,
        credit=r.credit,
        amount=r.amount,
        source_ref=r.source_ref,
        region_code=r.region_code,
        occurred_at=r.occurred_at,
    )


async def transfer(
    tx: Tx,
    requests: Sequence[TransferRequest],
    policy: PointsPolicy,
    *,
    now: datetime | None = None,
) -> list[Transfer]:
    """Post a set of transfers atomically (all or none), set-wise; replays return originals."""
    now = now or utcnow()
    writes: list[Write] = []
    for r in requests:
        if r.amount <= 0:
            raise InvalidTransfer("amount must be positive")
        if is_issuance(r.debit):
            raise InvalidTransfer("only issuance may debit the system issuance account")
        if r.debit == r.credit:
            raise InvalidTransfer("debit and credit must be different accounts")
        engine.check_aware(r.occurred_at, "occurred_at")
        writes.append(Write(content_of(r)))
    if not writes:
        return []
    return await engine.apply(tx, writes, policy, now)
