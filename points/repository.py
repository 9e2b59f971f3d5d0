"""All of the ledger's SQL: explicit columns, ``$n`` parameters, set-wise statements.

Every write path runs a constant number of statements whatever the batch size: arrays go in
through ``unnest``. Accounts are upserted *and locked* in one statement, in the order of their
sorted keys (``AccountKey`` order), so two batches touching the same accounts always lock them in
the same order and cannot deadlock.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg
import msgspec

from points.content import ROW_COLUMNS, TransferContent
from points.errors import (
    AlreadyReversed,
    HoldAlreadySettled,
    InsufficientFunds,
)
from points.schemas import (
    AccountKey,
    Balance,
    ExpiringLot,
    Owner,
    StatementEntry,
    Transfer,
)


class AccountRow(msgspec.Struct, frozen=True):
    id: int
    key: AccountKey
    flags: int
    posted: int
    pending_debits: int
    carry_g: int


class NewTransfer(msgspec.Struct, frozen=True):
    """A transfer row ready to insert: its content, between resolved accounts, and its hash."""

    content: TransferContent
    debit_account_id: int
    credit_account_id: int
    hash: bytes  # content.leaf(), computed once by the caller
    lot_expires_at: datetime | None  # set: the credit forms a lot expiring then


def _map_errors(exc: asyncpg.PostgresError) -> Exception:
    constraint: str | None = getattr(exc, "constraint_name", None)
    if isinstance(exc, asyncpg.CheckViolationError) and constraint == (
        "ledger_accounts_not_overdrawn"
    ):
        return InsufficientFunds("the debit would exceed the account's available balance")
    if isinstance(exc, asyncpg.UniqueViolationError):
        if constraint == "ledger_transfers_pending_id_key":
            return HoldAlreadySettled("the hold was already posted or voided")
        if constraint == "ledger_transfers_reverses_id_key":
            return AlreadyReversed("the transfer was already reversed")
    error: Exception = exc
    return error


# Creates the missing accounts and locks the existing ones, in the order given (sorted keys).
# ``WHERE false``: an existing row is locked (FOR UPDATE strength) but not rewritten, so locking
# costs no new row version; only the created rows come back, the others are read next.
_LOCK_ACCOUNTS = """
INSERT INTO ledger_accounts (owner_type, owner_id, asset, flags)
SELECT u.owner_type, u.owner_id, u.asset, u.flags
FROM unnest($1::text[], $2::text[], $3::text[], $4::int[])
     WITH ORDINALITY AS u(owner_type, owner_id, asset, flags, ord)
ORDER BY u.ord
ON CONFLICT (owner_type, owner_id, asset) DO UPDATE SET flags = ledger_accounts.flags WHERE false
RETURNING id, owner_type, owner_id, asset, flags, posted, pending_debits, carry_g
"""

# Run after _LOCK_ACCOUNTS in the same transaction: a new statement (read committed), so it
# sees the latest committed version of every row this transaction now holds locked.
_READ_ACCOUNTS = """
SELECT a.id, a.owner_type, a.owner_id, a.asset, a.flags, a.posted, a.pending_debits, a.carry_g
FROM unnest($1::text[], $2::text[], $3::text[]) AS u(owner_type, owner_id, asset)
JOIN ledger_accounts a USING (owner_type, owner_id, asset)
"""


def _account_rows(rows: Any, out: dict[AccountKey, AccountRow]) -> None:
    for r in rows:
        key = AccountKey(r["owner_type"], r["owner_id"], r["asset"])
        out[key] = AccountRow(
            r["id"], key, r["flags"], r["posted"], r["pending_debits"], r["carry_g"]
        )


async def lock_accounts(
    conn: Any, keys: Sequence[AccountKey], flags: Sequence[int]
) -> dict[AccountKey, AccountRow]:
    """Create missing accounts and lock all of them, in the given (sorted, distinct) order."""
    out: dict[AccountKey, AccountRow] = {}
    _account_rows(
        await conn.fetch(
            _LOCK_ACCOUNTS,
            [k.owner_type for k in keys],
            [k.owner_id for k in keys],
            [k.asset for k in keys],
            list(flags),
        ),
        out,
    )
    rest = [k for k in keys if k not in out]  # sent even when empty: a constant statement count
    _account_rows(
        await conn.fetch(
            _READ_ACCOUNTS,
            [k.owner_type for k in rest],
            [k.owner_id for k in rest],
            [k.asset for k in rest],
        ),
        out,
    )
    return out


_ENSURE_ACCOUNTS = """
WITH input AS (
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::int[])
        AS u(owner_type, owner_id, asset, flags)
),
ins AS (
    INSERT INTO ledger_accounts (owner_type, owner_id, asset, flags)
    SELECT owner_type, owner_id, asset, flags FROM input
    ON CONFLICT (owner_type, owner_id, asset) DO NOTHING
    RETURNING id, owner_type, owner_id, asset, flags, posted, pending_debits, carry_g
)
SELECT id, owner_type, owner_id, asset, flags, posted, pending_debits, carry_g FROM ins
UNION ALL
SELECT a.id, a.owner_type, a.owner_id, a.asset, a.flags, a.posted, a.pending_debits, a.carry_g
FROM ledger_accounts a JOIN input i USING (owner_type, owner_id, asset)
"""


async def ensure_accounts(
    conn: Any, keys: Sequence[AccountKey], flags: Sequence[int]
) -> dict[AccountKey, AccountRow]:
    """Create missing accounts *without* locking existing ones (their balances are not read).

    An account created concurrently by another transaction is invisible to this statement's
    snapshot until that transaction commits; the statement is then simply run again.
    """
    out: dict[AccountKey, AccountRow] = {}
    for _ in range(5):
        missing = [(k, f) for k, f in zip(keys, flags, strict=True) if k not in out]
        if not missing:
            break
        rows = await conn.fetch(
            _ENSURE_ACCOUNTS,
            [k.owner_type for k, _ in missing],
            [k.owner_id for k, _ in missing],
            [k.asset for k, _ in missing],
            [f for _, f in missing],
        )
        for r in rows:
            key = AccountKey(r["owner_type"], r["owner_id"], r["asset"])
            out[key] = AccountRow(
                r["id"], key, r["flags"], r["posted"], r["pending_debits"], r["carry_g"]
            )
    return out


# The one balance update of every write path: ``{source}`` yields (id, d_posted, d_pending,
# carry_g) per account (carry_g NULL: unchanged). Run standalone (_APPLY_BALANCES), or as the
# last CTE of the statement that inserts the transfers (_INSERT_TRANSFERS, _PLACE_HOLDS).
_UPDATE_BALANCES = """
UPDATE ledger_accounts a
SET posted = a.posted + u.d_posted,
    pending_debits = a.pending_debits + u.d_pending,
    carry_g = coalesce(u.carry_g, a.carry_g)
