"""The shapes of the government reports (msgspec Structs; docs/reporting.md has examples).

Every published figure is a :class:`~reporting.disclosure.Cell`: ``{"value": 123, "status":
"ok"}``, or ``{"value": null, "status": "suppressed"}`` when disclosure control withholds it
(never 0)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

import msgspec
from msgspec import Meta, Struct

from reporting.disclosure import Cell

Grain = Literal["day", "month", "year"]
EnterpriseGrain = Literal["month", "year"]


class Figures(Struct, kw_only=True):
    """Green travel of one cell: trip events, distinct residents, verified grams CO2e, points
    issued for them."""

    trips: Cell
    participants: Cell
    grams: Cell
    points: Cell


class Totals(Struct, kw_only=True):
    grain: Grain
    period: date
    as_of: datetime | None  # when the rollup was last refreshed (None: never)
    figures: Figures


class SeriesPoint(Struct, kw_only=True):
    period: date
    trips: Cell
    participants: Cell
    grams: Cell
    points: Cell


class Series(Struct, kw_only=True):
    grain: Grain
    start: date
    end: date
    district: str | None
    mode: str | None
    as_of: datetime | None
    points: list[SeriesPoint]


class ModeRow(Struct, kw_only=True):
    mode: str
    figures: Figures


class ByMode(Struct, kw_only=True):
    grain: Grain
    period: date
    as_of: datetime | None
    modes: list[ModeRow]
    total: Figures


class ByDistrict(Struct, kw_only=True):
    grain: Grain
    period: date
    as_of: datetime | None
    districts: dict[str, Figures]  # by GB/T 2260 code ('unknown': events without a district)
    total: Figures


class DistrictMode(Struct, kw_only=True):
    """The two-way table every travel answer is cut from, with its margins."""

    grain: Grain
    period: date
    as_of: datetime | None
    districts: list[str]
    modes: list[str]
    cells: dict[str, dict[str, Figures]]  # district -> mode -> figures
    district_totals: dict[str, Figures]
    mode_totals: dict[str, Figures]
    total: Figures


class EnterpriseFigures(Struct, kw_only=True):
    enterprises: Cell
    emissions_t: Cell  # t CO2 (net, the programme's factor basis)
    energy_tce: Cell  # t of standard coal equivalent
    offsets_t: Cell  # verified reductions credited and offsets retired (year rows)


class EnterpriseTable(Struct, kw_only=True):
    grain: EnterpriseGrain
    period: date
    by: Literal["district", "industry"]
    as_of: datetime | None
    rows: dict[str, EnterpriseFigures]
    total: EnterpriseFigures


class EnterprisePoint(Struct, kw_only=True):
    period: date
    figures: EnterpriseFigures


class EnterpriseSeries(Struct, kw_only=True):
    grain: EnterpriseGrain
    start: date
    end: date
    district: str | None
    industry: str | None
    as_of: datetime | None
    points: list[EnterprisePoint]


class GradeDistribution(Struct, kw_only=True):
    """Enterprises per grade 1-5 (``ungraded``: no grade, e.g. too few peers)."""

    grades: dict[str, Cell]  # "1".."5", "ungraded"
    total: Cell


class Grades(Struct, kw_only=True):
    year: int
    by: Literal["district", "industry"] | None
    as_of: datetime | None
    groups: dict[str, GradeDistribution]  # by district or industry (empty when by is None)
    total: GradeDistribution


class RetrofitEnterprise(Struct, kw_only=True):
    enterprise_id: str
    credit_code: str
    name: str
    district: str
    industry: str
    grade: int
    colour: str | None
    intensity: float | None  # t CO2 / 10,000 yuan
    k: float | None


class RetrofitList(Struct, kw_only=True):
    """Grade 4 and 5 enterprises of a year (gov_admin only; every read is audited)."""

    year: int
    enterprises: list[RetrofitEnterprise]


class LiabilityPeriod(Struct, kw_only=True):
    period: date
    issued: int
    clawed_back: int
    redeemed: int
    refunded: int
    expired: int
    donated: int
    outstanding: int  # residents' posted points at the period's end
    grams_issued: int
    points_per_kg: float | None  # points issued per kg CO2e verified (net of clawbacks)


class Liability(Struct, kw_only=True):
    unit: Literal["month", "quarter", "year"]
    as_of: datetime | None
    periods: list[LiabilityPeriod]
    outstanding: int
    redeemed: int
    expired: int
    donated: int
    points_per_kg: float | None


class Indicator(Struct, kw_only=True):
    code: str
    title_en: str
    title_zh: str
    value: float | None  # None: no data (or suppressed)
    score: float | None  # 0-100
    weight: float  # as configured
    effective_weight: float  # renormalised over the indicators with data
    source: str


class DualCarbonIndex(Struct, kw_only=True):
    year: int
    index: float | None  # 0-100, None when no indicator has data
    indicators: list[Indicator]


class KayaYear(Struct, kw_only=True):
    year: int
    population: float
    gdp_per_capita: float  # yuan per person
    energy_intensity: float  # tce per 10,000 yuan of GDP
    carbon_intensity: float  # t CO2 per tce
    emissions_t: float


class KayaResult(Struct, kw_only=True):
    years: list[KayaYear]
    peak_year: int
    peak_emissions_t: float
    peaks_within_horizon: bool  # False: still rising (or flat) at the horizon's end


Tonnes = Annotated[float, Meta(ge=0, le=1e12)]
Label = Annotated[str, Meta(min_length=1, max_length=200, pattern=r"^[^\x00]*$")]
Rate = Annotated[float, Meta(ge=-0.5, le=0.5)]
Drift = Annotated[float, Meta(ge=-0.05, le=0.05)]


class GrowthPath(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A Kaya factor: its base-year value, first year's growth and the growth's yearly drift."""

    base: Annotated[float, Meta(gt=0, le=1e10)]
    rate: Rate = 0.0
    drift: Drift = 0.0


