"""Holds: reserve an amount, then post it (in full or in part) or void it, once."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import msgspec

from kit.db import Tx
from kit.errors import IdempotencyConflict
from points import engine
from points import repository as repo
from points.content import TransferContent
from points.engine import Write, is_issuance
from points.errors import (
    HoldAlreadySettled,
    HoldExpired,
    HoldNotFound,
    InvalidTransfer,
    PostExceedsHold,
)
from points.schemas import (
    AccountKey,
    Asset,
    Owner,
    Phase,
    PointsPolicy,
    Transfer,
    TransferRequest,
    utcnow,
)
from points.transfers import content_of


def _hold_of(
    request: TransferRequest, policy: PointsPolicy, timeout_s: int | None, now: datetime
) -> TransferContent:
    if request.amount <= 0:
        raise InvalidTransfer("amount must be positive")
    if is_issuance(request.debit) or request.debit == request.credit:
        raise InvalidTransfer("a hold needs a debit account other than issuance and the credit")
    engine.check_aware(request.occurred_at, "occurred_at")
    return msgspec.structs.replace(
        content_of(request),
        phase="pending",
        timeout_at=now + timedelta(seconds=timeout_s or policy.hold_timeout_s),
    )


async def place_hold(
    tx: Tx,
    request: TransferRequest,
    policy: PointsPolicy,
    *,
    timeout_s: int | None = None,
    now: datetime | None = None,
) -> Transfer:
    """Reserve ``request.amount`` on the debit account: available drops, posted does not.

    Refused with ``insufficient_funds`` by the database when available would go negative.
    """
    now = now or utcnow()
    hold = _hold_of(request, policy, timeout_s, now)
    placed = await repo.place_hold(tx.conn, hold, hold.leaf())
    if placed is not None:
        return hold.wire(*placed)
    # A first use of an account, or a replay: the general path (creates, compares).
    (done,) = await engine.apply(tx, [Write(hold)], policy, now, lock_credit=False)
    return done


async def lock_available(
    tx: Tx, owners: Sequence[Owner], asset: Asset = "POINT"
) -> dict[Owner, int]:
    """Lock the existing ``asset`` accounts of ``owners`` (in key order, the order every write
    path locks in) and answer what each has available (posted less held). An owner without an
    account is left out: nothing is available to them. For a caller that decides several holds
    itself before placing them with :func:`place_holds` in the same transaction."""
    keys = sorted({AccountKey(o.owner_type, o.owner_id, asset) for o in owners})
    found = await repo.lock_available(tx.conn, keys)
    return {k.owner: v for k, v in found.items()}


async def place_holds(
    tx: Tx,
    requests: Sequence[TransferRequest],
    policy: PointsPolicy,
    *,
    timeouts: Sequence[int | None],
    now: datetime | None = None,
) -> list[Transfer]:
    """:func:`place_hold` for each request (``timeouts[i]`` its ``timeout_s``), all or none,
    set-wise: one statement in the common case. Debit accounts shared with concurrent writers
    must be locked first (:func:`lock_available`): the holds then cannot deadlock, and a caller
    that checked what is available is never refused ``insufficient_funds``."""
    now = now or utcnow()
    holds = [_hold_of(r, policy, t, now) for r, t in zip(requests, timeouts, strict=True)]
    if not holds:
        return []
    placed = await repo.place_holds(tx.conn, holds, [h.leaf() for h in holds])
    if placed is not None:
        return [h.wire(*placed[h.idempotency_key]) for h in holds]
    return await engine.apply(tx, [Write(h) for h in holds], policy, now, lock_credit=False)


async def _settle(
    tx: Tx,
    hold_id: str,
    *,
    idempotency_key: str,
    phase: Phase,
    amount: int | None,
    reason_code: str | None,
    policy: PointsPolicy,
    now: datetime,
    allow_expired: bool,
) -> Transfer:
    row = await repo.transfer_by_id(tx.conn, engine.int_id(hold_id, HoldNotFound))
    if row is None or row.transfer.phase != "pending":
        raise HoldNotFound(f"no hold {hold_id!r}")
    hold = row.transfer
    held = hold.amount
    posted = held if amount is None else amount
    if phase == "post_pending":
        if posted <= 0:
            raise InvalidTransfer("the amount to post must be positive")
        if posted > held:
            raise PostExceedsHold(f"cannot post {posted} of a hold of {held}", extra={"held": held})
    settle = TransferContent(
        idempotency_key=idempotency_key,
        phase=phase,
        kind=hold.kind,
        reason_code=reason_code or hold.reason_code,
        asset=hold.asset,
        debit=hold.debit,
        credit=hold.credit,
        amount=posted if phase == "post_pending" else held,
        source_ref=hold.source_ref,
        region_code=hold.region_code,
        occurred_at=now,
        pending_id=int(hold.id),
    )
    # Lock first, then look: every change to this hold holds its debit account's lock.
    await engine.lock(tx, [settle.debit_key, settle.credit_key])
    existing = await repo.transfers_by_keys(tx.conn, [idempotency_key])
    if existing:
        original = existing[0].transfer
        if original.pending_id == hold.id and original.phase == phase:
            return original
        raise IdempotencyConflict(f"idempotency key {idempotency_key!r} was used differently")
    settled = await repo.settlement_of(tx.conn, int(hold.id))
    if settled is not None:
        raise HoldAlreadySettled(
            f"hold {hold.id} was already {settled.transfer.phase.replace('_pending', 'ed')}",
            extra={"settled_by": settled.transfer.id, "phase": settled.transfer.phase},
        )
    if not allow_expired and hold.timeout_at is not None and now >= hold.timeout_at:
        raise HoldExpired(f"hold {hold.id} timed out at {hold.timeout_at.isoformat()}")
    (done,) = await engine.apply(tx, [Write(settle, release=held)], policy, now)
    return done


async def post_hold(
    tx: Tx,
    hold_id: str,
    policy: PointsPolicy,
    *,
    idempotency_key: str,
    amount: int | None = None,
    now: datetime | None = None,
) -> Transfer:
    """Settle a hold, in full (``amount`` None) or in part; the rest is released. Once only."""
    return await _settle(
        tx,
        hold_id,
        idempotency_key=idempotency_key,
        phase="post_pending",
        amount=amount,
        reason_code=None,
        policy=policy,
        now=now or utcnow(),
        allow_expired=False,
    )


async def void_hold(
    tx: Tx,
    hold_id: str,
    policy: PointsPolicy,
    *,
    idempotency_key: str,
    reason_code: str = "hold_voided",
    now: datetime | None = None,
) -> Transfer:
    """Release a hold entirely. Once only; a voided hold can never be posted."""
    return await _settle(
        tx,
        hold_id,
        idempotency_key=idempotency_key,
        phase="void_pending",
        amount=None,
        reason_code=reason_code,
        policy=policy,
        now=now or utcnow(),
        allow_expired=True,
    )


async def void_timed_out_holds(
    tx: Tx, policy: PointsPolicy, *, now: datetime | None = None, limit: int = 1000
) -> int:
    """Void up to ``limit`` holds past their timeout, set-wise; returns how many were voided."""
    now = now or utcnow()
    candidates = await repo.timed_out_holds(tx.conn, now, limit)
    if not candidates:
        return 0
    holds = [TransferContent.of(c.transfer) for c in candidates]
    await engine.lock(tx, [h.debit_key for h in holds] + [h.credit_key for h in holds])
    ids = {c.transfer.id for c in candidates}
    # Re-read under the locks: a hold posted or voided meanwhile is left alone.
    fresh = [c for c in await repo.timed_out_holds(tx.conn, now, limit) if c.transfer.id in ids]
    writes = [
        Write(
            TransferContent(
                idempotency_key=f"hold-timeout:{c.transfer.id}",
                phase="void_pending",
                kind=c.transfer.kind,
                reason_code="hold_timed_out",
                asset=c.transfer.asset,
                debit=c.transfer.debit,
                credit=c.transfer.credit,
                amount=c.transfer.amount,
                source_ref=c.transfer.source_ref,
                region_code=c.transfer.region_code,
                occurred_at=c.transfer.timeout_at or now,
                pending_id=int(c.transfer.id),
            ),
            release=c.transfer.amount,
        )
        for c in fresh
    ]
    if writes:
        await engine.apply(tx, writes, policy, now)
    return len(writes)
