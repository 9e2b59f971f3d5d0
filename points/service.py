"""The ledger's rules: issuance, transfers, holds, reversals, lots and expiry, reads.

No SQL here (``points.repository``) and no HTTP. Write functions take a :class:`kit.db.Tx` and
never commit; reads take an asyncpg connection or pool. Every write goes through one set-wise
engine (:func:`_apply`): lock the accounts in sorted order, insert the transfers (new keys only),
compare replays by content hash, apply balance deltas in one statement, consume lots.
"""

from __future__ import annotations

import base64
import binascii
import random
import uuid
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import msgspec

from kit.db import Tx
from kit.errors import IdempotencyConflict, InvalidInput
from points import merkle
from points import repository as repo
from points.errors import (
    AlreadyReversed,
    HoldAlreadySettled,
    HoldExpired,
    HoldNotFound,
    InvalidTransfer,
    NotReversible,
    PointsAlreadySpent,
    PostExceedsHold,
    TransferNotFound,
)
from points.schemas import (
    ASSETS,
    FLAG_ISSUANCE,
    AccountKey,
    Asset,
    Balance,
    ExpiringLot,
    Issuance,
    IssuanceResult,
    Owner,
    Phase,
    PointsPolicy,
    StatementPage,
    Transfer,
    TransferRequest,
    utcnow,
)

__all__ = [
    "EXPIRY",
    "ISSUANCE",
    "balance_as_of",
    "balances",
    "expire_lots",
    "expiring",
    "get_transfer",
    "issue_reductions",
    "place_hold",
    "post_hold",
    "reverse",
    "statement",
    "transfer",
    "void_hold",
    "void_timed_out_holds",
]

# Issuance accounts may go negative: they are where grams and points come from. They are split
# into sub-accounts so that concurrent batches do not queue on one hot row; each batch draws
# from one sub-account chosen at random, and their sum is the programme's total issuance.
ISSUANCE_SHARDS = 8


def issuance_owner(shard: int) -> Owner:
    return Owner("system", f"issuance.{shard}")


def is_issuance(owner: Owner) -> bool:
    return owner.owner_type == "system" and owner.owner_id.startswith("issuance.")


ISSUANCE = issuance_owner(0)  # where clawed-back grams and points return
EXPIRY = Owner("system", "expiry")  # expired points end here

ISSUANCE_REASON = "verified_reduction"


class _Spec(msgspec.Struct, frozen=True, kw_only=True):
    idempotency_key: str
    phase: Phase
    kind: str
    reason_code: str
    asset: Asset
    debit: Owner
    credit: Owner
    amount: int
    source_ref: str | None
    region_code: str
    occurred_at: datetime
    pending_id: int | None = None
    reverses_id: int | None = None
    timeout_at: datetime | None = None
    release: int = 0  # pending debits released on the debit account (post/void of a hold)

    def key(self, owner: Owner) -> AccountKey:
        return AccountKey(owner.owner_type, owner.owner_id, self.asset)

    def row(
        self,
        debit_account_id: int,
        credit_account_id: int,
        digest: bytes,
        lot_expires_at: datetime | None,
    ) -> repo.NewTransfer:
        """The transfer row this spec writes, between the resolved accounts."""
        return repo.NewTransfer(
            idempotency_key=self.idempotency_key,
            phase=self.phase,
            kind=self.kind,
            reason_code=self.reason_code,
            asset=self.asset,
            debit_account_id=debit_account_id,
            credit_account_id=credit_account_id,
            amount=self.amount,
            source_ref=self.source_ref,
            region_code=self.region_code,
            occurred_at=self.occurred_at,
            pending_id=self.pending_id,
            reverses_id=self.reverses_id,
            timeout_at=self.timeout_at,
            hash=digest,
            lot_expires_at=lot_expires_at,
        )

    def leaf(self) -> bytes:
        return merkle.leaf_hash(
            idempotency_key=self.idempotency_key,
            phase=self.phase,
            kind=self.kind,
            reason_code=self.reason_code,
            asset=self.asset,
            debit_type=self.debit.owner_type,
            debit_id=self.debit.owner_id,
            credit_type=self.credit.owner_type,
            credit_id=self.credit.owner_id,
            amount=self.amount,
            source_ref=self.source_ref,
            region_code=self.region_code,
            occurred_at=self.occurred_at,
            pending_id=self.pending_id,
            reverses_id=self.reverses_id,
            timeout_at=self.timeout_at,
        )


