"""The ledger's one write engine: lock, insert, compare replays, move balances, consume lots.

Every write path (``points.issuance``, ``transfers``, ``holds``, ``expiry``, ``reversals``) goes
through these steps, in this order, set-wise (a constant number of statements per call):

1. :func:`lock`: the accounts, upserted and locked in sorted key order (no deadlocks);
2. :func:`insert`: the transfers whose keys are new (``points.content`` gives their rows and
   hashes), with the lots of the POINT credits to residents;
3. :func:`compare_replays`: a key that existed must carry the same content, else
   :class:`IdempotencyConflict`;
4. :func:`deltas` → the one balance update (``points.repository``), on its own or riding in
   the last insert's statement; then the lots consumed by resident POINT debits.

:func:`apply` is the whole sequence for a list of writes known up front. Issuance runs the
same steps in two inserts (its points depend on the carries read under the locks); a hold on
existing accounts is the same write folded into one statement (``repository.place_hold``).
"""

from __future__ import annotations

import logging
import random
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime

import msgspec

from kit.db import Tx
from kit.errors import IdempotencyConflict
from points import repository as repo
from points.content import TransferContent
from points.errors import HoldNotFound, InvalidTransfer, TransferNotFound
from points.schemas import FLAG_ISSUANCE, AccountKey, Owner, PointsPolicy, Transfer

log = logging.getLogger("tanpuhui.points")

# Issuance accounts may go negative: they are where grams and points come from. They are split
# into sub-accounts so that concurrent batches do not queue on one hot row; each batch draws
# from one sub-account chosen at random, and their sum is the programme's total issuance.
ISSUANCE_SHARDS = 8


def issuance_owner(shard: int) -> Owner:
    return Owner("system", f"issuance.{shard}")


def is_issuance(owner: Owner) -> bool:
    return owner.owner_type == "system" and owner.owner_id.startswith("issuance.")


ISSUANCE = issuance_owner(0)  # the first shard (reversals return to the shard credited from)
EXPIRY = Owner("system", "expiry")  # expired points end here


class Write(msgspec.Struct, frozen=True):
    """A transfer to write, and the pending debits it releases on its debit account (the post
    or void of a hold releases what was held)."""

    content: TransferContent
    release: int = 0


def flags(key: AccountKey) -> int:
    return FLAG_ISSUANCE if is_issuance(key.owner) else 0


def has_lots(key: AccountKey) -> bool:
    return key.asset == "POINT" and key.owner_type == "resident"


def moves_posted(phase: str) -> bool:
    return phase in ("posted", "post_pending")


def check_aware(value: datetime, name: str) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidTransfer(f"{name} must carry a time zone")


def int_id(value: str, error: type[HoldNotFound] | type[TransferNotFound]) -> int:
    try:
        return int(value)
    except ValueError:
        raise error(f"no transfer {value!r}") from None


# A lock taken out of the global order fails instead of logging a warning (the tests'
# strict_lock_order fixture): two transactions doing the same can deadlock, and a test finds it
# every time, not one run in 20.
LOCK_ORDER_STRICT = False


class LockOrderViolation(RuntimeError):
    """An account locked after an account that sorts above it, in one transaction."""


_ANY_ORDER = object()  # in Tx.held: the transaction runs alone, its lock order is not checked


def accept_any_lock_order(tx: Tx) -> None:
    """Mark ``tx`` as a setup transaction that runs alone (the demo's data, written in one
    transaction so that it is all there or not at all): its many ledger calls lock accounts in
    whatever order they come, and nothing runs beside it to deadlock with."""
    tx.held.add(_ANY_ORDER)


