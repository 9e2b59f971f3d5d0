"""Projections and tests on series: the Kaya identity's peak path, the C40-style peak test and
the dual-carbon index's arithmetic (shared/domain/reporting.md). Plain functions, no I/O but
the index's defaults (reporting/index.json).

- Kaya: CO2 = P x (GDP/P) x (E/GDP) x (CO2/E). Each factor starts at its base-year value and
  grows each year by its rate, the rate itself changing by its drift each year (a growth path:
  rate_t = rate + t x drift), so GDP growth can slow while intensities keep falling and the
  product can peak inside the horizon. Units: persons, yuan per person, tce per 10,000 yuan,
  t CO2 per tce -> t CO2.
- Peak test (C40): peaked only if the series has >= 3 points, its latest point is <= 5 years
  old, its peak is more than 5 years before the latest point, and the peak is more than 10 %
  above the latest value; with too few or stale points the answer is "unknown", otherwise
  "not_peaked". Every criterion is reported with whether it was met.
- Decisions on the peak path (Panjin): planned projects (annual emissions from a start date,
  the first year counted for its remaining days) and energy substitutions (a supplier's added
  emissions minus its consumers' avoided ones) are added to the Kaya path year by year; the
  answer says whether the path still peaks by the target year and the gap to compensate (the
  largest excess of a later year over the highest emissions up to the target).
- Index: indicators scored 0-100 linearly between a worst and a best value, weighted, the
  weights renormalised over the indicators that have data.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import date
from functools import cache
from importlib import resources

import msgspec

from reporting.errors import IndexWeightsInvalid, ScenarioInvalid
from reporting.schemas import (
    Criterion,
    DecisionIn,
    DecisionResult,
    DecisionYear,
    DualCarbonIndex,
    GrowthPath,
    Indicator,
    KayaResult,
    KayaYear,
    PeakTest,
    SeriesValue,
)

MAX_YEARS = 100
FIRST_DAY, LAST_DAY = date(2000, 1, 1), date(2100, 12, 31)  # a decision's start dates


class Path(msgspec.Struct, frozen=True, kw_only=True):
    """A factor's base value and growth path."""

    base: float
    rate: float = 0.0  # the first year's growth (0.05: +5 %)
    drift: float = 0.0  # added to the rate each following year


def _grown(path: Path, t: int) -> float:
    value = path.base
    for i in range(t):
        value *= 1 + path.rate + i * path.drift
    return value


def kaya(
    *,
    base_year: int,
    years: int,
    population: Path,
    gdp_per_capita: Path,
    energy_intensity: Path,
    carbon_intensity: Path,
) -> KayaResult:
    if not 1 <= years <= MAX_YEARS:
        raise ScenarioInvalid(f"Give 1 to {MAX_YEARS} years.")
    for name, p in (
        ("population", population), ("gdp_per_capita", gdp_per_capita),
        ("energy_intensity", energy_intensity), ("carbon_intensity", carbon_intensity),
    ):  # fmt: skip
        if not p.base > 0:
            raise ScenarioInvalid(f"{name}: the base value must be positive.")
        worst = min(p.rate, p.rate + (years - 1) * p.drift)
        if worst <= -1:
            raise ScenarioInvalid(f"{name}: a growth rate of -100 % or less on the path.")
    out = []
    for t in range(years + 1):
        pop, gdp = _grown(population, t), _grown(gdp_per_capita, t)
        ei, ci = _grown(energy_intensity, t), _grown(carbon_intensity, t)
        emissions = pop * gdp / 10_000 * ei * ci
        out.append(
            KayaYear(
                year=base_year + t,
                population=round(pop, 3),
                gdp_per_capita=round(gdp, 3),
                energy_intensity=round(ei, 6),
                carbon_intensity=round(ci, 6),
                emissions_t=round(emissions, 3),
            )
        )
    peak = max(out, key=lambda y: (y.emissions_t, -y.year))
    return KayaResult(
        years=out,
        peak_year=peak.year,
        peak_emissions_t=peak.emissions_t,
        peaks_within_horizon=peak.year < out[-1].year,
    )


def _share_of_year(starts_on: date, year: int) -> float:
    """The part of ``year`` a thing starting on ``starts_on`` runs (0 before, 1 after)."""
    if starts_on.year > year:
        return 0.0
    if starts_on.year < year:
        return 1.0
    days = (date(year + 1, 1, 1) - date(year, 1, 1)).days
    return (date(year + 1, 1, 1) - starts_on).days / days


