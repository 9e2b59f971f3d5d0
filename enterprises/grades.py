"""Grades by Zhejiang's industrial carbon-efficiency method, and the three-colour index.

- L, the intensity: an enterprise's net emissions of the year (t CO2, green electricity
  deducted, on-site renewables zero) per 10,000 yuan of industrial added value.
- The industry: the GB/T 4754 code cut to ``grade_industry_digits`` digits after the section
  letter (``C2611`` at 2 digits is ``C26``; a shorter code is its own industry).
- The benchmark: the industry's L for the same year, over the enterprises that have one:
  ``weighted`` (Σ emissions / Σ added value, the default) or ``mean`` (the plain average of
  their L). With fewer than ``grade_min_peers`` such enterprises there is no benchmark and no
  grade (reason ``industry_too_few_peers``).
- K = L / benchmark, rounded to 4 decimals (the published precision) before the cut points, so
  K "exactly 0.6" is grade 1 whatever the binary arithmetic: grades 1-5 at K ≤ 0.6 / 0.8 / 1.2 /
  2.0 / above (``grade_k_bounds``), shown dark green, light green, yellow, orange, red.
- Intensity bands: low at L ≤ 0.6, medium at L ≤ 2.0, high above (``intensity_bands``; L
  rounded to 4 decimals too).
- Rank within the industry: 1 for the lowest L; equal L share a rank (competition ranking).

The three-colour index (Hangzhou publishes one over 10 indicators in four dimensions:
pollutants, carbon, energy-structure synergy, management efficiency). What this data has:

- ``carbon``: the grade (1 → 100, 2 → 80, 3 → 60, 4 → 40, 5 → 20), or without a grade the
  intensity band (low 80, medium 50, high 20);
- ``structure``: the zero-carbon share of the electricity used (on-site renewables and claimed
  green electricity over grid plus on-site), 100 at ``index_green_share_target`` or more;
- ``efficiency``: the year-on-year change of L: 60 − 200 × change, clamped to 0-100 (−20 %
  scores 100, +20 % scores 20);
- ``pollutants``: the year-on-year change of the enterprise's pollutant equivalents per 10,000
  yuan of added value (enterprises.pollutants), scored linearly between the two points of
  enterprises/pollutants.json ("index": −20 % scores 100, +20 % scores 20), clamped; present
  in ``indicators`` only when the enterprise has pollutant intensities in both years, so an
  enterprise without pollutant data scores exactly as before;

weighted by ``index_weights`` (renormalised over the indicators an enterprise has), green at
``index_bounds[0]`` or more, yellow at ``index_bounds[1]`` or more, red below. Management
indicators are not in the data yet (a later issue): listed in each index as ``missing``, as is
``pollutants`` where an enterprise has no pollutant change.

Everything here is computed on read from ``enterprise_emissions`` and
``enterprise_pollutants`` (a statement each for a whole year of a district, then plain
Python): deterministic, and never stale after late data.

    async def grade_year(conn, year: int, settings: EnterprisesSettings)
        -> list[Assessment]                  # every enterprise with data in the year
    async def explain(conn, enterprise_id: UUID, year: int, settings) -> Explanation | None
"""

from __future__ import annotations

import math
import uuid
from collections import defaultdict
from collections.abc import Sequence
from typing import Any, Final, Literal

from msgspec import Struct

from enterprises import accounting_repository as repo
from enterprises import pollutants
from enterprises.accounting import ECONOMIC, year_figures
from enterprises.factors import Basis
from enterprises.settings import EnterprisesSettings

Band = Literal["low", "medium", "high"]
Colour = Literal["dark_green", "light_green", "yellow", "orange", "red"]
IndexColour = Literal["green", "yellow", "red"]

COLOURS: Final[tuple[Colour, ...]] = ("dark_green", "light_green", "yellow", "orange", "red")
BANDS: Final[tuple[Band, ...]] = ("low", "medium", "high")
TOO_FEW_PEERS: Final = "industry_too_few_peers"
NO_ADDED_VALUE: Final = "added_value_missing"
NO_EMISSIONS: Final = "emissions_missing"
GRADE_SCORES: Final = {1: 100.0, 2: 80.0, 3: 60.0, 4: 40.0, 5: 20.0}
BAND_SCORES: Final = {"low": 80.0, "medium": 50.0, "high": 20.0}
# Hangzhou's dimensions this data cannot fill yet.
NOT_IN_DATA: Final = ("management",)