class KayaIn(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The peak path's inputs (as ``GET /scenarios/kaya`` takes them)."""

    base_year: Annotated[int, Meta(ge=1900, le=2200)]
    years: Annotated[int, Meta(ge=1, le=100)] = 30
    population: GrowthPath  # persons
    gdp_per_capita: GrowthPath  # yuan per person
    energy_intensity: GrowthPath  # tce per 10,000 yuan
    carbon_intensity: GrowthPath  # t CO2 per tce


class PlannedProject(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A planned new project: its annual emissions from the day it starts operating (its first
    year counted for the days left in it)."""

    name: Label
    annual_emissions_t: Tonnes
    starts_on: date


class EnergySubstitution(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One supplier replacing consumers' own fuel (e.g. a power plant's steam for chemical
    plants' boilers): the supplier's added emissions against the consumers' avoided ones, a
    year, from the day it starts."""

    name: Label
    supplier_added_t: Tonnes
    consumers_avoided_t: Tonnes
    starts_on: date


class DecisionIn(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    kaya: KayaIn
    target_peak_year: Annotated[int, Meta(ge=1900, le=2200)]
    projects: Annotated[list[PlannedProject], Meta(max_length=100)] = msgspec.field(
        default_factory=list
    )
    substitutions: Annotated[list[EnergySubstitution], Meta(max_length=100)] = msgspec.field(
        default_factory=list
    )


class DecisionYear(Struct, kw_only=True):
    year: int
    baseline_t: float  # the Kaya path
    projects_t: float  # the planned projects' emissions that year
    substitutions_t: float  # suppliers' added minus consumers' avoided (negative: a saving)
    emissions_t: float  # baseline + projects + substitutions


class DecisionResult(Struct, kw_only=True):
    """Whether the region still peaks by ``target_peak_year`` with the decisions, and the gap:
    the largest amount by which a later year's emissions exceed the highest emissions up to the
    target, i.e. what must be cut or absorbed a year from then for the path to peak on time."""

    years: list[DecisionYear]
    baseline_peak_year: int
    peak_year: int
    peak_emissions_t: float
    target_peak_year: int
    baseline_peaks_on_time: bool
    peaks_on_time: bool
    gap_t: float
    gap_year: int | None  # the year of that largest excess (None: no gap)


class SeriesValue(Struct, frozen=True, kw_only=True):
    year: Annotated[int, Meta(ge=1900, le=2200)]
    value: Annotated[float, Meta(ge=-1e15, le=1e15)]


class PeakTestIn(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    series: Annotated[list[SeriesValue], Meta(min_length=1, max_length=300)]
    current_year: Annotated[int, Meta(ge=1900, le=2200)] | None = None


class Criterion(Struct, kw_only=True):
    name: str
    met: bool
    detail: str


class PeakTest(Struct, kw_only=True):
    status: Literal["peaked", "not_peaked", "unknown"]
    criteria: list[Criterion]
    peak_year: int | None
    peak_value: float | None
    latest_year: int | None
    latest_value: float | None