def _check_order(tx: Tx, ordered: Sequence[AccountKey]) -> None:
    held = [k for k in tx.held if isinstance(k, AccountKey)]
    if not held or _ANY_ORDER in tx.held:
        return
    top = max(held)
    late = next((k for k in ordered if k < top and k not in tx.held), None)
    if late is None:
        return
    # owner types and assets only: account owners are residents (no personal data in logs)
    message = (
        f"ledger lock order: a {late.owner_type} {late.asset} account locked after a "
        f"{top.owner_type} {top.asset} account in the same transaction (docs/ledger.md, "
        '"Locks across more than one call in a transaction")'
    )
    if LOCK_ORDER_STRICT:
        raise LockOrderViolation(message)
    log.warning(message)


async def lock(tx: Tx, keys: Iterable[AccountKey]) -> dict[AccountKey, repo.AccountRow]:
    """Create the missing accounts of ``keys`` and lock them all, in the global (sorted) order;
    the transaction remembers them (``Tx.held``), and a later call of the same transaction that
    would lock an account sorting below one it holds is a lock-order violation."""
    ordered = sorted(set(keys))
    _check_order(tx, ordered)
    locked = await repo.lock_accounts(tx.conn, ordered, [flags(k) for k in ordered])
    tx.held.update(ordered)
    return locked


def issuance_source(tx: Tx) -> Owner:
    """The issuance sub-account a credit in ``tx`` draws from: one the transaction already
    holds (a reversal earlier in the same ingestion batch locked the shards of the credits it
    took back), else one at random. Locking a second shard after the first is how two batches
    that both reverse and issue would deadlock: each holding the shard the other then wants."""
    held = sorted(k.owner_id for k in tx.held if isinstance(k, AccountKey) and is_issuance(k.owner))
    return Owner("system", held[0]) if held else issuance_owner(random.randrange(ISSUANCE_SHARDS))


def unique(writes: Sequence[Write]) -> dict[str, tuple[Write, bytes]]:
    """The writes by key, each with its leaf hash; one key twice must be one content."""
    out: dict[str, tuple[Write, bytes]] = {}
    for w in writes:
        digest = w.content.leaf()
        seen = out.get(w.content.idempotency_key)
        if seen is not None and seen[1] != digest:
            raise IdempotencyConflict(
                f"idempotency key {w.content.idempotency_key!r} used twice with different content"
            )
        out[w.content.idempotency_key] = (w, digest)
    return out


def rows(
    writes: Iterable[tuple[Write, bytes]],
    accounts: Mapping[AccountKey, repo.AccountRow],
    lot_expiry: datetime,
) -> list[repo.NewTransfer]:
    """The rows of the writes between their locked accounts; posted credits to a resident's
    POINT account form a lot expiring at ``lot_expiry``."""
    return [
        repo.NewTransfer(
            w.content,
            accounts[w.content.debit_key].id,
            accounts[w.content.credit_key].id,
            digest,
            lot_expiry
            if moves_posted(w.content.phase) and has_lots(w.content.credit_key)
            else None,
        )
        for w, digest in writes
    ]


async def insert(
    tx: Tx,
    batch_id: int | None,
    new_rows: Sequence[repo.NewTransfer],
    deltas: repo.Deltas = repo.NO_DELTAS,
) -> tuple[int | None, dict[str, tuple[int, datetime]]]:
    return await repo.insert_transfers(tx.conn, batch_id, new_rows, deltas)


def _conflict(original: Transfer, _: TransferContent) -> IdempotencyConflict:
    return IdempotencyConflict(
        f"idempotency key {original.idempotency_key!r} was used for a different transfer",
        extra={"transfer_id": original.id},
    )


def compare_replays(
    wanted: Mapping[str, tuple[Write, bytes]],
    stored: Iterable[repo.TransferRow],
    conflict: Callable[[Transfer, TransferContent], IdempotencyConflict] = _conflict,
) -> dict[str, Transfer]:
    """The stored originals of replayed keys, once each is shown to carry the same content
    (else ``conflict(original, content)`` is raised).

    Not content, so not compared: the timeout a retried hold computes for itself (the
    original's stands) and the issuance sub-account a retried issuance drew from.
    """
    out: dict[str, Transfer] = {}
    for row in stored:
        original = row.transfer
        w, digest = wanted[original.idempotency_key]
        c = w.content
        if c.phase == "pending" and original.phase == "pending":
            c = msgspec.structs.replace(c, timeout_at=original.timeout_at)
        if is_issuance(c.debit) and is_issuance(original.debit) and c.debit != original.debit:
            c = msgspec.structs.replace(c, debit=original.debit)
        if c is not w.content:
            digest = c.leaf()
        if row.hash != digest:
            raise conflict(original, w.content)
        out[original.idempotency_key] = original
    return out