class GradePolicy(Struct, frozen=True, kw_only=True):
    industry_digits: int = 2
    min_peers: int = 5
    k_bounds: tuple[float, ...] = (0.6, 0.8, 1.2, 2.0)
    bands: tuple[float, ...] = (0.6, 2.0)
    benchmark: Literal["weighted", "mean"] = "weighted"

    @classmethod
    def of(cls, s: EnterprisesSettings) -> GradePolicy:
        return cls(
            industry_digits=s.grade_industry_digits,
            min_peers=s.grade_min_peers,
            k_bounds=s.k_bounds,
            bands=s.bands,
            benchmark=s.grade_benchmark,
        )


class GradeInput(Struct, frozen=True, kw_only=True):
    enterprise_id: uuid.UUID
    industry: str  # GB/T 4754 code as registered
    emissions_kg: float  # net, the year
    added_value: float  # 10,000 yuan, the year
    has_emissions: bool = True


class Grade(Struct, frozen=True, kw_only=True):
    enterprise_id: uuid.UUID
    industry: str  # the industry graded against (the code at the policy's level)
    intensity: float | None  # L, t CO2 / 10,000 yuan
    band: Band | None
    benchmark: float | None  # the industry's L
    k: float | None  # L / benchmark, 4 decimals
    grade: int | None  # 1-5
    colour: Colour | None
    rank: int | None  # within the industry, 1: lowest L
    peers: int  # enterprises of the industry with an L
    reason: str | None = None  # why there is no grade


def industry_group(code: str, digits: int) -> str:
    """The industry of a GB/T 4754 code at ``digits`` digits (its section letter at 0)."""
    return code[: 1 + digits]


def band_of(intensity: float, bounds: Sequence[float]) -> Band:
    value = round(intensity, 4)
    for band, bound in zip(BANDS, bounds, strict=False):
        if value <= bound:
            return band
    return "high"


def grade_of(k: float, bounds: Sequence[float]) -> int:
    """The grade of a K already rounded to 4 decimals: the first bound it does not exceed."""
    for i, bound in enumerate(bounds):
        if k <= bound:
            return i + 1
    return len(bounds) + 1


def grade(inputs: Sequence[GradeInput], policy: GradePolicy) -> list[Grade]:
    """Grade ``inputs`` (one year) against their industries; sorted by industry, then rank."""
    groups: dict[str, list[GradeInput]] = defaultdict(list)
    for i in inputs:
        groups[industry_group(i.industry, policy.industry_digits)].append(i)
    out: list[Grade] = []
    for industry in sorted(groups):
        members = groups[industry]
        rated = [m for m in members if m.added_value > 0 and m.has_emissions]
        ls = {m.enterprise_id: m.emissions_kg / 1000 / m.added_value for m in rated}
        peers = len(rated)
        bench: float | None = None
        if peers >= policy.min_peers and peers:
            if policy.benchmark == "weighted":
                total_av = math.fsum(m.added_value for m in rated)
                bench = math.fsum(m.emissions_kg for m in rated) / 1000 / total_av
            else:
                bench = math.fsum(ls.values()) / peers
        ordered = sorted(ls.values())
        for m in sorted(
            members, key=lambda m: (ls.get(m.enterprise_id, math.inf), str(m.enterprise_id))
        ):
            l_value = ls.get(m.enterprise_id)
            if l_value is None:
                reason: str | None = NO_ADDED_VALUE if m.added_value <= 0 else NO_EMISSIONS
                out.append(
                    Grade(
                        enterprise_id=m.enterprise_id,
                        industry=industry,
                        intensity=None,
                        band=None,
                        benchmark=bench,
                        k=None,
                        grade=None,
                        colour=None,
                        rank=None,
                        peers=peers,
                        reason=reason,
                    )
                )
                continue
            rank = 1 + _count_below(ordered, l_value)
            k: float | None = None
            g: int | None = None
            colour: Colour | None = None
            reason = None
            if bench is None:
                reason = TOO_FEW_PEERS
            elif bench <= 0:
                reason = NO_EMISSIONS
            else:
                k = round(l_value / bench, 4)
                g = grade_of(k, policy.k_bounds)
                colour = COLOURS[min(g, len(COLOURS)) - 1]
            out.append(
                Grade(
                    enterprise_id=m.enterprise_id,
                    industry=industry,
                    intensity=l_value,
                    band=band_of(l_value, policy.bands),
                    benchmark=bench,
                    k=k,
                    grade=g,
                    colour=colour,
                    rank=rank,
                    peers=peers,
                    reason=reason,
                )
            )
    return out