def _flags(key: AccountKey) -> int:
    return FLAG_ISSUANCE if is_issuance(key.owner) else 0


def _has_lots(key: AccountKey) -> bool:
    return key.asset == "POINT" and key.owner_type == "resident"


def _moves_posted(phase: str) -> bool:
    return phase in ("posted", "post_pending")


async def _lock(tx: Tx, keys: Sequence[AccountKey]) -> dict[AccountKey, repo.AccountRow]:
    ordered = sorted(set(keys))
    return await repo.lock_accounts(tx.conn, ordered, [_flags(k) for k in ordered])


def _check_aware(value: datetime, name: str) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidTransfer(f"{name} must carry a time zone")


async def _apply(
    tx: Tx,
    specs: Sequence[_Spec],
    policy: PointsPolicy,
    now: datetime,
    *,
    carry: dict[AccountKey, int] | None = None,
    lock_credit: bool = True,
) -> list[Transfer]:
    """Apply ``specs`` atomically; replays (same key, same content) return the original.

    ``lock_credit=False`` (holds) only makes sure the credit accounts exist: a hold changes
    nothing on them, so holds towards one merchant do not queue on the merchant's row.
    """
    conn = tx.conn
    unique: dict[str, tuple[_Spec, bytes]] = {}
    for spec in specs:
        digest = spec.leaf()
        seen = unique.get(spec.idempotency_key)
        if seen is not None and seen[1] != digest:
            raise IdempotencyConflict(
                f"idempotency key {spec.idempotency_key!r} used twice with different content"
            )
        unique[spec.idempotency_key] = (spec, digest)
    keys = [s.key(s.debit) for s in specs] + list(carry or ())
    credit_keys = [s.key(s.credit) for s in specs]
    if lock_credit:
        keys += credit_keys
    accounts = await _lock(tx, keys)
    unlocked = sorted({k for k in credit_keys if k not in accounts})
    if unlocked:
        accounts.update(await repo.ensure_accounts(conn, unlocked, [_flags(k) for k in unlocked]))
    lot_expiry = policy.expires_at(now)
    rows = [
        s.row(
            accounts[s.key(s.debit)].id,
            accounts[s.key(s.credit)].id,
            digest,
            lot_expiry if _moves_posted(s.phase) and _has_lots(s.key(s.credit)) else None,
        )
        for s, digest in unique.values()
    ]
    _, inserted = await repo.insert_transfers(conn, None, rows)
    replayed: dict[str, Transfer] = {}
    missing = [k for k in unique if k not in inserted]
    if missing:
        for row in await repo.transfers_by_keys(conn, missing):
            spec, digest = unique[row.transfer.idempotency_key]
            if spec.phase == "pending" and row.transfer.phase == "pending":
                # A retried hold computes its own timeout; the original's stands.
                digest = msgspec.structs.replace(spec, timeout_at=row.transfer.timeout_at).leaf()
            if row.hash != digest:
                raise IdempotencyConflict(
                    f"idempotency key {row.transfer.idempotency_key!r} was used for "
                    "a different transfer",
                    extra={"transfer_id": row.transfer.id},
                )
            replayed[row.transfer.idempotency_key] = row.transfer
    d_posted: dict[int, int] = defaultdict(int)
    d_pending: dict[int, int] = defaultdict(int)
    consumed: dict[int, int] = defaultdict(int)
    for key, (s, _) in unique.items():
        if key not in inserted:
            continue
        debit = accounts[s.key(s.debit)]
        credit = accounts[s.key(s.credit)]
        if s.phase == "pending":
            d_pending[debit.id] += s.amount
        else:
            d_pending[debit.id] -= s.release
        if _moves_posted(s.phase):
            d_posted[debit.id] -= s.amount
            d_posted[credit.id] += s.amount
            if _has_lots(debit.key):
                consumed[debit.id] += s.amount
    carry_by_id = {accounts[k].id: v for k, v in (carry or {}).items()}
    ids = sorted(set(d_posted) | set(d_pending) | set(carry_by_id))
    await repo.apply_balances(
        conn,
        repo.Deltas(
            ids,
            [d_posted.get(i, 0) for i in ids],
            [d_pending.get(i, 0) for i in ids],
            [carry_by_id.get(i) for i in ids],
        ),
    )
    lot_ids = sorted(consumed)
    await repo.consume_lots(conn, lot_ids, [consumed[i] for i in lot_ids])
    out: list[Transfer] = []
    for s in specs:
        if s.idempotency_key in inserted:
            tid, recorded_at = inserted[s.idempotency_key]
            out.append(_transfer_of(s, tid, recorded_at))
        else:
            out.append(replayed[s.idempotency_key])
    return out


