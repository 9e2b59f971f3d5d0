"""Reversals: compensating transfers, at most once per transfer (see docs/ledger.md)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
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
from points.schemas import RESIDENT_ASSETS, AccountKey, Owner, PointsPolicy, Transfer, utcnow


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
    source = ISSUANCE
    if original.kind == "issuance":
        resident = next(t.credit.owner_id for t in group if t.asset == "CO2E_G")
        source = next(t.debit for t in group if t.asset == "CO2E_G")
        keys += _issuance_keys([resident], [source])
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
                        credit=source,
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


async def reverse_issuances(
    tx: Tx,
    source_refs: Sequence[str],
    policy: PointsPolicy,
    *,
    reason_code: str,
    key_prefix: str,
    now: datetime | None = None,
) -> set[str]:
    """Reverse the issuances of many behaviour events at once (their grams and points, plus any
    point their grams completed through the carry, as :func:`reverse` does for one), in a
    constant number of statements; returns the source refs *not* reversed.

    A resident whose available points are fewer than the points to claw back from all of their
    listed events has none of them reversed and nothing moves for them (the ledger's policy for
    points already spent: refuse, docs/ledger.md); the others are reversed, all or nothing.
    Idempotency keys are ``<key_prefix>:<source ref>:<transfer id>`` (a retried transaction
    replays them). An event already reversed, or never issued, is refused (``AlreadyReversed``,
    ``TransferNotFound``): the caller's bookkeeping is wrong and the whole call fails.
    """
    if not source_refs:
        return set()
    now = now or utcnow()
    refs = sorted(set(source_refs))
    stored = await repo.issuance_transfers(
        tx.conn, [k for r in refs for k in (co2e_key(r), point_key(r))]
    )
    by_ref: dict[str, list[Transfer]] = {}
    for row in stored:
        by_ref.setdefault(row.transfer.source_ref or "", []).append(row.transfer)
    missing = [r for r in refs if not any(t.asset == "CO2E_G" for t in by_ref.get(r, []))]
    if missing:
        raise TransferNotFound(f"no issuance of {missing[0]!r}")
    if await repo.reversals_of(tx.conn, [int(t.id) for ts in by_ref.values() for t in ts]):
        raise AlreadyReversed(f"an issuance of {refs!r} was already reversed")
    resident_of = {
        r: next(t.credit.owner_id for t in ts if t.asset == "CO2E_G") for r, ts in by_ref.items()
    }
    # The clawback of a carry goes back to the shard the resident's first listed credit came
    # from: every account this call writes is locked in this one step.
    source_of = {r: next(t.debit for t in ts if t.asset == "CO2E_G") for r, ts in by_ref.items()}
    accounts = await engine.lock(tx, _issuance_keys(resident_of.values(), source_of.values()))

    writes: list[Write] = []
    carry: dict[AccountKey, int] = {}
    refused: set[str] = set()
    for resident in sorted(set(resident_of.values())):
        mine = [r for r in refs if resident_of[r] == resident]
        group = [t for r in mine for t in by_ref[r]]
        g_key = AccountKey("resident", resident, "CO2E_G")
        p_acct = accounts[AccountKey("resident", resident, "POINT")]
        grams = sum(t.amount for t in group if t.asset == "CO2E_G")
        points = sum(t.amount for t in group if t.asset == "POINT")
        new_carry = accounts[g_key].carry_g - grams + points * policy.grams_per_point
        extra = 0
        if new_carry < 0:
            extra = -(new_carry // policy.grams_per_point)  # ceil(-new_carry / rate)
            new_carry += extra * policy.grams_per_point
        if points + extra > p_acct.posted - p_acct.pending_debits:
            refused.update(mine)
            continue
        carry[g_key] = new_carry
        for r in mine:
            writes += [
                Write(
                    TransferContent(
                        idempotency_key=f"{key_prefix}:{r}:{t.id}",
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
                for t in by_ref[r]
            ]
        if extra:
            writes.append(
                Write(
                    TransferContent(
                        idempotency_key=f"{key_prefix}:{mine[0]}:carry",
                        phase="posted",
                        kind="carry_clawback",
                        reason_code=reason_code,
                        asset="POINT",
                        debit=Owner("resident", resident),
                        credit=source_of[mine[0]],
                        amount=extra,
                        source_ref=mine[0],
                        region_code=by_ref[mine[0]][0].region_code,
                        occurred_at=now,
                    )
                )
            )
    if writes:
        await engine.apply(tx, writes, policy, now, carry=carry)
    return refused


def _issuance_keys(residents: Iterable[str], sources: Iterable[Owner]) -> list[AccountKey]:
    """The accounts reversing residents' issuances writes: their grams and points, and both
    assets of every issuance shard the credits came from (a carry clawback credits the shard's
    points even when the credit itself earned none)."""
    owners = [Owner("resident", r) for r in set(residents)] + list(set(sources))
    return [AccountKey(o.owner_type, o.owner_id, a) for o in owners for a in RESIDENT_ASSETS]