FROM {source} AS u(id, d_posted, d_pending, carry_g)
WHERE a.id = u.id
"""


def _update_balances(source: str) -> str:
    return _UPDATE_BALANCES.format(source=source).strip()


_DELTAS_PARAMS = "unnest({}::bigint[], {}::bigint[], {}::bigint[], {}::bigint[])"


class Deltas(msgspec.Struct, frozen=True):
    """Balance changes, one entry per account id (sorted): posted, pending debits, carry."""

    ids: list[int]
    posted: list[int]
    pending: list[int]
    carry_g: list[int | None]  # None: unchanged


NO_DELTAS = Deltas([], [], [], [])

# The SQL type of each stored content column (points.content.ROW_COLUMNS), then the hash and
# the lot expiry: the unnest arrays of _INSERT_TRANSFERS, in this order from $2.
_ROW_TYPES = {
    "idempotency_key": "text",
    "phase": "text",
    "kind": "text",
    "reason_code": "text",
    "asset": "text",
    "debit_account_id": "bigint",
    "credit_account_id": "bigint",
    "amount": "bigint",
    "source_ref": "text",
    "region_code": "text",
    "occurred_at": "timestamptz",
    "pending_id": "bigint",
    "reverses_id": "bigint",
    "timeout_at": "timestamptz",
}
assert tuple(_ROW_TYPES) == ROW_COLUMNS, "every content column has its type, in row order"
_INPUT_COLUMNS = (*ROW_COLUMNS, "hash", "lot_expires_at")
_INPUT_TYPES = (*_ROW_TYPES.values(), "bytea", "timestamptz")
_STORED = ", ".join((*ROW_COLUMNS, "hash"))
_N_INPUT = len(_INPUT_COLUMNS)
_DELTA_ARGS = [f"${i}" for i in range(_N_INPUT + 2, _N_INPUT + 6)]  # after batch id and input

# One statement: the batch row (when $1 is NULL), the transfers whose keys are new, the lots of
# the POINT credits among them, and (when given) the balance deltas. Lock order is not at stake:
# every account touched here was locked by _LOCK_ACCOUNTS first.
_INSERT_TRANSFERS = f"""
WITH input AS (
    SELECT * FROM unnest(
        {", ".join(f"${i}::{t}[]" for i, t in enumerate(_INPUT_TYPES, start=2))}
    ) WITH ORDINALITY AS u({", ".join(_INPUT_COLUMNS)}, ord)
),
b AS (
    INSERT INTO ledger_batches (created_at) SELECT now() WHERE $1::bigint IS NULL RETURNING id
),
t AS (
    INSERT INTO ledger_transfers (batch_id, {_STORED})
    SELECT coalesce($1, (SELECT id FROM b)), {_STORED}
    FROM input ORDER BY ord
    ON CONFLICT (idempotency_key) DO NOTHING
    RETURNING id, batch_id, idempotency_key, credit_account_id, amount, recorded_at
),
lots AS (
    INSERT INTO point_lots (account_id, transfer_id, amount, remaining, earned_at, expires_at)
    SELECT t.credit_account_id, t.id, t.amount, t.amount, t.recorded_at, i.lot_expires_at
    FROM t JOIN input i ON i.idempotency_key = t.idempotency_key
    WHERE i.lot_expires_at IS NOT NULL
),
bal AS (
    {_update_balances(_DELTAS_PARAMS.format(*_DELTA_ARGS))}
)
SELECT id, batch_id, idempotency_key, recorded_at FROM t
"""


async def insert_transfers(
    conn: Any, batch_id: int | None, rows: Sequence[NewTransfer], deltas: Deltas = NO_DELTAS
) -> tuple[int | None, dict[str, tuple[int, datetime]]]:
    """Insert the transfers whose keys are new (and their lots), and apply ``deltas``.

    ``batch_id`` None creates the batch in the same statement. Returns the batch id (None when
    nothing was inserted into a new batch) and {key: (id, recorded_at)} of the inserted rows.
    """
    values = [
        (*r.content.row(r.debit_account_id, r.credit_account_id), r.hash, r.lot_expires_at)
        for r in rows
    ]
    try:
        columns: list[Any] = (
            [list(c) for c in zip(*values, strict=True)] if values else [[]] * _N_INPUT
        )
        result = await conn.fetch(
            _INSERT_TRANSFERS,
            batch_id,
            *columns,
            deltas.ids,
            deltas.posted,
            deltas.pending,
            deltas.carry_g,
        )
    except asyncpg.PostgresError as exc:
        raise _map_errors(exc) from exc
    if result:
        batch_id = result[0]["batch_id"]
    return batch_id, {r["idempotency_key"]: (r["id"], r["recorded_at"]) for r in result}


_APPLY_BALANCES = _update_balances(_DELTAS_PARAMS.format("$1", "$2", "$3", "$4"))


async def apply_balances(conn: Any, deltas: Deltas) -> None:
    if not deltas.ids:
        return
    try:
        await conn.execute(
            _APPLY_BALANCES, deltas.ids, deltas.posted, deltas.pending, deltas.carry_g
        )
    except asyncpg.PostgresError as exc:
        raise _map_errors(exc) from exc


# Holds in one statement (the common case: every account exists, every key is new). A debit
# account is locked by the UPDATE itself, the only row lock a hold takes, so a single hold cannot
# deadlock; a caller placing several (``points.holds.place_holds``) has locked their debit
# accounts in key order first (``lock_available``). The CHECK constraint refuses an overdraft.
# Nothing is written when an account is missing or a key exists: the caller then takes the
# general path (a key given twice inserts once and also sends the caller there).
_PLACE_HOLDS = f"""
WITH input AS (
    SELECT * FROM unnest(
        $1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
        $8::text[], $9::bigint[], $10::text[], $11::text[], $12::timestamptz[],
        $13::timestamptz[], $14::bytea[]
    ) WITH ORDINALITY AS u(debit_type, debit_id, credit_type, credit_id, asset, idempotency_key,
                           kind, reason_code, amount, source_ref, region_code, occurred_at,
                           timeout_at, hash, ord)
),
j AS (
    SELECT i.*, d.id AS debit_account_id, c.id AS credit_account_id FROM input i
    JOIN ledger_accounts d
        ON d.owner_type = i.debit_type AND d.owner_id = i.debit_id AND d.asset = i.asset
    JOIN ledger_accounts c
        ON c.owner_type = i.credit_type AND c.owner_id = i.credit_id AND c.asset = i.asset
),
fresh AS (
    SELECT j.* FROM j
    WHERE (SELECT count(*) FROM j) = (SELECT count(*) FROM input)
      AND NOT EXISTS (SELECT 1 FROM ledger_transfers t JOIN input i USING (idempotency_key))
),
b AS (
    INSERT INTO ledger_batches (created_at) SELECT now() WHERE EXISTS (SELECT 1 FROM fresh)
    RETURNING id
),
t AS (
    INSERT INTO ledger_transfers (
        batch_id, idempotency_key, phase, kind, reason_code, asset, debit_account_id,
        credit_account_id, amount, source_ref, region_code, occurred_at, timeout_at, hash)
    SELECT b.id, f.idempotency_key, 'pending', f.kind, f.reason_code, f.asset,
        f.debit_account_id, f.credit_account_id, f.amount, f.source_ref, f.region_code,
        f.occurred_at, f.timeout_at, f.hash
    FROM b, fresh f ORDER BY f.ord
    ON CONFLICT (idempotency_key) DO NOTHING
    RETURNING id, idempotency_key, debit_account_id, amount, recorded_at
),
bal AS (
    {
    _update_balances(
        "(SELECT debit_account_id, 0::bigint, sum(amount)::bigint, NULL::bigint FROM t"
        " GROUP BY debit_account_id)"
    )
}
)
SELECT idempotency_key, id, recorded_at FROM t
"""


async def place_holds(
    conn: Any, holds: Sequence[TransferContent], hashes: Sequence[bytes]
) -> dict[str, tuple[int, datetime]] | None:
    """Place holds in one statement: {key: (id, recorded_at)}; None when the general path must
    do it (see above)."""
    try:
        rows = await conn.fetch(
            _PLACE_HOLDS,
            [h.debit.owner_type for h in holds],
            [h.debit.owner_id for h in holds],
            [h.credit.owner_type for h in holds],
            [h.credit.owner_id for h in holds],
            [h.asset for h in holds],
            [h.idempotency_key for h in holds],
            [h.kind for h in holds],
            [h.reason_code for h in holds],
            [h.amount for h in holds],
            [h.source_ref for h in holds],
            [h.region_code for h in holds],
            [h.occurred_at for h in holds],
            [h.timeout_at for h in holds],
            list(hashes),
        )
    except asyncpg.PostgresError as exc:
        raise _map_errors(exc) from exc
    if len(rows) != len(holds):
        return None
    return {r["idempotency_key"]: (r["id"], r["recorded_at"]) for r in rows}


async def place_hold(conn: Any, hold: TransferContent, hash: bytes) -> tuple[int, datetime] | None:
    """One hold in one statement (``place_holds`` of one); None: the general path must do it."""
    placed = await place_holds(conn, [hold], [hash])
    return None if placed is None else placed[hold.idempotency_key]


# Locks the existing accounts given, in the order given (sorted keys: the order of every write
# path), and reads what each has available; a missing account is simply not answered.
_LOCK_AVAILABLE = """
SELECT a.owner_type, a.owner_id, a.asset, a.posted - a.pending_debits AS available
FROM unnest($1::text[], $2::text[], $3::text[])
     WITH ORDINALITY AS u(owner_type, owner_id, asset, ord)