def _transfer_of(s: _Spec, tid: int, recorded_at: datetime) -> Transfer:
    return Transfer(
        id=str(tid),
        idempotency_key=s.idempotency_key,
        phase=s.phase,
        kind=s.kind,
        reason_code=s.reason_code,
        asset=s.asset,
        debit=s.debit,
        credit=s.credit,
        amount=s.amount,
        source_ref=s.source_ref,
        region_code=s.region_code,
        occurred_at=s.occurred_at,
        recorded_at=recorded_at,
        pending_id=None if s.pending_id is None else str(s.pending_id),
        reverses_id=None if s.reverses_id is None else str(s.reverses_id),
        timeout_at=s.timeout_at,
    )


# Issuance ------------------------------------------------------------------------------------


def _co2e_key(source_ref: str) -> str:
    return f"issuance:co2e:{source_ref}"


def _point_key(source_ref: str) -> str:
    return f"issuance:point:{source_ref}"


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
        _check_aware(item.occurred_at, "occurred_at")
        seen = by_ref.get(item.source_ref)
        if seen is not None and seen != item:
            raise IdempotencyConflict(f"source_ref {item.source_ref!r} listed twice, differently")
        by_ref[item.source_ref] = item
    unique = list(by_ref.values())
    conn = tx.conn
    source = issuance_owner(random.randrange(ISSUANCE_SHARDS))

    co2e = [
        _Spec(
            idempotency_key=_co2e_key(i.source_ref),
            phase="posted",
            kind="issuance",
            reason_code=ISSUANCE_REASON,
            asset="CO2E_G",
            debit=source,
            credit=Owner("resident", i.resident_id),
            amount=i.reduction_g,
            source_ref=i.source_ref,
            region_code=i.region_code,
            occurred_at=i.occurred_at,
        )
        for i in unique
    ]
    keys: list[AccountKey] = [AccountKey("system", source.owner_id, a) for a in ASSETS]
    for i in unique:
        keys.append(AccountKey("resident", i.resident_id, "CO2E_G"))
        keys.append(AccountKey("resident", i.resident_id, "POINT"))
    accounts = await _lock(tx, keys)
    iss_g = accounts[AccountKey("system", source.owner_id, "CO2E_G")]
    iss_p = accounts[AccountKey("system", source.owner_id, "POINT")]
    co2e_hashes = [s.leaf() for s in co2e]
    batch_id, inserted = await repo.insert_transfers(
        conn,
        None,
        [
            s.row(iss_g.id, accounts[s.key(s.credit)].id, h, None)
            for s, h in zip(co2e, co2e_hashes, strict=True)
        ],
    )

    results: dict[str, IssuanceResult] = {}
    replays = [
        (s, h) for s, h in zip(co2e, co2e_hashes, strict=True) if s.idempotency_key not in inserted
    ]
    if replays:
        wanted = [s.idempotency_key for s, _ in replays]
        wanted += [_point_key(s.source_ref or "") for s, _ in replays]
        existing = {
            r.transfer.idempotency_key: r for r in await repo.transfers_by_keys(conn, wanted)
        }
        for s, h in replays:
            ref = s.source_ref or ""
            original = existing.get(s.idempotency_key)
            if original is not None and original.transfer.debit != s.debit:
                # The original drew from another issuance sub-account; that is not content.
                h = msgspec.structs.replace(s, debit=original.transfer.debit).leaf()
            if original is None or original.hash != h:
                raise IdempotencyConflict(
                    f"behaviour event {ref!r} was already issued with different content"
                )
            points_row = existing.get(_point_key(ref))
            results[ref] = IssuanceResult(
                ref, s.amount, points_row.transfer.amount if points_row else 0
            )

    carry: dict[str, int] = {}
    d_posted: dict[int, int] = defaultdict(int)
    point_specs: list[_Spec] = []
    for i in unique:
        if i.source_ref in results:
            continue
        g_acct = accounts[AccountKey("resident", i.resident_id, "CO2E_G")]
        p_acct = accounts[AccountKey("resident", i.resident_id, "POINT")]
        points, carry[i.resident_id] = policy.convert(
            carry.get(i.resident_id, g_acct.carry_g), i.reduction_g
        )
        d_posted[g_acct.id] += i.reduction_g
        d_posted[iss_g.id] -= i.reduction_g
        results[i.source_ref] = IssuanceResult(i.source_ref, i.reduction_g, points)
        if points:
            d_posted[p_acct.id] += points
            d_posted[iss_p.id] -= points
            point_specs.append(
                _Spec(
                    idempotency_key=_point_key(i.source_ref),
                    phase="posted",
                    kind="issuance",
                    reason_code=ISSUANCE_REASON,
                    asset="POINT",
                    debit=source,
                    credit=Owner("resident", i.resident_id),
                    amount=points,
                    source_ref=i.source_ref,
                    region_code=i.region_code,
                    occurred_at=i.occurred_at,
                )
            )
    carry_ids = {accounts[AccountKey("resident", r, "CO2E_G")].id: c for r, c in carry.items()}
    ids = sorted(set(d_posted) | set(carry_ids))
    deltas = repo.Deltas(
        ids, [d_posted.get(i, 0) for i in ids], [0] * len(ids), [carry_ids.get(i) for i in ids]
    )
    if point_specs:
        expires = policy.expires_at(now)
        _, done = await repo.insert_transfers(
            conn,
            batch_id,
            [s.row(iss_p.id, accounts[s.key(s.credit)].id, s.leaf(), expires) for s in point_specs],
            deltas,
        )
        if len(done) != len(point_specs):
            raise IdempotencyConflict("a points issuance key was already used")
    else:
        await repo.apply_balances(conn, deltas)
    return [results[i.source_ref] for i in items]


