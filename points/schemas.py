"""Value types of the ledger (msgspec Structs): what goes in, what comes out."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

import msgspec
from msgspec import Meta, Struct

from points.settings import PointsSettings

Asset = Literal["CO2E_G", "POINT", "ALLOWANCE_G"]
# What residents hold, donate and retire (the other asset is enterprises' emission allowance).
ResidentAsset = Literal["CO2E_G", "POINT"]
OwnerType = Literal["resident", "enterprise", "project", "merchant", "system"]
Phase = Literal["posted", "pending", "post_pending", "void_pending"]

ASSETS: tuple[Asset, ...] = ("CO2E_G", "POINT", "ALLOWANCE_G")
# A resident's books: verified grams and points (issuance credits both, a reversal of an
# issuance touches both). ALLOWANCE_G (grams of CO2e an enterprise may emit, allocated from the
# region's control target: enterprises/allowances.py) is held by enterprises and system
# accounts only (migration 0012 holds it).
RESIDENT_ASSETS: tuple[ResidentAsset, ...] = ("CO2E_G", "POINT")
PositiveInt = Annotated[int, Meta(gt=0)]

# Account flag bits (ledger_accounts.flags).
FLAG_ISSUANCE = 1


class Owner(Struct, frozen=True, order=True):
    owner_type: OwnerType
    owner_id: str


class AccountKey(Struct, frozen=True, order=True):
    """One account: an owner's book of one asset. Orders the way accounts are locked."""

    owner_type: OwnerType
    owner_id: str
    asset: Asset

    @property
    def owner(self) -> Owner:
        return Owner(self.owner_type, self.owner_id)


class Issuance(Struct, frozen=True):
    """A verified reduction to credit: grams to the resident's carbon account, points by policy."""

    resident_id: str  # uuid text
    reduction_g: PositiveInt  # > 0 grams of verified CO2e
    source_ref: str  # the behaviour event id; every CO2E_G issuance points at exactly one event
    region_code: str  # district code (GB/T 2260) the event is attributed to
    occurred_at: datetime  # tz-aware


class IssuanceResult(Struct, frozen=True):
    source_ref: str
    reduction_g: int
    points: int


class PointsPolicy(Struct, frozen=True, kw_only=True):
    """Grams to points, lot expiry and hold timeout, built once from settings; ``timezone``
    is the programme's (an IANA name, ``TANPUHUI_TIMEZONE``): its calendar years end the lots.
    """

    grams_per_point: Annotated[int, Meta(ge=1)] = 10
    expiry_years: Annotated[int, Meta(ge=1, le=10)] = 2
    hold_timeout_s: Annotated[int, Meta(ge=1)] = 900
    timezone: str = "Asia/Shanghai"

    @classmethod
    def from_settings(cls, settings: PointsSettings, *, timezone: str) -> PointsPolicy:
        """The policy of ``settings`` in the programme's ``timezone``: built once per value
        (cached), so callers may ask for it per batch or per task run and get the one built at
        start-up."""
        return _policy_of(settings, timezone)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)  # zoneinfo caches its zones: no file read per call

    def convert(self, carry_g: int, reduction_g: int) -> tuple[int, int]:
        """(points, new carry): whole points for carry + grams; the remainder carries over."""
        points, carry = divmod(carry_g + reduction_g, self.grams_per_point)
        return points, carry

    def expires_at(self, earned_at: datetime) -> datetime:
        """End of the calendar year (programme time) ``expiry_years`` after earning: the
        first instant of the year after, in UTC."""
        zone = self.zone
        local = earned_at.astimezone(zone)
        return datetime(local.year + self.expiry_years + 1, 1, 1, tzinfo=zone).astimezone(UTC)


@lru_cache(maxsize=8)
def _policy_of(settings: PointsSettings, timezone: str) -> PointsPolicy:
    return PointsPolicy(
        grams_per_point=settings.grams_per_point,
        expiry_years=settings.expiry_years,
        hold_timeout_s=settings.hold_timeout_s,
        timezone=timezone,
    )


class TransferRequest(Struct, frozen=True, kw_only=True):
    """A posted transfer of ``amount`` of ``asset`` from ``debit`` to ``credit``."""

    idempotency_key: Annotated[str, Meta(min_length=1, max_length=200)]
    debit: Owner
    credit: Owner
    asset: Asset
    amount: PositiveInt
    kind: Annotated[str, Meta(min_length=1, max_length=64)]
    reason_code: Annotated[str, Meta(min_length=1, max_length=64)]
    region_code: str
    occurred_at: datetime
    source_ref: str | None = None


class Transfer(Struct, frozen=True, kw_only=True):
    id: str
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
    recorded_at: datetime
    pending_id: str | None = None
    reverses_id: str | None = None
    timeout_at: datetime | None = None


class Balance(Struct, frozen=True):
    asset: Asset
    posted: int
    pending: int  # pending debits (holds)
    available: int  # posted - pending


class StatementEntry(Struct, frozen=True, kw_only=True):
    transfer_id: str
    phase: Phase
    kind: str
    reason_code: str
    amount: int
    delta: int  # change to this account's posted balance (signed)
    pending_delta: int  # change to this account's pending debits (signed)
    counterparty: Owner
    source_ref: str | None
    occurred_at: datetime
    recorded_at: datetime


class StatementPage(Struct, frozen=True):
    entries: list[StatementEntry]
    next_cursor: str | None


class ExpiringLot(Struct, frozen=True):
    """Unspent points that expire at ``expires_at`` (lots with the same expiry summed)."""

    expires_at: datetime
    amount: int


class ProofStep(Struct, frozen=True):
    side: Literal["L", "R"]  # which side the sibling sits on
    hash: str  # hex


class InclusionProof(Struct, frozen=True, kw_only=True):
    """Everything needed to check, without the database, that a transfer is in the journal."""

    transfer: Transfer
    leaf_hash: str  # hex, re-derivable from ``transfer``
    batch_id: str
    block_seq: int
    prev_hash: str
    merkle_root: str
    transfer_count: int
    block_hash: str
    path: list[ProofStep]


def utcnow() -> datetime:
    return datetime.now(UTC)


json_encoder = msgspec.json.Encoder()