JOIN ledger_accounts a USING (owner_type, owner_id, asset)
ORDER BY u.ord
FOR UPDATE OF a
"""


async def lock_available(conn: Any, keys: Sequence[AccountKey]) -> dict[AccountKey, int]:
    """Lock the existing accounts of ``keys`` (sorted, distinct) and answer their available
    balance (posted less pending debits)."""
    rows = await conn.fetch(
        _LOCK_AVAILABLE,
        [k.owner_type for k in keys],
        [k.owner_id for k in keys],
        [k.asset for k in keys],
    )
    return {AccountKey(r["owner_type"], r["owner_id"], r["asset"]): r["available"] for r in rows}


_CONSUME_LOTS = """
WITH d AS (
    SELECT * FROM unnest($1::bigint[], $2::bigint[]) AS u(account_id, total)
),
l AS (
    SELECT p.id, p.remaining, d.total,
           sum(p.remaining) OVER (PARTITION BY p.account_id ORDER BY p.expires_at, p.id)
               - p.remaining AS before
    FROM point_lots p JOIN d ON d.account_id = p.account_id
    WHERE p.remaining > 0
)
UPDATE point_lots p
SET remaining = p.remaining - least(l.remaining, l.total - l.before)
FROM l
WHERE p.id = l.id AND l.before < l.total
"""


async def consume_lots(conn: Any, account_ids: Sequence[int], amounts: Sequence[int]) -> None:
    """Take ``amounts`` from each account's open lots, nearest expiry first (set-wise)."""
    if account_ids:
        await conn.execute(_CONSUME_LOTS, list(account_ids), list(amounts))