def deltas(
    writes: Iterable[Write],
    accounts: Mapping[AccountKey, repo.AccountRow],
    carry: Mapping[AccountKey, int] | None = None,
) -> tuple[repo.Deltas, dict[int, int]]:
    """The balance deltas of ``writes`` (all of them new) and the lots they consume, by
    account id; ``carry`` sets the carry of the given CO2E_G accounts."""
    d_posted: dict[int, int] = defaultdict(int)
    d_pending: dict[int, int] = defaultdict(int)
    consumed: dict[int, int] = defaultdict(int)
    for w in writes:
        c = w.content
        debit = accounts[c.debit_key]
        if c.phase == "pending":
            d_pending[debit.id] += c.amount
        elif w.release:
            d_pending[debit.id] -= w.release
        if moves_posted(c.phase):
            d_posted[debit.id] -= c.amount
            d_posted[accounts[c.credit_key].id] += c.amount
            if has_lots(debit.key):
                consumed[debit.id] += c.amount
    carry_by_id = {accounts[k].id: v for k, v in (carry or {}).items()}
    ids = sorted(set(d_posted) | set(d_pending) | set(carry_by_id))
    return (
        repo.Deltas(
            ids,
            [d_posted.get(i, 0) for i in ids],
            [d_pending.get(i, 0) for i in ids],
            [carry_by_id.get(i) for i in ids],
        ),
        dict(consumed),
    )


async def finish(tx: Tx, balance_deltas: repo.Deltas | None, consumed: Mapping[int, int]) -> None:
    """The balance update (unless it rode in the last insert: None) and the lots consumed."""
    if balance_deltas is not None:
        await repo.apply_balances(tx.conn, balance_deltas)
    lot_ids = sorted(consumed)
    await repo.consume_lots(tx.conn, lot_ids, [consumed[i] for i in lot_ids])


async def apply(
    tx: Tx,
    writes: Sequence[Write],
    policy: PointsPolicy,
    now: datetime,
    *,
    carry: Mapping[AccountKey, int] | None = None,
    lock_credit: bool = True,
) -> list[Transfer]:
    """Apply ``writes`` atomically; replays (same key, same content) return the original.

    ``lock_credit=False`` (holds) only makes sure the credit accounts exist: a hold changes
    nothing on them, so holds towards one merchant do not queue on the merchant's row.
    """
    by_key = unique(writes)
    keys = [w.content.debit_key for w in writes] + list(carry or ())
    credit_keys = [w.content.credit_key for w in writes]
    if lock_credit:
        keys += credit_keys
    accounts = await lock(tx, keys)
    unlocked = sorted({k for k in credit_keys if k not in accounts})
    if unlocked:
        accounts.update(await repo.ensure_accounts(tx.conn, unlocked, [flags(k) for k in unlocked]))
    _, inserted = await insert(tx, None, rows(by_key.values(), accounts, policy.expires_at(now)))
    missing = [k for k in by_key if k not in inserted]
    replayed = (
        compare_replays(by_key, await repo.transfers_by_keys(tx.conn, missing)) if missing else {}
    )
    balance_deltas, consumed = deltas(
        (w for k, (w, _) in by_key.items() if k in inserted), accounts, carry
    )
    await finish(tx, balance_deltas, consumed)
    out: list[Transfer] = []
    for w in writes:
        key = w.content.idempotency_key
        if key in inserted:
            out.append(w.content.wire(*inserted[key]))
        else:
            out.append(replayed[key])
    return out
