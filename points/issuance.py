"""Issuance: verified reductions credited as grams, and as points by the points policy."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from kit.db import Tx
from kit.errors import IdempotencyConflict
from points import engine
from points import repository as repo
from points.content import TransferContent
from points.engine import Write
from points.errors import InvalidTransfer
from points.schemas import (
    RESIDENT_ASSETS,
    AccountKey,
    Asset,
    Issuance,
    IssuanceResult,
    Owner,
    PointsPolicy,
    Transfer,
    utcnow,
)

ISSUANCE_REASON = "verified_reduction"


def co2e_key(source_ref: str) -> str:
    return f"issuance:co2e:{source_ref}"


def point_key(source_ref: str) -> str:
    return f"issuance:point:{source_ref}"


def _issued_differently(original: Transfer, _: TransferContent) -> IdempotencyConflict:
    return IdempotencyConflict(
        f"behaviour event {original.source_ref!r} was already issued with different content"
    )


def _credit(i: Issuance, source: Owner, asset: Asset, amount: int) -> Write:
    """The issuance of ``amount`` of ``asset`` for one event, from the batch's sub-account."""
    return Write(
        TransferContent(
            idempotency_key=(co2e_key if asset == "CO2E_G" else point_key)(i.source_ref),
            phase="posted",
            kind="issuance",
            reason_code=ISSUANCE_REASON,
            asset=asset,
            debit=source,
            credit=Owner("resident", i.resident_id),
            amount=amount,
            source_ref=i.source_ref,
            region_code=i.region_code,
            occurred_at=i.occurred_at,
        )
    )


async def issue_reductions(
    tx: Tx,
    items: Sequence[Issuance],
    policy: PointsPolicy,
    *,
    now: datetime | None = None,
) -> list[IssuanceResult]:
    """Credit verified reductions: grams to each resident's CO2E_G account, points by policy.

    Set-wise: a constant number of statements for the whole list. Idempotent per ``source_ref``
    (the behaviour event id): an event already issued returns its original result; the same
    event with other content is an :class:`IdempotencyConflict`. Grams that do not make a whole
    point carry over on the resident's carbon account and count towards the next issuance.

    The write engine's steps (``points.engine``) in two inserts into one batch: the grams
    first, then (once the replays are known and the carries read under the locks) the points,
    with every balance delta riding in the second statement.
    """
    if not items:
        return []
    now = now or utcnow()
    by_ref: dict[str, Issuance] = {}
    for item in items:
        if item.reduction_g <= 0:
            raise InvalidTransfer(f"reduction_g of {item.source_ref!r} must be positive")
        if not item.source_ref or not item.resident_id:
            raise InvalidTransfer("resident_id and source_ref are required")
        engine.check_aware(item.occurred_at, "occurred_at")
        seen = by_ref.get(item.source_ref)
        if seen is not None and seen != item:
            raise IdempotencyConflict(f"source_ref {item.source_ref!r} listed twice, differently")
        by_ref[item.source_ref] = item
    unique = list(by_ref.values())
    source = engine.issuance_source(tx)

    grams = engine.unique([_credit(i, source, "CO2E_G", i.reduction_g) for i in unique])
    keys: list[AccountKey] = [AccountKey("system", source.owner_id, a) for a in RESIDENT_ASSETS]
    for i in unique:
        keys.append(AccountKey("resident", i.resident_id, "CO2E_G"))
        keys.append(AccountKey("resident", i.resident_id, "POINT"))
    accounts = await engine.lock(tx, keys)
    lot_expiry = policy.expires_at(now)
    batch_id, inserted = await engine.insert(
        tx, None, engine.rows(grams.values(), accounts, lot_expiry)
    )

    results: dict[str, IssuanceResult] = {}
    replays = [k for k in grams if k not in inserted]
    if replays:
        refs = [grams[k][0].content.source_ref or "" for k in replays]
        stored = await repo.transfers_by_keys(tx.conn, replays + [point_key(r) for r in refs])
        points_rows = {r.transfer.idempotency_key: r.transfer for r in stored}
        originals = engine.compare_replays(
            {k: grams[k] for k in replays},
            (r for r in stored if r.transfer.idempotency_key in grams),
            _issued_differently,
        )
        for key, ref in zip(replays, refs, strict=True):
            if key not in originals:
                raise IdempotencyConflict(
                    f"behaviour event {ref!r} was already issued with different content"
                )
            points_row = points_rows.get(point_key(ref))
            results[ref] = IssuanceResult(
                ref, originals[key].amount, points_row.amount if points_row else 0
            )

    new: list[Write] = [w for k, (w, _) in grams.items() if k in inserted]
    carry: dict[AccountKey, int] = {}
    point_writes: list[Write] = []
    for i in unique:
        if i.source_ref in results:
            continue
        g_key = AccountKey("resident", i.resident_id, "CO2E_G")
        points, carry[g_key] = policy.convert(
            carry.get(g_key, accounts[g_key].carry_g), i.reduction_g
        )
        results[i.source_ref] = IssuanceResult(i.source_ref, i.reduction_g, points)
        if points:
            point_writes.append(_credit(i, source, "POINT", points))
    balance_deltas, _ = engine.deltas([*new, *point_writes], accounts, carry)
    if point_writes:
        _, done = await engine.insert(
            tx,
            batch_id,
            engine.rows(((w, w.content.leaf()) for w in point_writes), accounts, lot_expiry),
            balance_deltas,
        )
        if len(done) != len(point_writes):
            raise IdempotencyConflict("a points issuance key was already used")
    else:
        await engine.finish(tx, balance_deltas, {})
    return [results[i.source_ref] for i in items]
