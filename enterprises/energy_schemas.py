"""The shapes of enterprises' energy and activity data (sites, meters, readings, reports)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Literal

from msgspec import Meta, Struct, field

from enterprises.activity import ActivityKind

# The kinds a meter may measure: every energy kind but purchased green electricity, which counts
# only with certificate serials (a report's line).
MeterKind = Literal[
    "electricity",
    "natural_gas",
    "coal",
    "gasoline",
    "diesel",
    "fuel_oil",
    "lpg",
    "heat",
    "steam",
    "onsite_renewable",
]
# cumulative: each reading is the register's value (the interval's quantity is the difference);
# interval: each reading is the quantity of the interval that ends at its instant.
Register = Literal["cumulative", "interval"]
# What a meter measures, when its enterprise says (optional; migration 0048): the energy-
# efficiency bill shows the metered use by class (enterprises.efficiency_bill).
EquipmentClass = Literal[
    "production_line",
    "air_compressor",
    "pumps_fans",
    "boiler",
    "furnace_kiln",
    "hvac",
    "lighting",
    "office",
    "other",
]
Period = Literal["month", "year"]

Text200 = Annotated[str, Meta(min_length=1, max_length=200, pattern=r"^[^\x00]*$")]
Ref = Annotated[str, Meta(pattern=r"^[!-~]{1,64}$")]
Unit = Annotated[str, Meta(min_length=1, max_length=16)]


class SiteIn(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: Text200
    address: Annotated[str, Meta(max_length=500, pattern=r"^[^\x00]*$")] = ""


class Site(Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    enterprise_id: uuid.UUID
    name: str
    address: str
    created_at: datetime


class MeterIn(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    site_id: uuid.UUID
    ref: Ref  # the meter as its pusher names it (unique per pusher)
    kind: MeterKind
    unit: Unit  # the unit its readings come in (see enterprises.energy.UNITS)
    pusher: Ref  # the operator id (utility or gateway) allowed to push its readings
    interval_s: Annotated[int, Meta(ge=900, le=2_678_400)] = 900  # 15 minutes or coarser
    register: Register = "cumulative"
    # A reading whose quantity exceeds spike_factor × the meter's recent level is flagged.
    spike_factor: Annotated[float, Meta(gt=1, le=1000)] = 10.0
    equipment_class: EquipmentClass | None = None  # what it measures (the bill's breakdown)


class Meter(Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    enterprise_id: uuid.UUID
    site_id: uuid.UUID
    ref: str
    kind: MeterKind
    unit: str
    canonical_unit: str
    interval_s: int
    register: Register
    pusher: str
    spike_factor: float
    created_at: datetime
    equipment_class: EquipmentClass | None = None


# --- readings ------------------------------------------------------------------------------


class ReadingIn(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    meter: Ref  # the pusher's meter reference
    at: Annotated[datetime, Meta(tz=True)]  # the end of the interval read, with its UTC offset
    value: float  # the register (cumulative) or the interval's quantity, in ``unit``
    unit: Unit | None = None  # the meter's unit when absent


class ReadingsBatch(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    readings: list[ReadingIn]


ReadingStatus = Literal["accepted", "flagged", "duplicate", "conflict", "rejected"]


class ReadingVerdict(Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One reading's answer, in the batch's order. ``accepted``: stored and summed;
    ``flagged``: stored, not summed (``reason_code`` says why); ``duplicate``: the same value was
    stored before; ``conflict``: another value is stored for that meter and instant (kept);
    ``rejected``: not stored."""

    index: int
    meter: str
    status: ReadingStatus
    quantity: float | None = None  # what it adds to its month, canonical unit
    reason_code: str | None = None
    message: str | None = None


class ReadingsResult(Struct, frozen=True, kw_only=True):
    accepted: int
    flagged: int
    duplicates: int
    conflicts: int
    rejected: int
    results: list[ReadingVerdict]


class MeterMonth(Struct, frozen=True, kw_only=True):
    meter_id: uuid.UUID
    month: date
    kind: MeterKind
    quantity: float  # canonical unit, flagged readings excluded
    unit: str
    readings: int
    flagged: int


class FlaggedReading(Struct, frozen=True, kw_only=True):
    meter_id: uuid.UUID
    at: datetime
    value: float
    flag: Literal["backwards", "gap", "spike"]


# --- reports -------------------------------------------------------------------------------


class ReportLineIn(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    kind: ActivityKind
    quantity: Annotated[float, Meta(ge=0)]
    unit: Unit
    # Green electricity only: the certificate serials it is backed by (each covers
    # enterprises.energy.CERTIFICATE_KWH); claimed once in the whole region.
    certificates: list[Ref] = field(default_factory=list)


class ReportIn(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    period: Period
    period_start: date  # the first day of the month (or of the year)
    lines: Annotated[list[ReportLineIn], Meta(min_length=1, max_length=32)]


class ReportLine(Struct, frozen=True, kw_only=True):
    kind: ActivityKind
    quantity: float  # canonical unit
    unit: str  # the canonical unit
    given_quantity: float
    given_unit: str
    certificates: list[str]


class ReportStatus(Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    enterprise_id: uuid.UUID
    period: Period
    period_start: date
    version: int
    status: Literal["current", "superseded"]
    submitted_at: datetime
    superseded_at: datetime | None
    lines: list[ReportLine]
    created: bool = False  # False: this content was the current version already


class Touched(Struct, frozen=True, kw_only=True):
    enterprise_id: uuid.UUID
    month: date