_TRANSFER_COLUMNS = """
    t.id, t.batch_id, t.idempotency_key, t.phase, t.kind, t.reason_code, t.asset, t.amount,
    t.source_ref, t.region_code, t.occurred_at, t.recorded_at, t.pending_id, t.reverses_id,
    t.timeout_at, t.hash, t.debit_account_id, t.credit_account_id,
    da.owner_type AS debit_type, da.owner_id AS debit_id,
    ca.owner_type AS credit_type, ca.owner_id AS credit_id
"""
_TRANSFER_FROM = """
    ledger_transfers t
    JOIN ledger_accounts da ON da.id = t.debit_account_id
    JOIN ledger_accounts ca ON ca.id = t.credit_account_id
"""


class TransferRow(msgspec.Struct, frozen=True):
    transfer: Transfer
    batch_id: int
    hash: bytes
    debit_account_id: int
    credit_account_id: int


def _transfer_row(r: Any) -> TransferRow:
    transfer = TransferContent.from_record(r).wire(r["id"], r["recorded_at"])
    return TransferRow(
        transfer, r["batch_id"], bytes(r["hash"]), r["debit_account_id"], r["credit_account_id"]
    )


async def transfers_by_keys(conn: Any, keys: Sequence[str]) -> list[TransferRow]:
    rows = await conn.fetch(
        f"SELECT {_TRANSFER_COLUMNS} FROM {_TRANSFER_FROM} WHERE t.idempotency_key = ANY($1)",
        list(keys),
    )
    return [_transfer_row(r) for r in rows]


async def transfer_by_id(conn: Any, transfer_id: int) -> TransferRow | None:
    r = await conn.fetchrow(
        f"SELECT {_TRANSFER_COLUMNS} FROM {_TRANSFER_FROM} WHERE t.id = $1", transfer_id
    )
    return None if r is None else _transfer_row(r)


async def issuance_transfers(conn: Any, keys: Sequence[str]) -> list[TransferRow]:
    """The issuance transfers of one event, by their idempotency keys (no source_ref index)."""
    rows = await conn.fetch(
        f"SELECT {_TRANSFER_COLUMNS} FROM {_TRANSFER_FROM} "
        "WHERE t.idempotency_key = ANY($1) AND t.kind = 'issuance' ORDER BY t.id",
        list(keys),
    )
    return [_transfer_row(r) for r in rows]


async def settlement_of(conn: Any, hold_id: int) -> TransferRow | None:
    """The post or void of a hold, if any."""
    r = await conn.fetchrow(
        f"SELECT {_TRANSFER_COLUMNS} FROM {_TRANSFER_FROM} WHERE t.pending_id = $1", hold_id
    )
    return None if r is None else _transfer_row(r)


