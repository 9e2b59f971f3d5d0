"""Value types of the rewards package (msgspec Structs): what goes in, what comes out.

The mobile API publishes the residents' views (:class:`Item`, :class:`Reward` and their pages)
as they are, so they follow the contract's rules: new fields get defaults, types never change.
The merchant API's views (:class:`MerchantReward`, :class:`Statement`) carry no personal data.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec
from msgspec import Meta, Struct

Kind = Literal["coupon_code", "generated_code", "physical", "fare_credit"]
Status = Literal["issued", "used", "cancelled", "expired", "refunded"]
Period = Literal["day", "week", "month"]
DeliveryStatus = Literal["pending", "shipped", "delivered"]

MerchantId = Annotated[str, Meta(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")]
Title = Annotated[str, Meta(min_length=1, max_length=200, pattern=r"^[^\x00]*$")]
Text = Annotated[str, Meta(max_length=4000, pattern=r"^[^\x00]*$")]
Url = Annotated[str, Meta(pattern=r"^https?://[!-~]+$", max_length=2000)]
Uuid = Annotated[
    str,
    Meta(pattern=r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"),
]
District = Annotated[str, Meta(pattern=r"^[0-9]{6}$")]
Code = Annotated[str, Meta(min_length=1, max_length=200)]


class MerchantRegistration(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    id: MerchantId
    name: Title
    settlement_contact: Annotated[str, Meta(min_length=1, max_length=500, pattern=r"^[^\x00]*$")]
    webhook_url: Url | None = None


class Merchant(Struct, frozen=True, kw_only=True):
    id: str
    name: str
    settlement_contact: str
    webhook_url: str | None
    created_at: datetime


class RegisteredMerchant(Struct, frozen=True, kw_only=True):
    merchant: Merchant
    webhook_secret: str | None  # shown once: the key of the webhooks' signatures


class ItemSpec(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A catalogue item as an administrator defines it. ``total_stock`` of a ``coupon_code``
    item starts at 0: importing its codes adds them."""

    merchant_id: MerchantId
    kind: Kind
    title: Title
    cost_points: Annotated[int, Meta(gt=0, le=100_000_000)]
    total_stock: Annotated[int, Meta(ge=0, le=100_000_000)] = 0
    description: Text = ""
    usage_instructions: Text = ""
    image_urls: Annotated[list[Url], Meta(max_length=20)] = msgspec.field(default_factory=list)
    per_resident_limit: Annotated[int, Meta(gt=0)] | None = None
    period_limit: Annotated[int, Meta(gt=0)] | None = None
    limit_period: Period | None = None
    active_from: datetime
    active_until: datetime
    visible_from: datetime
    visible_until: datetime
    districts: Annotated[list[District], Meta(max_length=500)] = msgspec.field(default_factory=list)
    validity_s: Annotated[int, Meta(ge=60, le=366 * 86400)] = 30 * 86400


class Item(Struct, frozen=True, kw_only=True):
    """A catalogue item as residents see it."""

    id: str
    merchant_id: str
    merchant_name: str
    kind: Kind
    title: str
    description: str
    usage_instructions: str
    image_urls: list[str]
    cost_points: int
    total_stock: int
    remaining: Annotated[int, Meta(description="Units left to redeem.")]
    per_resident_limit: int | None
    period_limit: int | None
    limit_period: Period | None
    active_from: datetime
    active_until: datetime
    visible_from: datetime
    visible_until: datetime
    districts: Annotated[
        list[str], Meta(description="Eligible home districts; empty: every district.")
    ]
    validity_s: Annotated[int, Meta(description="Seconds an issued reward stays usable.")]
    redeemable_now: Annotated[
        bool, Meta(description="Inside the active window and with stock left.")
    ] = False


class ItemPage(Struct, frozen=True, kw_only=True):
    items: list[Item]
    next_cursor: str | None = None


class RedeemRequest(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    item_id: Uuid


class Reward(Struct, frozen=True, kw_only=True):
    """A resident's issued reward, with its code as text and as a QR payload."""

    id: str
    item_id: str
    merchant_id: str
    kind: Kind
    title: str
    status: Status
    cost_points: int
    code: Annotated[str, Meta(description="Show it at the till (or as the QR code).")]
    qr_payload: Annotated[str, Meta(description="The string to render as a QR code.")]
    usage_instructions: str = ""
    issued_at: datetime
    valid_until: datetime
    used_at: datetime | None = None
    closed_at: Annotated[datetime | None, Meta(description="When it was cancelled or expired.")] = (
        None
    )
    refunded_at: datetime | None = None
    delivery_status: DeliveryStatus | None = None


class RewardPage(Struct, frozen=True, kw_only=True):
    rewards: list[Reward]
    next_cursor: str | None = None


class CodeRequest(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A code as read at the till: the text or the QR payload."""

    code: Code


class RefundRequest(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    reward_id: Uuid


class MerchantReward(Struct, frozen=True, kw_only=True):
    """A reward as its merchant sees it: masked code, no resident."""

    id: str
    item_id: str
    title: str
    kind: Kind
    status: Status
    cost_points: int
    code_masked: str
    issued_at: datetime
    valid_until: datetime
    used_at: datetime | None = None
    refunded_at: datetime | None = None
    delivery_status: DeliveryStatus | None = None


class StatementLine(Struct, frozen=True, kw_only=True):
    reward_id: str
    item_id: str
    title: str
    event: Literal["confirmed", "refunded"]
    points: Annotated[int, Meta(description="Credited (confirmed, > 0) or debited (< 0).")]
    at: datetime
    transfer_id: str


class Statement(Struct, frozen=True, kw_only=True):
    """A merchant's settlement statement for ``[start, end)`` (dates in the programme's time
    zone); the lines reconcile to the merchant's ledger account to the point."""

    merchant_id: str
    start: str
    end: str
    confirmed_count: int
    confirmed_points: int
    refunded_count: int
    refunded_points: int
    net_points: int
    lines: list[StatementLine]


class WebhookEvent(Struct, frozen=True, kw_only=True):
    """The body of a webhook: ``event_id`` is the receiver's idempotency key."""

    event_id: str
    type: Literal["reward.confirmed", "reward.refunded", "reward.expired"]
    occurred_at: datetime
    merchant_id: str
    reward: MerchantReward
