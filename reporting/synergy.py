"""Synergy analyses of carbon and pollutants by industry (issue 15, item 3; docs/reporting.md,
"Synergy analyses"): where one action cuts both.

For a year, over the enterprises that have both a carbon intensity (L: t CO2 per 10,000 yuan
of added value, as the grades compute it) and a pollutant intensity (pollutant equivalents per
10,000 yuan, enterprises.pollutants), grouped by industry (GB/T 4754 at
``grade_industry_digits``, as the grades and the rollups group them):

- **Distribution**: the quartiles (Q1, median, Q3; linear interpolation between the order
  statistics, ``statistics.quantiles(method="inclusive")``) of the carbon and pollutant
  intensities, of each pollutant's kg per 10,000 yuan, and the industry's weighted intensity
  (Σ emissions / Σ added value).
- **Trend**: the weighted intensities of the year before (the same industry's enterprises of
  that year) and the year-on-year change.
- **Correlation**: Pearson's r over the industry's enterprises' two intensities in the year
  (cross-sectional: do the enterprises that burn more per yuan also emit more pollutants per
  yuan?). Chosen over the correlation of period changes because one year of data already
  answers it, and a change needs two complete years of every enterprise.
- **Joint reduction potential**: ``max(r, 0) × (carbon excess share + pollutant excess share)
  / 2``, where an excess is what the industry's enterprises above its best quartile (Q1) would
  cut by reaching it, Σ max(0, intensity − Q1) × added value, as a share of the analysed
  enterprises' total (all industries) of carbon or of pollutant equivalents. It is the share
  of the region's load that bringing the industry to its best quartile would cut, weighted by
  how far the two move together (a negative correlation: no joint potential). Industries are
  ranked by it, highest first.

Disclosure (reporting.disclosure, the enterprise tables' rules): an industry of fewer analysed
enterprises than ``enterprise_min_contributors`` is suppressed whole (every figure null,
``status: "suppressed"``, no rank); a pollutant's distribution with fewer enterprises than that
is left out; an excess share (a magnitude) whose two largest enterprises make the dominance
share or more of it is suppressed with the potential and the rank. No figure here is a sum
that another published figure completes, so there is nothing to suppress complementarily.

Computed on read from the enterprises' published figures (``enterprises.pollutants.
enterprise_years``: two statements for the two years), not from a rollup: the quartiles and
the correlation need each enterprise's intensity, which no rollup keeps.
"""

from __future__ import annotations

import math
import statistics
import uuid
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Literal

import msgspec
from msgspec import Struct

from enterprises import pollutants
from enterprises.pollutants import EnterpriseYear
from enterprises.pollutants_schemas import POLLUTANTS
from enterprises.settings import EnterprisesSettings
from reporting import disclosure
from reporting.disclosure import Cell, Stat, cell
from reporting.errors import ReportRangeInvalid
from reporting.rollups import count_rule, enterprise_rule, industry_of
from reporting.settings import ReportingSettings

CORRELATION = "pearson_of_intensities"
POTENTIAL = "max(r, 0) x (carbon_excess_share + pollutant_excess_share) / 2"


class Quartiles(Struct, frozen=True, kw_only=True):
    q1: float
    median: float
    q3: float
    weighted: float | None = None  # Σ amount / Σ added value (None for a single pollutant)


class Trend(Struct, frozen=True, kw_only=True):
    """The industry's weighted intensities of the year before and the change (None: that
    year's industry was too small to publish, or had no data)."""

    previous_carbon: float | None
    previous_pollutant: float | None
    carbon_change: float | None
    pollutant_change: float | None


class IndustrySynergy(Struct, frozen=True, kw_only=True):
    industry: str
    status: Literal["ok", "suppressed"]
    enterprises: Cell  # analysed: with both intensities in the year
    carbon_intensity: Quartiles | None  # t CO2 per 10,000 yuan
    pollutant_intensity: Quartiles | None  # pollutant equivalents per 10,000 yuan
    pollutants: dict[str, Quartiles]  # kg per 10,000 yuan, pollutants of enough enterprises
    trend: Trend | None
    correlation: float | None  # Pearson r of the two intensities, None below 3 or no spread
    carbon_excess_share: Cell
    pollutant_excess_share: Cell
    potential: Cell
    rank: int | None  # 1: the highest joint reduction potential