async def reversals_of(conn: Any, transfer_ids: Sequence[int]) -> list[int]:
    rows = await conn.fetch(
        "SELECT reverses_id FROM ledger_transfers WHERE reverses_id = ANY($1)", list(transfer_ids)
    )
    return [r["reverses_id"] for r in rows]


async def timed_out_holds(conn: Any, now: datetime, limit: int) -> list[TransferRow]:
    rows = await conn.fetch(
        f"""
        SELECT {_TRANSFER_COLUMNS} FROM {_TRANSFER_FROM}
        WHERE t.phase = 'pending' AND t.timeout_at <= $1
          AND NOT EXISTS (SELECT 1 FROM ledger_transfers s WHERE s.pending_id = t.id)
        ORDER BY t.timeout_at, t.id
        LIMIT $2
        """,
        now,
        limit,
    )
    return [_transfer_row(r) for r in rows]


async def accounts_with_expired_lots(conn: Any, now: datetime, limit: int) -> list[str]:
    """Owner ids of resident POINT accounts holding expired, unspent points."""
    rows = await conn.fetch(
        """
        SELECT a.owner_id
        FROM (SELECT DISTINCT account_id FROM point_lots
              WHERE remaining > 0 AND expires_at <= $1 LIMIT $2) l
        JOIN ledger_accounts a ON a.id = l.account_id
        ORDER BY a.owner_id
        """,
        now,
        limit,
    )
    return [r["owner_id"] for r in rows]


async def expired_totals(conn: Any, account_ids: Sequence[int], now: datetime) -> dict[int, int]:
    rows = await conn.fetch(
        """
        SELECT account_id, sum(remaining)::bigint AS expired
        FROM point_lots
        WHERE account_id = ANY($1) AND remaining > 0 AND expires_at <= $2
        GROUP BY account_id
        """,
        list(account_ids),
        now,
    )
    return {r["account_id"]: r["expired"] for r in rows}


# Reads ----------------------------------------------------------------------------------------


async def balances(conn: Any, owner_type: str, owner_id: str) -> list[Balance]:
    rows = await conn.fetch(
        """
        SELECT asset, posted, pending_debits FROM ledger_accounts
        WHERE owner_type = $1 AND owner_id = $2 ORDER BY asset
        """,
        owner_type,
        owner_id,
    )
    return [
        Balance(r["asset"], r["posted"], r["pending_debits"], r["posted"] - r["pending_debits"])
        for r in rows
    ]


async def account_id(conn: Any, owner_type: str, owner_id: str, asset: str) -> int | None:
    value: int | None = await conn.fetchval(
        "SELECT id FROM ledger_accounts WHERE owner_type = $1 AND owner_id = $2 AND asset = $3",
        owner_type,
        owner_id,
        asset,
    )
    return value


_STATEMENT = """
SELECT t.id, t.phase, t.kind, t.reason_code, t.amount, t.debit_account_id, t.source_ref,
       t.occurred_at, t.recorded_at, h.amount AS held,
       CASE WHEN t.debit_account_id = $1 THEN ca.owner_type ELSE da.owner_type END AS cp_type,
       CASE WHEN t.debit_account_id = $1 THEN ca.owner_id ELSE da.owner_id END AS cp_id
FROM (
    (SELECT id FROM ledger_transfers WHERE debit_account_id = $1 AND id < $2
     ORDER BY id DESC LIMIT $3)
    UNION ALL
    (SELECT id FROM ledger_transfers WHERE credit_account_id = $1 AND id < $2
     ORDER BY id DESC LIMIT $3)
) s
JOIN ledger_transfers t ON t.id = s.id
JOIN ledger_accounts da ON da.id = t.debit_account_id
JOIN ledger_accounts ca ON ca.id = t.credit_account_id
LEFT JOIN ledger_transfers h ON h.id = t.pending_id
ORDER BY t.id DESC
LIMIT $3
"""


async def statement(conn: Any, account: int, before_id: int, limit: int) -> list[StatementEntry]:
    rows = await conn.fetch(_STATEMENT, account, before_id, limit)
    out: list[StatementEntry] = []
    for r in rows:
        debit = r["debit_account_id"] == account
        phase = r["phase"]
        amount = r["amount"]
        delta = pending_delta = 0
        if phase in ("posted", "post_pending"):
            delta = -amount if debit else amount
        if debit and phase == "pending":
            pending_delta = amount
        elif debit and phase in ("post_pending", "void_pending"):
            pending_delta = -(r["held"] or 0)
        out.append(
            StatementEntry(
                transfer_id=str(r["id"]),
                phase=phase,
                kind=r["kind"],
                reason_code=r["reason_code"],
                amount=amount,
                delta=delta,
                pending_delta=pending_delta,
                counterparty=Owner(r["cp_type"], r["cp_id"]),
                source_ref=r["source_ref"],
                occurred_at=r["occurred_at"],
                recorded_at=r["recorded_at"],
            )
        )
    return out