def _count_below(ordered: Sequence[float], value: float) -> int:
    lo, hi = 0, len(ordered)
    while lo < hi:
        mid = (lo + hi) // 2
        if ordered[mid] < value:
            lo = mid + 1
        else:
            hi = mid
    return lo


# --- the three-colour index --------------------------------------------------------------------


class Index(Struct, frozen=True, kw_only=True):
    score: float | None  # 0-100
    colour: IndexColour | None
    indicators: dict[str, float | None]  # each indicator's score, None: no data
    missing: list[str]  # indicators without data, and dimensions not in the data yet


def three_colour(
    g: Grade,
    *,
    zero_carbon_share: float | None,
    intensity_change: float | None,
    settings: EnterprisesSettings,
    pollutant_change: float | None = None,
) -> Index:
    carbon: float | None = None
    if g.grade is not None:
        carbon = GRADE_SCORES.get(g.grade, 20.0)
    elif g.band is not None:
        carbon = BAND_SCORES[g.band]
    structure = (
        None
        if zero_carbon_share is None
        else min(100.0, 100.0 * zero_carbon_share / settings.index_green_share_target)
    )
    efficiency = (
        None if intensity_change is None else max(0.0, min(100.0, 60.0 - 200.0 * intensity_change))
    )
    scores: dict[str, float | None] = {
        "carbon": carbon,
        "structure": structure,
        "efficiency": efficiency,
    }
    pollutant = pollutants.index_score(pollutant_change)
    if pollutant is not None:
        scores["pollutants"] = pollutant
    weights = settings.weights
    used = {n: w for n, w in weights.items() if scores.get(n) is not None and w > 0}
    missing = [n for n in weights if scores.get(n) is None] + list(NOT_IN_DATA)
    if not used or carbon is None:
        return Index(score=None, colour=None, indicators=scores, missing=missing)
    present = {n: v for n, v in scores.items() if v is not None}
    score = round(math.fsum(present[n] * w for n, w in used.items()) / math.fsum(used.values()), 2)
    green, yellow = settings.colour_bounds
    colour: IndexColour = "green" if score >= green else "yellow" if score >= yellow else "red"
    return Index(score=score, colour=colour, indicators=scores, missing=missing)


# --- reading a year ----------------------------------------------------------------------------


class Assessment(Struct, frozen=True, kw_only=True):
    year: int
    basis: str
    grade: Grade
    index: Index


class KindChange(Struct, frozen=True, kw_only=True):
    kind: str
    quantity: float
    previous: float | None  # the year before (None: no data)
    change: float | None  # (quantity - previous) / previous
    emissions_kg: float


class Explanation(Struct, frozen=True, kw_only=True):
    assessment: Assessment
    emissions_kg: float
    added_value: float
    emission_months: int
    value_months: int
    benchmark_method: str
    min_peers: int
    industry_digits: int
    k_bounds: list[float]
    intensity_bands: list[float]
    factors: list[str]  # factor references with their versions (grid:2023:national:@v1 ...)
    year_on_year: list[KindChange]


def _structure(kinds: dict[str, float]) -> float | None:
    grid = kinds.get("electricity", 0.0)
    onsite = kinds.get("onsite_renewable", 0.0)
    green = min(kinds.get("green_electricity", 0.0), grid)
    if grid + onsite <= 0:
        return None
    return (onsite + green) / (grid + onsite)