class SynergyReport(Struct, frozen=True, kw_only=True):
    year: int
    previous_year: int
    computed_at: datetime
    min_enterprises: int
    correlation_method: str
    potential_formula: str
    ranking: list[str]  # the ranked industries, highest potential first
    industries: list[IndustrySynergy]  # ranked first, then the unranked by code


def quartiles(values: Sequence[float], weighted: float | None = None) -> Quartiles:
    if len(values) == 1:
        v = values[0]
        return Quartiles(q1=v, median=v, q3=v, weighted=weighted)
    q1, median, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return Quartiles(q1=q1, median=median, q3=q3, weighted=weighted)


def pearson(xs: Sequence[float], ys: Sequence[float]) -> float | None:
    """Pearson's r; None with fewer than 3 pairs or without spread in either."""
    n = len(xs)
    if n < 3:
        return None
    mx, my = math.fsum(xs) / n, math.fsum(ys) / n
    sxy = math.fsum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
    sxx = math.fsum((x - mx) ** 2 for x in xs)
    syy = math.fsum((y - my) ** 2 for y in ys)
    if sxx <= 0 or syy <= 0:
        return None
    return max(-1.0, min(1.0, sxy / math.sqrt(sxx * syy)))


class _Member(Struct, frozen=True, kw_only=True):
    enterprise_id: uuid.UUID
    carbon: float  # L
    pollutant: float  # equivalents per 10,000 yuan
    emissions_t: float
    added_value: float
    equivalents: float  # of the months with added value
    pollutant_value: float  # their added value
    per_pollutant: dict[str, float]


def _members(rows: Sequence[EnterpriseYear]) -> list[_Member]:
    out = []
    for r in rows:
        p = r.pollutants
        if (
            r.carbon_intensity is None
            or p.equivalents_per_10k is None
            or p.added_value is None
            or p.intensity_kg_per_10k is None
        ):
            continue
        out.append(
            _Member(
                enterprise_id=r.enterprise_id,
                carbon=r.carbon_intensity,
                pollutant=p.equivalents_per_10k,
                emissions_t=r.emissions_kg / 1000,
                added_value=r.added_value,
                equivalents=p.equivalents_per_10k * p.added_value,
                pollutant_value=p.added_value,
                per_pollutant=dict(p.intensity_kg_per_10k),
            )
        )
    return out


def _weighted(ms: Sequence[_Member]) -> tuple[float | None, float | None]:
    value = math.fsum(m.added_value for m in ms)
    pvalue = math.fsum(m.pollutant_value for m in ms)
    return (
        math.fsum(m.emissions_t for m in ms) / value if value > 0 else None,
        math.fsum(m.equivalents for m in ms) / pvalue if pvalue > 0 else None,
    )


def _change(now: float | None, before: float | None) -> float | None:
    return None if now is None or before is None or before <= 0 else (now - before) / before


def _excess(ms: Sequence[_Member], q1: float, of: str) -> list[float]:
    """Each enterprise's excess over the industry's Q1 (t CO2, or equivalents), positive ones."""
    out = []
    for m in ms:
        if of == "carbon":
            x = (m.carbon - q1) * m.added_value
        else:
            x = (m.pollutant - q1) * m.pollutant_value
        if x > 0:
            out.append(x)
    return out