async def balance_as_of(conn: Any, account: int, at: datetime) -> tuple[int, int]:
    """(posted, pending debits) of an account as recorded at ``at``."""
    r = await conn.fetchrow(
        """
        SELECT
          (SELECT coalesce(sum(CASE WHEN t.credit_account_id = $1 THEN t.amount
                                    ELSE -t.amount END), 0)::bigint
           FROM ledger_transfers t
           WHERE (t.debit_account_id = $1 OR t.credit_account_id = $1)
             AND t.phase IN ('posted', 'post_pending') AND t.recorded_at <= $2) AS posted,
          (SELECT coalesce(sum(h.amount), 0)::bigint
           FROM ledger_transfers h
           WHERE h.debit_account_id = $1 AND h.phase = 'pending' AND h.recorded_at <= $2
             AND NOT EXISTS (SELECT 1 FROM ledger_transfers s
                             WHERE s.pending_id = h.id AND s.recorded_at <= $2)) AS pending
        """,
        account,
        at,
    )
    return r["posted"], r["pending"]


async def expiring_lots(conn: Any, account: int, until: datetime) -> list[ExpiringLot]:
    rows = await conn.fetch(
        """
        SELECT expires_at, sum(remaining)::bigint AS amount FROM point_lots
        WHERE account_id = $1 AND remaining > 0 AND expires_at <= $2
        GROUP BY expires_at ORDER BY expires_at
        """,
        account,
        until,
    )
    return [ExpiringLot(r["expires_at"], r["amount"]) for r in rows]


# Journal --------------------------------------------------------------------------------------

_JOURNAL_LOCK = 0x6C656467  # "ledg": one sealer at a time


async def try_journal_lock(conn: Any) -> bool:
    got: bool = await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", _JOURNAL_LOCK)
    return got


async def journal_head(conn: Any) -> tuple[int, bytes] | None:
    r = await conn.fetchrow(
        "SELECT seq, block_hash FROM ledger_batches WHERE seq IS NOT NULL ORDER BY seq DESC LIMIT 1"
    )
    return None if r is None else (r["seq"], bytes(r["block_hash"]))


async def unsealed_batches(conn: Any, limit: int) -> list[int]:
    rows = await conn.fetch(
        "SELECT id FROM ledger_batches WHERE seq IS NULL ORDER BY id LIMIT $1", limit
    )
    return [r["id"] for r in rows]


async def batch_leaves(conn: Any, batch_ids: Sequence[int]) -> dict[int, list[bytes]]:
    """Stored transfer hashes of each batch, in transfer id order."""
    rows = await conn.fetch(
        "SELECT batch_id, hash FROM ledger_transfers WHERE batch_id = ANY($1) "
        "ORDER BY batch_id, id",
        list(batch_ids),
    )
    out: dict[int, list[bytes]] = {b: [] for b in batch_ids}
    for r in rows:
        out[r["batch_id"]].append(bytes(r["hash"]))
    return out


async def batch_transfer_ids(conn: Any, batch_id: int) -> list[int]:
    rows = await conn.fetch(
        "SELECT id FROM ledger_transfers WHERE batch_id = $1 ORDER BY id", batch_id
    )
    return [r["id"] for r in rows]


async def seal_batches(
    conn: Any,
    ids: Sequence[int],
    seqs: Sequence[int],
    prev_hashes: Sequence[bytes],
    roots: Sequence[bytes],
    hashes: Sequence[bytes],
    counts: Sequence[int],
) -> None:
    await conn.execute(
        """
        UPDATE ledger_batches b
        SET seq = u.seq, prev_hash = u.prev_hash, merkle_root = u.merkle_root,
            block_hash = u.block_hash, transfer_count = u.transfer_count, sealed_at = now()
        FROM unnest($1::bigint[], $2::bigint[], $3::bytea[], $4::bytea[], $5::bytea[],
                    $6::int[]) AS u(id, seq, prev_hash, merkle_root, block_hash, transfer_count)
        WHERE b.id = u.id AND b.seq IS NULL
        """,
        list(ids),
        list(seqs),
        list(prev_hashes),
        list(roots),
        list(hashes),
        list(counts),
    )


class BlockRow(msgspec.Struct, frozen=True):
    batch_id: int
    seq: int | None
    prev_hash: bytes | None
    merkle_root: bytes | None
    block_hash: bytes | None
    transfer_count: int | None


def _block(r: Any) -> BlockRow:
    def b(v: Any) -> bytes | None:
        return None if v is None else bytes(v)

    return BlockRow(
        r["id"],
        r["seq"],
        b(r["prev_hash"]),
        b(r["merkle_root"]),
        b(r["block_hash"]),
        r["transfer_count"],
    )


async def block_by_seq(conn: Any, seq: int) -> tuple[BlockRow, Any] | None:
    """A sealed block by its sequence number, with its sealing time."""
    r = await conn.fetchrow(
        "SELECT id, seq, prev_hash, merkle_root, block_hash, transfer_count, sealed_at "
        "FROM ledger_batches WHERE seq = $1",
        seq,
    )
    return None if r is None else (_block(r), r["sealed_at"])


async def block(conn: Any, batch_id: int) -> BlockRow | None:
    r = await conn.fetchrow(
        "SELECT id, seq, prev_hash, merkle_root, block_hash, transfer_count "
        "FROM ledger_batches WHERE id = $1",
        batch_id,
    )
    return None if r is None else _block(r)


