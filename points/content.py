"""What a transfer says: one Struct, from which its row, its wire form and its leaf hash derive.

:class:`TransferContent` is everything a transfer commits to: all but its id, its batch and
when it was recorded. The row (``points.repository``: the column list and the ``unnest``
arrays, :data:`ROW_COLUMNS` / :meth:`TransferContent.row`), the wire form (:class:`Transfer`,
:meth:`TransferContent.wire`) and the journal's leaf (:meth:`TransferContent.leaf`) are all
derived here, so a new field cannot reach one of them and miss another.

The leaf hash, format v1 (never changed in place: the audit re-hashes every stored transfer):
``sha256(0x00 || json([1, idempotency_key, phase, kind, reason_code, asset, debit type,
debit id, credit type, credit id, amount, source_ref, region_code, occurred_at, pending_id,
reverses_id, timeout_at]))``, times as UTC ISO 8601, ids as integers, absent values ``null``;
``0x00`` is the RFC 6962 leaf prefix (``points.merkle`` hashes the inner nodes).
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

import msgspec

from points.schemas import AccountKey, Asset, Owner, Phase, Transfer

FORMAT_VERSION = 1
LEAF_PREFIX = b"\x00"

_encode = msgspec.json.Encoder().encode


def _ts(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat()


class TransferContent(msgspec.Struct, frozen=True, kw_only=True):
    """A transfer's content: its 16 fields (each owner is a type and an id)."""

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

    @property
    def debit_key(self) -> AccountKey:
        return AccountKey(self.debit.owner_type, self.debit.owner_id, self.asset)

    @property
    def credit_key(self) -> AccountKey:
        return AccountKey(self.credit.owner_type, self.credit.owner_id, self.asset)

    def leaf(self) -> bytes:
        """The journal leaf: the hash of this content, format v1 (see the module docstring)."""
        data = _encode(
            [
                FORMAT_VERSION,
                self.idempotency_key,
                self.phase,
                self.kind,
                self.reason_code,
                self.asset,
                self.debit.owner_type,
                self.debit.owner_id,
                self.credit.owner_type,
                self.credit.owner_id,
                self.amount,
                self.source_ref,
                self.region_code,
                _ts(self.occurred_at),
                self.pending_id,
                self.reverses_id,
                _ts(self.timeout_at),
            ]
        )
        return hashlib.sha256(LEAF_PREFIX + data).digest()

    def row(self, debit_account_id: int, credit_account_id: int) -> tuple[Any, ...]:
        """The stored columns, in :data:`ROW_COLUMNS` order (owners resolved to accounts)."""
        return (
            self.idempotency_key,
            self.phase,
            self.kind,
            self.reason_code,
            self.asset,
            debit_account_id,
            credit_account_id,
            self.amount,
            self.source_ref,
            self.region_code,
            self.occurred_at,
            self.pending_id,
            self.reverses_id,
            self.timeout_at,
        )

    def wire(self, transfer_id: int, recorded_at: datetime) -> Transfer:
        """The transfer as the API and the proofs show it (ids as text)."""
        return Transfer(
            id=str(transfer_id),
            idempotency_key=self.idempotency_key,
            phase=self.phase,
            kind=self.kind,
            reason_code=self.reason_code,
            asset=self.asset,
            debit=self.debit,
            credit=self.credit,
            amount=self.amount,
            source_ref=self.source_ref,
            region_code=self.region_code,
            occurred_at=self.occurred_at,
            recorded_at=recorded_at,
            pending_id=None if self.pending_id is None else str(self.pending_id),
            reverses_id=None if self.reverses_id is None else str(self.reverses_id),
            timeout_at=self.timeout_at,
        )

    @classmethod
    def of(cls, t: Transfer) -> TransferContent:
        """The content of a wire-form transfer (what its leaf hash commits to)."""
        return cls(
            idempotency_key=t.idempotency_key,
            phase=t.phase,
            kind=t.kind,
            reason_code=t.reason_code,
            asset=t.asset,
            debit=t.debit,
            credit=t.credit,
            amount=t.amount,
            source_ref=t.source_ref,
            region_code=t.region_code,
            occurred_at=t.occurred_at,
            pending_id=None if t.pending_id is None else int(t.pending_id),
            reverses_id=None if t.reverses_id is None else int(t.reverses_id),
            timeout_at=t.timeout_at,
        )

    @classmethod
    def from_record(cls, r: Any) -> TransferContent:
        """The content of a stored row read with its owners (``debit_type``, ``debit_id``,
        ``credit_type``, ``credit_id``) in place of the account ids."""
        return cls(
            idempotency_key=r["idempotency_key"],
            phase=r["phase"],
            kind=r["kind"],
            reason_code=r["reason_code"],
            asset=r["asset"],
            debit=Owner(r["debit_type"], r["debit_id"]),
            credit=Owner(r["credit_type"], r["credit_id"]),
            amount=r["amount"],
            source_ref=r["source_ref"],
            region_code=r["region_code"],
            occurred_at=r["occurred_at"],
            pending_id=r["pending_id"],
            reverses_id=r["reverses_id"],
            timeout_at=r["timeout_at"],
        )


# The stored content columns of ``ledger_transfers``, in :meth:`TransferContent.row` order: the
# content's fields, with the two owners stored as their account ids.
ROW_COLUMNS: tuple[str, ...] = (
    "idempotency_key",
    "phase",
    "kind",
    "reason_code",
    "asset",
    "debit_account_id",
    "credit_account_id",
    "amount",
    "source_ref",
    "region_code",
    "occurred_at",
    "pending_id",
    "reverses_id",
    "timeout_at",
)