def decision(d: DecisionIn) -> DecisionResult:
    """The Kaya path of ``d.kaya`` with ``d``'s projects and substitutions (module doc)."""
    k = d.kaya
    last = k.base_year + k.years
    if not k.base_year <= d.target_peak_year <= last:
        raise ScenarioInvalid(f"The target peak year must be within {k.base_year}-{last}.")
    starts = [("projects", i, p.starts_on) for i, p in enumerate(d.projects)] + [
        ("substitutions", i, s.starts_on) for i, s in enumerate(d.substitutions)
    ]
    for what, i, day in starts:
        if not FIRST_DAY <= day <= LAST_DAY:
            raise ScenarioInvalid(f"{what}[{i}].starts_on must be in {FIRST_DAY} to {LAST_DAY}.")

    def path(g: GrowthPath) -> Path:
        return Path(base=g.base, rate=g.rate, drift=g.drift)

    base = kaya(
        base_year=k.base_year,
        years=k.years,
        population=path(k.population),
        gdp_per_capita=path(k.gdp_per_capita),
        energy_intensity=path(k.energy_intensity),
        carbon_intensity=path(k.carbon_intensity),
    )
    years = []
    for y in base.years:
        projects = sum(
            p.annual_emissions_t * _share_of_year(p.starts_on, y.year) for p in d.projects
        )
        subs = sum(
            (s.supplier_added_t - s.consumers_avoided_t) * _share_of_year(s.starts_on, y.year)
            for s in d.substitutions
        )
        years.append(
            DecisionYear(
                year=y.year,
                baseline_t=y.emissions_t,
                projects_t=round(projects, 3),
                substitutions_t=round(subs, 3),
                emissions_t=round(y.emissions_t + projects + subs, 3),
            )
        )
    peak = max(years, key=lambda y: (y.emissions_t, -y.year))
    until = max(y.emissions_t for y in years if y.year <= d.target_peak_year)
    after = [y for y in years if y.year > d.target_peak_year and y.emissions_t > until]
    worst = max(after, key=lambda y: (y.emissions_t, -y.year)) if after else None
    return DecisionResult(
        years=years,
        baseline_peak_year=base.peak_year,
        peak_year=peak.year,
        peak_emissions_t=peak.emissions_t,
        target_peak_year=d.target_peak_year,
        baseline_peaks_on_time=base.peak_year <= d.target_peak_year,
        peaks_on_time=worst is None,
        gap_t=round(worst.emissions_t - until, 3) if worst else 0.0,
        gap_year=worst.year if worst else None,
    )


def peak_test(series: Sequence[SeriesValue], *, current_year: int) -> PeakTest:
    points = sorted({p.year: p.value for p in series}.items())
    if len(points) != len(series):
        raise ScenarioInvalid("Each year may appear once in the series.")
    latest_year, latest = points[-1]
    peak_year, peak = max(points, key=lambda p: (p[1], -p[0]))
    enough = len(points) >= 3
    recent = current_year - latest_year <= 5
    early = latest_year - peak_year > 5
    fell = peak > 1.1 * latest if latest >= 0 else peak > latest
    criteria = [
        Criterion(name="at_least_3_points", met=enough, detail=f"{len(points)} data points"),
        Criterion(
            name="latest_within_5_years",
            met=recent,
            detail=f"latest point {latest_year}, {current_year - latest_year} years before "
            f"{current_year}",
        ),
        Criterion(
            name="peak_over_5_years_before_latest",
            met=early,
            detail=f"peak {peak_year}, {latest_year - peak_year} years before the latest point",
        ),
        Criterion(
            name="peak_over_10_percent_above_latest",
            met=fell,
            detail=f"peak {peak:g}, latest {latest:g}",
        ),
    ]
    if enough and recent and early and fell:
        status = "peaked"
    elif not enough or not recent:
        status = "unknown"
    else:
        status = "not_peaked"
    return PeakTest(
        status=status,  # type: ignore[arg-type]
        criteria=criteria,
        peak_year=peak_year,
        peak_value=peak,
        latest_year=latest_year,
        latest_value=latest,
    )


class Scale(msgspec.Struct, frozen=True, kw_only=True):
    weight: float
    worst: float
    best: float
    title_en: str
    title_zh: str
    source: str


@cache
def default_scales() -> dict[str, Scale]:
    text = (resources.files("reporting") / "index.json").read_text(encoding="utf-8")
    raw = json.loads(text)["indicators"]
    return {k: msgspec.convert(v, Scale) for k, v in raw.items()}


def scales(weights_json: str | None) -> dict[str, Scale]:
    """The default scales with the configured weights (TANPUHUI_REPORTING_INDEX_WEIGHTS)."""
    base = default_scales()
    if not weights_json:
        return base
    try:
        weights = msgspec.json.decode(weights_json, type=dict[str, float])
    except msgspec.DecodeError:
        raise IndexWeightsInvalid("The index weights are not a JSON object of numbers.") from None
    unknown = set(weights) - set(base)
    if unknown or any(w < 0 for w in weights.values()) or not any(weights.values()):
        raise IndexWeightsInvalid(
            "Index weights name known indicators only, are not negative and not all zero."
        )
    return {k: msgspec.structs.replace(s, weight=weights.get(k, s.weight)) for k, s in base.items()}


def score(value: float, scale: Scale) -> float:
    span = scale.best - scale.worst
    raw = (value - scale.worst) / span * 100 if span else 0.0
    return round(min(100.0, max(0.0, raw)), 2)


def index(
    year: int, values: Mapping[str, float | None], table: Mapping[str, Scale]
) -> DualCarbonIndex:
    available = {k: v for k, v in values.items() if v is not None and k in table}
    total_w = sum(table[k].weight for k in available)
    out: list[Indicator] = []
    acc = 0.0
    for code, s in table.items():
        v = available.get(code)
        sc = None if v is None else score(v, s)
        eff = s.weight / total_w if v is not None and total_w else 0.0
        if sc is not None:
            acc += sc * eff
        out.append(
            Indicator(
                code=code,
                title_en=s.title_en,
                title_zh=s.title_zh,
                value=None if v is None else round(v, 6),
                score=sc,
                weight=s.weight,
                effective_weight=round(eff, 6),
                source=s.source,
            )
        )
    return DualCarbonIndex(
        year=year, index=round(acc, 2) if available and total_w else None, indicators=out
    )


def change(now: float | None, before: float | None) -> float | None:
    """(now - before) / before; None without both or from zero."""
    if now is None or before is None or before == 0:
        return None
    return (now - before) / before