def _assess(
    rows: Sequence[Any],
    year: int,
    settings: EnterprisesSettings,
    pollutant_l: dict[tuple[uuid.UUID, int], float] | None = None,
) -> tuple[list[Assessment], dict[tuple[uuid.UUID, int], dict[str, Any]]]:
    policy = GradePolicy.of(settings)
    basis = Basis.of(settings).label
    figures = year_figures(rows)
    industries: dict[uuid.UUID, str] = {}
    kinds: dict[tuple[uuid.UUID, int], dict[str, Any]] = defaultdict(dict)
    for r in rows:
        industries[r["enterprise_id"]] = r["industry"]
        kinds[(r["enterprise_id"], r["year"])][r["kind"]] = r
    inputs = [
        GradeInput(
            enterprise_id=eid,
            industry=industries[eid],
            emissions_kg=f.emissions_kg,
            added_value=f.added_value,
            has_emissions=f.emission_months > 0,
        )
        for (eid, y), f in figures.items()
        if y == year
    ]
    previous = grade(
        [
            GradeInput(
                enterprise_id=eid,
                industry=industries[eid],
                emissions_kg=f.emissions_kg,
                added_value=f.added_value,
                has_emissions=f.emission_months > 0,
            )
            for (eid, y), f in figures.items()
            if y == year - 1
        ],
        GradePolicy(industry_digits=policy.industry_digits, min_peers=10**9),
    )
    previous_l = {g.enterprise_id: g.intensity for g in previous}
    out = []
    for g in grade(inputs, policy):
        quantities = {k: v["quantity"] for k, v in kinds[(g.enterprise_id, year)].items()}
        before = previous_l.get(g.enterprise_id)
        change = (
            None
            if g.intensity is None or before is None or before <= 0
            else (g.intensity - before) / before
        )
        p_now = (pollutant_l or {}).get((g.enterprise_id, year))
        p_before = (pollutant_l or {}).get((g.enterprise_id, year - 1))
        out.append(
            Assessment(
                year=year,
                basis=basis,
                grade=g,
                index=three_colour(
                    g,
                    zero_carbon_share=_structure(quantities),
                    intensity_change=change,
                    settings=settings,
                    pollutant_change=(
                        None
                        if p_now is None or p_before is None or p_before <= 0
                        else (p_now - p_before) / p_before
                    ),
                ),
            )
        )
    return out, kinds


async def grade_year(
    conn: Any, year: int, settings: EnterprisesSettings, *, industry_prefix: str | None = None
) -> list[Assessment]:
    """Grades and indexes of every enterprise with data in ``year`` (under the programme's
    default basis): two statements (emissions, pollutants), then Python over their rows."""
    rows = await repo.yearly_kinds(
        conn, Basis.of(settings).label, year - 1, year, industry_prefix=industry_prefix
    )
    found = await pollutants.equivalents_intensities(
        conn, settings, year - 1, year, industry_prefix=industry_prefix
    )
    return _assess(rows, year, settings, found)[0]


async def explain(
    conn: Any, enterprise_id: uuid.UUID, year: int, settings: EnterprisesSettings
) -> Explanation | None:
    """An enterprise's grade of ``year`` with what made it: its inputs, the benchmark and its
    method, the factors (with versions) its emissions used, the year-on-year change of each
    kind. None when the enterprise has no data in the year. Two statements."""
    basis = Basis.of(settings).label
    own = await repo.yearly_kinds(
        conn, basis, year, year, enterprise_ids=[enterprise_id], with_factors=True
    )
    if not own:
        return None
    industry = industry_group(own[0]["industry"], settings.grade_industry_digits)
    rows = await repo.yearly_kinds(conn, basis, year - 1, year, industry_prefix=industry)
    rows = [
        r for r in rows if industry_group(r["industry"], settings.grade_industry_digits) == industry
    ]
    found = await pollutants.equivalents_intensities(
        conn, settings, year - 1, year, enterprise_ids=[enterprise_id]
    )
    assessments, kinds = _assess(rows, year, settings, found)
    mine = next(a for a in assessments if a.grade.enterprise_id == enterprise_id)
    figures = year_figures(own)[(enterprise_id, year)]
    this, before = kinds[(enterprise_id, year)], kinds.get((enterprise_id, year - 1), {})
    changes = []
    for kind in sorted(this):
        q = this[kind]["quantity"]
        p = before[kind]["quantity"] if kind in before else None
        changes.append(
            KindChange(
                kind=kind,
                quantity=q,
                previous=p,
                change=None if p is None or p == 0 else (q - p) / p,
                emissions_kg=0.0 if kind in ECONOMIC else this[kind]["emissions_kg"],
            )
        )
    factors = sorted({f for r in own for f in (r["factors"] or [])})
    return Explanation(
        assessment=mine,
        emissions_kg=figures.emissions_kg,
        added_value=figures.added_value,
        emission_months=figures.emission_months,
        value_months=figures.value_months,
        benchmark_method=settings.grade_benchmark,
        min_peers=settings.grade_min_peers,
        industry_digits=settings.grade_industry_digits,
        k_bounds=list(settings.k_bounds),
        intensity_bands=list(settings.bands),
        factors=factors,
        year_on_year=changes,
    )