# Audit (streamed; run inside a transaction for the cursors) ----------------------------------


def sealed_blocks(conn: Any) -> Any:
    """Async iterator of sealed blocks in chain order."""
    return conn.cursor(
        "SELECT id, seq, prev_hash, merkle_root, block_hash, transfer_count "
        "FROM ledger_batches WHERE seq IS NOT NULL ORDER BY seq",
        prefetch=5000,
    )


def block_of(r: Any) -> BlockRow:
    return _block(r)


def all_transfers(conn: Any) -> Any:
    """Async iterator of every transfer with its owners, in (batch, id) order."""
    return conn.cursor(
        f"SELECT {_TRANSFER_COLUMNS} FROM {_TRANSFER_FROM} ORDER BY t.batch_id, t.id",
        prefetch=20000,
    )


def transfer_of(r: Any) -> TransferRow:
    return _transfer_row(r)


async def balance_mismatches(conn: Any) -> list[dict[str, Any]]:
    """Accounts whose stored balances differ from the ones re-derived from the transfers."""
    rows = await conn.fetch(
        """
        WITH moves AS (
            SELECT credit_account_id AS id, amount AS posted, 0::bigint AS pending
            FROM ledger_transfers WHERE phase IN ('posted', 'post_pending')
            UNION ALL
            SELECT debit_account_id, -amount, 0 FROM ledger_transfers
            WHERE phase IN ('posted', 'post_pending')
            UNION ALL
            SELECT h.debit_account_id, 0, h.amount FROM ledger_transfers h
            WHERE h.phase = 'pending'
              AND NOT EXISTS (SELECT 1 FROM ledger_transfers s WHERE s.pending_id = h.id)
        ),
        derived AS (
            SELECT id, sum(posted)::bigint AS posted, sum(pending)::bigint AS pending
            FROM moves GROUP BY id
        )
        SELECT a.id, a.owner_type, a.owner_id, a.asset, a.posted, a.pending_debits,
               coalesce(d.posted, 0) AS derived_posted, coalesce(d.pending, 0) AS derived_pending
        FROM ledger_accounts a LEFT JOIN derived d ON d.id = a.id
        WHERE a.posted <> coalesce(d.posted, 0) OR a.pending_debits <> coalesce(d.pending, 0)
        ORDER BY a.id
        """
    )
    return [dict(r) for r in rows]


async def dangling_references(conn: Any) -> list[str]:
    """Transfers or lots pointing at a missing account, batch or transfer (never expected: the
    schema's set-wise reference triggers refuse them; this re-checks what they guarantee)."""
    rows = await conn.fetch(
        """
        SELECT 'transfer ' || t.id || ': its batch or an account of its asset is missing' AS p
        FROM ledger_transfers t
        WHERE NOT EXISTS (SELECT 1 FROM ledger_accounts a
                          WHERE a.id = t.debit_account_id AND a.asset = t.asset)
           OR NOT EXISTS (SELECT 1 FROM ledger_accounts a
                          WHERE a.id = t.credit_account_id AND a.asset = t.asset)
           OR NOT EXISTS (SELECT 1 FROM ledger_batches b WHERE b.id = t.batch_id)
        UNION ALL
        SELECT 'lot ' || l.id || ': no POINT transfer crediting its account'
        FROM point_lots l
        WHERE NOT EXISTS (SELECT 1 FROM ledger_transfers t
                          WHERE t.id = l.transfer_id AND t.credit_account_id = l.account_id
                            AND t.asset = 'POINT')
        LIMIT 50
        """
    )
    return [r["p"] for r in rows]


async def accounts_outside(conn: Any, assets: Sequence[str]) -> list[dict[str, Any]]:
    """Accounts of an asset not in ``assets``, and ALLOWANCE_G accounts of an owner that is
    neither an enterprise nor a system account (migration 0012's checks, re-checked)."""
    rows = await conn.fetch(
        """
        SELECT id, owner_type, owner_id, asset FROM ledger_accounts
        WHERE asset <> ALL($1::text[])
           OR (asset = 'ALLOWANCE_G' AND owner_type NOT IN ('enterprise', 'system'))
        ORDER BY id LIMIT 50
        """,
        list(assets),
    )
    return [dict(r) for r in rows]


async def asset_sums(conn: Any) -> dict[str, int]:
    rows = await conn.fetch(
        "SELECT asset, sum(posted)::bigint AS total FROM ledger_accounts GROUP BY asset"
    )
    return {r["asset"]: r["total"] for r in rows}


async def overdrawn_accounts(conn: Any) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT id, owner_type, owner_id, asset, posted, pending_debits FROM ledger_accounts "
        "WHERE flags & 1 = 0 AND (posted < 0 OR posted - pending_debits < 0) ORDER BY id"
    )
    return [dict(r) for r in rows]


