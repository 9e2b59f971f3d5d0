"""Targets and emission rights: what goes in (strict: unknown fields refused) and what comes out
(enterprises/allowances.py). Amounts are integer grams of CO2e (``_g``); prices integer fen
(0.01 CNY) per tonne; a region is a GB/T 2260 code."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from msgspec import Meta, Struct

Method = Literal["historical_share", "benchmark", "manual"]
RegionCode = Annotated[str, Meta(pattern=r"^[1-9][0-9]{5}$", examples=["440300"])]
Year = Annotated[int, Meta(ge=2000, le=2100, examples=[2026])]
Grams = Annotated[int, Meta(gt=0, le=10**16)]  # up to 10 Gt
IndustryPrefix = Annotated[str, Meta(pattern=r"^[A-T]([0-9]{2,4})?$", examples=["C26"])]


class TargetIn(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The region's control target for a year (set, or revised while the period is open)."""

    region_code: RegionCode
    year: Year
    target_g: Grams


class PeriodRef(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    region_code: RegionCode
    year: Year


class BenchmarkIn(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """An intensity benchmark for an industry (GB/T 4754 prefix), overriding the data file's."""

    industry: IndustryPrefix
    t_per_10k_cny: Annotated[float, Meta(ge=0, le=1000)]


class ManualLine(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    enterprise_id: uuid.UUID
    amount_g: Grams


class AllocationIn(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One allocation round of a period's target, by one method:

    - ``historical_share``: ``amount_g`` (default: all that is left of the target) shared among
      the region's enterprises by their emissions over ``base_years``;
    - ``benchmark``: each enterprise gets benchmark (t CO2 per 10,000 CNY of added value, its
      industry's, from enterprises/allowance_benchmarks.json unless ``benchmarks`` overrides it)
      x its added value of ``output_year`` (default: the year before);
    - ``manual``: the explicit ``lines``.
    """

    region_code: RegionCode
    year: Year
    method: Method
    amount_g: Grams | None = None
    base_years: Annotated[list[Year], Meta(max_length=10)] = []
    output_year: Year | None = None
    benchmarks: Annotated[list[BenchmarkIn], Meta(max_length=200)] = []
    lines: Annotated[list[ManualLine], Meta(max_length=10_000)] = []


class OfferIn(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Surplus allowance of a year offered for sale, whole, at a price."""

    year: Year
    quantity_g: Grams
    price_fen_per_t: Annotated[int, Meta(ge=0, le=100_000_000_000, examples=[5137])]


class SurrenderIn(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    year: Year


class Period(Struct, frozen=True, kw_only=True):
    region_code: str
    year: int
    target_g: int
    allocated_g: int
    unallocated_g: int
    status: Literal["open", "closed"]
    updated_at: datetime
    closed_at: datetime | None


class AllocationLine(Struct, frozen=True, kw_only=True):
    enterprise_id: uuid.UUID
    industry: str  # the GB/T 4754 division (letter and two digits) the line counts under
    basis_value: float | None  # base-year emissions (kg) or the output year's added value
    amount_g: int
    transfer_id: str | None


class IndustryTotal(Struct, frozen=True, kw_only=True):
    industry: str
    enterprises: int
    amount_g: int


class Allocation(Struct, frozen=True, kw_only=True):
    id: int
    region_code: str
    year: int
    method: Method
    parameters: dict[str, Any]
    amount_g: int
    allocated_by: str
    allocated_at: datetime
    by_industry: list[IndustryTotal]
    lines: list[AllocationLine]


class Allowance(Struct, frozen=True, kw_only=True):
    """An enterprise's allowance of a year (its region's period) and its emissions."""

    enterprise_id: uuid.UUID
    year: int
    region_code: str | None  # None: no allowance of that year
    period_status: Literal["open", "closed"] | None
    allocated_g: int
    bought_g: int
    sold_g: int
    surrendered_g: int
    held_g: int  # allocated + bought - sold - surrendered
    offered_g: int  # reserved by its open offers
    emissions_g: int  # the year's recorded emissions (scope 1 + 2, the default basis)
    surplus_g: int  # held - emissions - offered: what it may still offer (never below 0)
    ledger_held_g: int  # its ALLOWANCE_G balance on the ledger (every year)
    surrendered_at: datetime | None


class RejectIn(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Why the government rejects a pending transfer (the buyer and the seller read it)."""

    reason: Annotated[str, Meta(min_length=1, max_length=500, examples=["卖方排放数据待核实"])]


class ApprovalState(Struct, frozen=True, kw_only=True):
    """A purchase's request for the government's approval (government mode; docs/allowances.md):
    pending, approved (then the offer is sold) or rejected with a reason (the offer reopened;
    ``period_closed`` / ``seller_surrendered`` when the system withdrew the offer)."""

    status: Literal["pending", "approved", "rejected"]
    buyer_id: uuid.UUID
    requested_at: datetime
    decided_at: datetime | None
    reason: str | None


class Offer(Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    region_code: str
    year: int
    seller_id: uuid.UUID
    quantity_g: int
    price_fen_per_t: int
    amount_fen: int  # quantity x price, rounded to the fen (for the statement)
    status: Literal["open", "pending_approval", "sold", "withdrawn"]
    buyer_id: uuid.UUID | None  # the buyer of a sold offer, or the one awaiting approval
    transfer_id: str | None
    created_at: datetime
    settled_at: datetime | None
    # The approval request this answer is about (the latest, or in a transfers listing the
    # listed one); None: no request (automatic mode, or never bought).
    approval: ApprovalState | None = None


class OfferPage(Struct, frozen=True):
    items: list[Offer]
    next_cursor: str | None


class Compliance(Struct, frozen=True, kw_only=True):
    """Emissions against allowance held (and surrendered) and offsets retired for the year."""

    enterprise_id: uuid.UUID
    year: int
    emissions_g: int
    allocated_g: int
    held_g: int
    surrendered_g: int
    offsets_retired_g: int
    covered_g: int  # held + surrendered + offsets
    shortfall_g: int  # emissions - covered, never below 0
    status: Literal["compliant", "short", "no_allowance"]


class Surrender(Struct, frozen=True, kw_only=True):
    enterprise_id: uuid.UUID
    year: int
    surrendered_g: int
    transfer_id: str | None  # None: nothing was owed
    surrendered_at: datetime


class Closed(Struct, frozen=True, kw_only=True):
    period: Period
    offers_withdrawn: int
    surrenders: list[Surrender]