# Plain transfers -----------------------------------------------------------------------------


async def transfer(
    tx: Tx,
    requests: Sequence[TransferRequest],
    policy: PointsPolicy,
    *,
    now: datetime | None = None,
) -> list[Transfer]:
    """Post a set of transfers atomically (all or none), set-wise; replays return originals."""
    now = now or utcnow()
    specs: list[_Spec] = []
    for r in requests:
        if r.amount <= 0:
            raise InvalidTransfer("amount must be positive")
        if is_issuance(r.debit):
            raise InvalidTransfer("only issuance may debit the system issuance account")
        if r.debit == r.credit:
            raise InvalidTransfer("debit and credit must be different accounts")
        _check_aware(r.occurred_at, "occurred_at")
        specs.append(
            _Spec(
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
        )
    if not specs:
        return []
    return await _apply(tx, specs, policy, now)


# Holds ---------------------------------------------------------------------------------------


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
    if request.amount <= 0:
        raise InvalidTransfer("amount must be positive")
    if is_issuance(request.debit) or request.debit == request.credit:
        raise InvalidTransfer("a hold needs a debit account other than issuance and the credit")
    _check_aware(request.occurred_at, "occurred_at")
    spec = _Spec(
        idempotency_key=request.idempotency_key,
        phase="pending",
        kind=request.kind,
        reason_code=request.reason_code,
        asset=request.asset,
        debit=request.debit,
        credit=request.credit,
        amount=request.amount,
        source_ref=request.source_ref,
        region_code=request.region_code,
        occurred_at=request.occurred_at,
        timeout_at=now + timedelta(seconds=timeout_s or policy.hold_timeout_s),
    )
    assert spec.timeout_at is not None
    placed = await repo.place_hold(
        tx.conn,
        spec.key(spec.debit),
        spec.key(spec.credit),
        idempotency_key=spec.idempotency_key,
        kind=spec.kind,
        reason_code=spec.reason_code,
        amount=spec.amount,
        source_ref=spec.source_ref,
        region_code=spec.region_code,
        occurred_at=spec.occurred_at,
        timeout_at=spec.timeout_at,
        hash=spec.leaf(),
    )
    if placed is not None:
        return _transfer_of(spec, *placed)
    # A first use of an account, or a replay: the general path (creates, compares).
    (hold,) = await _apply(tx, [spec], policy, now, lock_credit=False)
    return hold


def _int_id(value: str, error: type[HoldNotFound] | type[TransferNotFound]) -> int:
    try:
        return int(value)
    except ValueError:
        raise error(f"no transfer {value!r}") from None


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
    row = await repo.transfer_by_id(tx.conn, _int_id(hold_id, HoldNotFound))
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
    spec = _Spec(
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
        release=held,
    )
    # Lock first, then look: every change to this hold holds its debit account's lock.
    await _lock(tx, [spec.key(hold.debit), spec.key(hold.credit)])
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
    (done,) = await _apply(tx, [spec], policy, now)
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
    keys = [
        AccountKey(c.transfer.debit.owner_type, c.transfer.debit.owner_id, c.transfer.asset)
        for c in candidates
    ]
    keys += [
        AccountKey(c.transfer.credit.owner_type, c.transfer.credit.owner_id, c.transfer.asset)
        for c in candidates
    ]
    await _lock(tx, keys)
    ids = {c.transfer.id for c in candidates}
    # Re-read under the locks: a hold posted or voided meanwhile is left alone.
    fresh = [c for c in await repo.timed_out_holds(tx.conn, now, limit) if c.transfer.id in ids]
    specs = [
        _Spec(
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
            release=c.transfer.amount,
        )
        for c in fresh
    ]
    if specs:
        await _apply(tx, specs, policy, now)
    return len(specs)


# Expiry --------------------------------------------------------------------------------------


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
    accounts = await _lock(tx, [*keys, AccountKey("system", EXPIRY.owner_id, "POINT")])
    totals = await repo.expired_totals(tx.conn, [accounts[k].id for k in keys], now)
    specs: list[_Spec] = []
    for k in keys:
        acct = accounts[k]
        amount = min(totals.get(acct.id, 0), acct.posted - acct.pending_debits)
        if amount <= 0:
            continue
        specs.append(
            _Spec(
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
    if specs:
        await _apply(tx, specs, policy, now)
    return len(specs)


# Reversals -----------------------------------------------------------------------------------


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
    row = await repo.transfer_by_id(tx.conn, _int_id(transfer_id, TransferNotFound))
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
        event_keys = [_co2e_key(original.source_ref), _point_key(original.source_ref)]
        group = [r.transfer for r in await repo.issuance_transfers(tx.conn, event_keys)]
    specs = [
        _Spec(
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
        for t in group
    ]
    keys = [s.key(s.debit) for s in specs] + [s.key(s.credit) for s in specs]
    resident: str | None = None
    if original.kind == "issuance":
        resident = next(t.credit.owner_id for t in group if t.asset == "CO2E_G")
        keys += [AccountKey("resident", resident, a) for a in ASSETS]
    accounts = await _lock(tx, keys)
    existing = await repo.transfers_by_keys(tx.conn, [s.idempotency_key for s in specs])
    if existing:
        if len(existing) == len(specs) and all(
            e.transfer.reverses_id is not None for e in existing
        ):
            by_key = {e.transfer.idempotency_key: e.transfer for e in existing}
            return [by_key[s.idempotency_key] for s in specs]
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
            specs.append(
                _Spec(
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
    else:
        back = accounts[specs[0].key(specs[0].debit)]
        if _has_lots(back.key) and original.amount > back.posted - back.pending_debits:
            raise PointsAlreadySpent(
                f"the {original.amount} points to take back were already spent",
                extra={"available": back.posted - back.pending_debits},
            )
    return await _apply(tx, specs, policy, now, carry=carry)


# Reads ---------------------------------------------------------------------------------------


async def balances(conn: Any, owner_type: str, owner_id: str) -> list[Balance]:
    """Posted, pending (held) and available balance of each asset (zeros when none yet)."""
    found = {b.asset: b for b in await repo.balances(conn, owner_type, owner_id)}
    return [found.get(a, Balance(a, 0, 0, 0)) for a in ASSETS]


async def balance_as_of(
    conn: Any, owner_type: str, owner_id: str, asset: Asset, at: datetime
) -> Balance:
    """The balance as it was recorded at ``at`` (re-derived from the transfers)."""
    _check_aware(at, "at")
    account = await repo.account_id(conn, owner_type, owner_id, asset)
    if account is None:
        return Balance(asset, 0, 0, 0)
    posted, pending = await repo.balance_as_of(conn, account, at)
    return Balance(asset, posted, pending, posted - pending)


class _Cursor(msgspec.Struct, frozen=True):
    b: int  # the statement continues with transfer ids below this one


_cursor_decoder = msgspec.json.Decoder(_Cursor)
_MAX_ID = 2**63 - 1


def _decode_cursor(cursor: str | None) -> int:
    if cursor is None:
        return _MAX_ID
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        return _cursor_decoder.decode(raw).b
    except (binascii.Error, msgspec.DecodeError, ValueError):
        raise InvalidInput(
            "the cursor is not one this API gave out", code="cursor_invalid"
        ) from None


def _encode_cursor(before: int) -> str:
    return base64.urlsafe_b64encode(msgspec.json.encode(_Cursor(before))).decode().rstrip("=")


async def statement(
    conn: Any,
    owner_type: str,
    owner_id: str,
    asset: Asset,
    *,
    cursor: str | None,
    limit: int,
) -> StatementPage:
    """Entries of one account, newest first; ``next_cursor`` continues (None at the end)."""
    limit = max(1, min(limit, 500))
    before = _decode_cursor(cursor)
    account = await repo.account_id(conn, owner_type, owner_id, asset)
    if account is None:
        return StatementPage([], None)
    entries = await repo.statement(conn, account, before, limit + 1)
    more = len(entries) > limit
    entries = entries[:limit]
    return StatementPage(
        entries, _encode_cursor(int(entries[-1].transfer_id)) if more and entries else None
    )


async def expiring(
    conn: Any,
    owner_type: str,
    owner_id: str,
    *,
    within_days: int,
    now: datetime | None = None,
) -> list[ExpiringLot]:
    """Unspent points expiring within ``within_days``, by expiry date (nearest first)."""
    now = now or utcnow()
    account = await repo.account_id(conn, owner_type, owner_id, "POINT")
    if account is None:
        return []
    return await repo.expiring_lots(conn, account, now + timedelta(days=within_days))


async def get_transfer(conn: Any, transfer_id: str) -> Transfer:
    row = await repo.transfer_by_id(conn, _int_id(transfer_id, TransferNotFound))
    if row is None:
        raise TransferNotFound(f"no transfer {transfer_id!r}")
    return row.transfer
