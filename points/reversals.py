"""Reversals: compensating transfers, at most once per transfer (see docs/ledger.md)."""

from __future__ import annotations

from datetime import datetime

from kit.db import Tx
from kit.errors import IdempotencyConflict
from points import engine
from points import repository as repo
from points.content import TransferContent
from points.engine import ISSUANCE, Write, has_lots
from points.errors import (
    AlreadyReversed,
    NotReversible,
    PointsAlreadySpent,
    TransferNotFound,
)
from points.issuance import co2e_key, point_key
from points.schemas import ASSETS, AccountKey, Owner, PointsPolicy, Transfer, utcnow


async def reverse(
    tx: Tx,
    transfer_id: str,
    policy: PointsPolicy,
    *,
    idempotency_key: str,
    reason_code: str,
    now: datetime | None = None,
) -> list[Transfer]:
    """Compensate a posted transfer, at most once; returns the compensating transfers.

    Reversing an issuance reverses the whole issuance of that behaviour event: its grams *and*
    its points, together (a behaviour is never refunded while its points are kept). The points
    to claw back include any point the event's grams completed through the carry. If the
    resident has already spent them, the reversal is refused with ``points_already_spent`` and
    nothing moves (see docs/ledger.md, "Reversing spent points").
    """
    now = now or utcnow()
    row = await repo.transfer_by_id(tx.conn, engine.int_id(transfer_id, TransferNotFound))
    if row is None:
        raise TransferNotFound(f"no transfer {transfer_id!r}")
    original = row.transfer
    if original.phase not in ("posted", "post_pending") or original.kind in (
        "reversal",
        "carry_clawback",
    ):
        raise NotReversible(f"a {original.phase} {original.kind} transfer cannot be reversed")
    group = [original]
    if original.kind == "issuance" and original.source_ref is not None:
        event_keys = [co2e_key(original.source_ref), point_key(original.source_ref)]
        group = [r.transfer for r in await repo.issuance_transfers(tx.conn, event_keys)]
    writes = [
        Write(
            TransferContent(
                idempotency_key=f"{idempotency_key}:{t.id}",
                phase="posted",
                kind="reversal",
                reason_code=reason_code,
                asset=t.asset,
                debit=t.credit,
                credit=t.debit,
                amount=t.amount,
                source_ref=t.source_ref,
                region_code=t.region_code,
                occurred_at=now,
                reverses_id=int(t.id),
            )
        )
        for t in group
    ]
    keys = [w.content.debit_key for w in writes] + [w.content.credit_key for w in writes]
    resident: str | None = None
    if original.kind == "issuance":
        resident = next(t.credit.owner_id for t in group if t.asset == "CO2E_G")
        keys += [AccountKey("resident", resident, a) for a in ASSETS]
    accounts = await engine.lock(tx, keys)
    existing = await repo.transfers_by_keys(tx.conn, [w.content.idempotency_key for w in writes])
    if existing:
        if len(existing) == len(writes) and all(
            e.transfer.reverses_id is not None for e in existing
        ):
            by_key = {e.transfer.idempotency_key: e.transfer for e in existing}
            return [by_key[w.content.idempotency_key] for w in writes]
        raise IdempotencyConflict(f"idempotency key {idempotency_key!r} was used differently")
    if await repo.reversals_of(tx.conn, [int(t.id) for t in group]):
        raise AlreadyReversed(f"transfer {original.id} was already reversed")

    carry: dict[AccountKey, int] | None = None
    if resident is not None:
        g_key = AccountKey("resident", resident, "CO2E_G")
        p_key = AccountKey("resident", resident, "POINT")
        grams = sum(t.amount for t in group if t.asset == "CO2E_G")
        points = sum(t.amount for t in group if t.asset == "POINT")
        new_carry = accounts[g_key].carry_g - grams + points * policy.grams_per_point
        extra = 0
        if new_carry < 0:
            extra = -(new_carry // policy.grams_per_point)  # ceil(-new_carry / rate)
            new_carry += extra * policy.grams_per_point
        carry = {g_key: new_carry}
        p_acct = accounts[p_key]
        owed = points + extra
        if owed > p_acct.posted - p_acct.pending_debits:
            raise PointsAlreadySpent(
                f"reversing event {original.source_ref!r} needs {owed} points back but only "
                f"{p_acct.posted - p_acct.pending_debits} are available",
                extra={"points_owed": owed, "available": p_acct.posted - p_acct.pending_debits},
            )
        if extra:
            writes.append(
                Write(
                    TransferContent(
                        idempotency_key=f"{idempotency_key}:carry",
                        phase="posted",
                        kind="carry_clawback",
                        reason_code=reason_code,
                        asset="POINT",
                        debit=Owner("resident", resident),
                        credit=ISSUANCE,
                        amount=extra,
                        source_ref=original.source_ref,
                        region_code=original.region_code,
                        occurred_at=now,
                    )
                )
            )
    else:
        back = accounts[writes[0].content.debit_key]
        if has_lots(back.key) and original.amount > back.posted - back.pending_debits:
            raise PointsAlreadySpent(
                f"the {original.amount} points to take back were already spent",
                extra={"available": back.posted - back.pending_debits},
            )
    return await engine.apply(tx, writes, policy, now, carry=carry)