async def lot_mismatches(conn: Any) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        """
        SELECT a.id, a.owner_id, a.posted, coalesce(sum(l.remaining), 0)::bigint AS in_lots
        FROM ledger_accounts a LEFT JOIN point_lots l ON l.account_id = a.id
        WHERE a.owner_type = 'resident' AND a.asset = 'POINT'
        GROUP BY a.id, a.owner_id, a.posted
        HAVING a.posted <> coalesce(sum(l.remaining), 0)
        ORDER BY a.id
        """
    )
    return [dict(r) for r in rows]


# =============================================================================================
# Published reads for other packages (points/reads.py): a resident's ledger summary and
# balances by owner, each set-wise, read-only. Owned by the reads' author; keep this section
# last in the file.
# =============================================================================================

# Posted CO2E_G; POINT posted and pending_debits as ``service.balances`` computes them; unspent
# POINT lots expiring by $2 as ``service.expiring`` sums them; and every expiry date of the
# unspent lots with its points (``service.expiring`` with no horizon), nearest first. Always one
# row (zeros and no dates for an owner without accounts).
OWNER_SUMMARY_SQL = """
SELECT coalesce(g.posted, 0) AS grams,
       coalesce(p.posted, 0) AS points_posted,
       coalesce(p.pending_debits, 0) AS points_pending,
       coalesce((SELECT sum(l.remaining) FROM point_lots l
                 WHERE l.account_id = p.id AND l.remaining > 0 AND l.expires_at <= $3), 0)::bigint
           AS points_expiring,
       x.dates AS expiry_dates, x.amounts AS expiry_amounts
FROM (SELECT 1) AS one
LEFT JOIN ledger_accounts g ON g.owner_type = $1 AND g.owner_id = $2 AND g.asset = 'CO2E_G'
LEFT JOIN ledger_accounts p ON p.owner_type = $1 AND p.owner_id = $2 AND p.asset = 'POINT'
LEFT JOIN LATERAL (
    SELECT array_agg(e.expires_at ORDER BY e.expires_at) AS dates,
           array_agg(e.amount ORDER BY e.expires_at) AS amounts
    FROM (SELECT l.expires_at, sum(l.remaining)::bigint AS amount FROM point_lots l
          WHERE l.account_id = p.id AND l.remaining > 0 GROUP BY l.expires_at) e
) x ON true
"""


async def owner_summary(conn: Any, owner_type: str, owner_id: str, expiring_until: Any) -> Any:
    return await conn.fetchrow(OWNER_SUMMARY_SQL, owner_type, owner_id, expiring_until)


async def posted_by_owner(
    conn: Any, owner_type: str, owner_ids: Sequence[str], asset: str
) -> dict[str, int]:
    """Posted balance of ``asset`` per owner, for owners with an account (one statement)."""
    if not owner_ids:
        return {}
    rows = await conn.fetch(
        """
        SELECT owner_id, posted FROM ledger_accounts
        WHERE owner_type = $1 AND asset = $2 AND owner_id = ANY($3::text[])
        """,
        owner_type,
        asset,
        list(owner_ids),
    )
    return {r["owner_id"]: int(r["posted"]) for r in rows}


# Movements by period (points.reads.flows_by_period: the programme's liability view). One
# GROUP BY over the ledger: per period of the programme's calendar (``date_trunc`` unit in the
# time zone $2), asset, phase, kind, the owner types of both sides (system accounts by name:
# issuance, expiry, donations), and whether it is a reversal; a settlement also sums what it
# released of its hold (the hold's amount: a partial post releases the whole hold).
FLOWS_BY_PERIOD_SQL = """
SELECT date_trunc($1, t.recorded_at AT TIME ZONE $2)::date AS period,
       t.asset, t.phase, t.kind,
       da.owner_type AS debit_type,
       CASE WHEN da.owner_type = 'system' THEN split_part(da.owner_id, '.', 1) END
           AS debit_system,
       ca.owner_type AS credit_type,
       CASE WHEN ca.owner_type = 'system' THEN split_part(ca.owner_id, '.', 1) END
           AS credit_system,
       t.reverses_id IS NOT NULL AS reversal,
       sum(t.amount)::bigint AS amount,
       coalesce(sum(h.amount), 0)::bigint AS released,
       count(*)::bigint AS transfers
FROM ledger_transfers t
JOIN ledger_accounts da ON da.id = t.debit_account_id
JOIN ledger_accounts ca ON ca.id = t.credit_account_id
LEFT JOIN ledger_transfers h ON h.id = t.pending_id
WHERE t.recorded_at < $3
GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9
ORDER BY 1, 2, 3, 4, 5, 6, 7, 8, 9
"""


async def flows_by_period(conn: Any, unit: str, timezone: str, until: datetime) -> list[Any]:
    return list(await conn.fetch(FLOWS_BY_PERIOD_SQL, unit, timezone, until))


# The same movements for the transfers recorded in [$4, $3) only (reporting's daily rollup
# refreshes a window of days instead of reading the whole ledger).
FLOWS_BETWEEN_SQL = FLOWS_BY_PERIOD_SQL.replace(
    "WHERE t.recorded_at < $3", "WHERE t.recorded_at < $3 AND t.recorded_at >= $4"
)


async def flows_between(
    conn: Any, unit: str, timezone: str, since: datetime, until: datetime
) -> list[Any]:
    return list(await conn.fetch(FLOWS_BETWEEN_SQL, unit, timezone, until, since))