def analyse(
    year: int,
    rows: Sequence[EnterpriseYear],
    s: ReportingSettings,
    ent: EnterprisesSettings,
    *,
    now: datetime | None = None,
) -> SynergyReport:
    """The synergy report of ``year`` from the enterprise-years of ``year`` and the year before
    (see the module's text). Pure."""
    groups: dict[tuple[str, int], list[EnterpriseYear]] = defaultdict(list)
    for r in rows:
        groups[(industry_of(r.industry, ent), r.year)].append(r)
    members = {key: _members(found) for key, found in groups.items()}
    this_year = {i: ms for (i, y), ms in members.items() if y == year and ms}
    frequency = count_rule(s)
    dominance = enterprise_rule(s)
    everyone = [m for ms in this_year.values() for m in ms]
    total_c = math.fsum(m.emissions_t for m in everyone)
    total_p = math.fsum(m.equivalents for m in everyone)
    out: list[IndustrySynergy] = []
    for industry, ms in sorted(this_year.items()):
        n = len(ms)
        if disclosure.primary(Stat(contributors=n), frequency):
            out.append(_suppressed(industry))
            continue
        wc, wp = _weighted(ms)
        carbon = quartiles(sorted(m.carbon for m in ms), wc)
        pollutant = quartiles(sorted(m.pollutant for m in ms), wp)
        per: dict[str, Quartiles] = {}
        for p in POLLUTANTS:
            values = sorted(m.per_pollutant[p] for m in ms if p in m.per_pollutant)
            if values and not disclosure.primary(Stat(contributors=len(values)), frequency):
                per[p] = quartiles(values)
        before = members.get((industry, year - 1), [])
        bc, bp = (
            (None, None)
            if not before or disclosure.primary(Stat(contributors=len(before)), frequency)
            else _weighted(before)
        )
        corr = pearson([m.carbon for m in ms], [m.pollutant for m in ms])
        xc = _excess(ms, carbon.q1, "carbon")
        xp = _excess(ms, pollutant.q1, "pollutant")
        hidden = any(
            disclosure.primary(
                Stat(contributors=len(x), value=math.fsum(x), top=tuple(sorted(x)[::-1][:2])),
                dominance,
            )
            for x in (xc, xp)
        )
        share_c = math.fsum(xc) / total_c if total_c > 0 else 0.0
        share_p = math.fsum(xp) / total_p if total_p > 0 else 0.0
        potential = None if corr is None else max(corr, 0.0) * (share_c + share_p) / 2
        out.append(
            IndustrySynergy(
                industry=industry,
                status="ok",
                enterprises=Cell(value=n),
                carbon_intensity=carbon,
                pollutant_intensity=pollutant,
                pollutants=per,
                trend=Trend(
                    previous_carbon=bc,
                    previous_pollutant=bp,
                    carbon_change=_change(wc, bc),
                    pollutant_change=_change(wp, bp),
                ),
                correlation=None if corr is None else round(corr, 6),
                carbon_excess_share=cell(round(share_c, 6), hidden),
                pollutant_excess_share=cell(round(share_p, 6), hidden),
                potential=cell(None if potential is None else round(potential, 6), hidden),
                rank=None,
            )
        )
    ranked = sorted(
        (x for x in out if x.potential.value is not None),
        key=lambda x: (-float(x.potential.value or 0.0), x.industry),
    )
    order = {x.industry: i + 1 for i, x in enumerate(ranked)}
    final = [
        msgspec.structs.replace(x, rank=order.get(x.industry))
        for x in sorted(out, key=lambda x: (order.get(x.industry, len(out) + 1), x.industry))
    ]
    return SynergyReport(
        year=year,
        previous_year=year - 1,
        computed_at=(now or datetime.now(UTC)).replace(microsecond=0),
        min_enterprises=frequency.k,
        correlation_method=CORRELATION,
        potential_formula=POTENTIAL,
        ranking=[x.industry for x in ranked],
        industries=final,
    )


def _suppressed(industry: str) -> IndustrySynergy:
    return IndustrySynergy(
        industry=industry,
        status="suppressed",
        enterprises=disclosure.SUPPRESSED,
        carbon_intensity=None,
        pollutant_intensity=None,
        pollutants={},
        trend=None,
        correlation=None,
        carbon_excess_share=disclosure.SUPPRESSED,
        pollutant_excess_share=disclosure.SUPPRESSED,
        potential=disclosure.SUPPRESSED,
        rank=None,
    )


async def synergy(
    conn: Any, year: int, s: ReportingSettings, ent: EnterprisesSettings
) -> SynergyReport:
    """The synergy report of ``year`` (2001-2100) from the enterprises' accounts."""
    if not 2001 <= year <= 2100:
        raise ReportRangeInvalid("Synergy reports exist for the years 2001 to 2100.")
    rows = await pollutants.enterprise_years(conn, ent, year - 1, year)
    return analyse(year, rows, s, ent)
