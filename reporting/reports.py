"""The government reports, read from the rollups only (never events), with the suppression
pattern the rollup job stored (reporting.rollups): every answer and export cut from one
period's table publishes the same pattern, so two answers cannot be combined to undo it.

Periods: ``grain`` day | month | year and ``period`` its first day (2026-03-01 for March).
Ranges are inclusive [start, end] of period starts, at most ``max_days`` days of a daily
series (months: ``max_days`` / 28 ... the limits below), refused with ``report_range_invalid``.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import date, datetime
from typing import Any

from enterprises import accounting, grades
from enterprises.settings import EnterprisesSettings
from kit.db import Tx
from reporting import audit
from reporting import repository as repo
from reporting.disclosure import Cell, cell
from reporting.errors import ReportRangeInvalid
from reporting.rollups import ALL, period_of, periods
from reporting.scenarios import change, index, scales
from reporting.schemas import (
    ByDistrict,
    ByMode,
    DistrictMode,
    DualCarbonIndex,
    EnterpriseFigures,
    EnterprisePoint,
    EnterpriseSeries,
    EnterpriseTable,
    Figures,
    GradeDistribution,
    Grades,
    Liability,
    LiabilityPeriod,
    ModeRow,
    RetrofitEnterprise,
    RetrofitList,
    Series,
    SeriesPoint,
    Totals,
)
from reporting.settings import ReportingSettings

EMPTY = Figures(
    trips=Cell(value=0), participants=Cell(value=0), grams=Cell(value=0), points=Cell(value=0)
)
MAX_YEARS = 50
MAX_MONTHS = 120
MIN_DAY = date(2000, 1, 1)
MAX_DAY = date(2100, 12, 31)


def check_period(grain: str, period: date) -> date:
    if not MIN_DAY <= period <= MAX_DAY:
        raise ReportRangeInvalid("Periods lie between 2000-01-01 and 2100-12-31.")
    if period_of(grain, period) != period:
        raise ReportRangeInvalid(
            f"A {grain} is named by its first day ({period_of(grain, period).isoformat()})."
        )
    return period


def check_range(grain: str, start: date, end: date, s: ReportingSettings) -> list[date]:
    check_period(grain, start)
    check_period(grain, end)
    if end < start:
        raise ReportRangeInvalid("The end of the range is before its start.")
    ps = periods(grain, start, end)
    limit = {"day": s.max_days, "month": MAX_MONTHS, "year": MAX_YEARS}[grain]
    if len(ps) > limit:
        raise ReportRangeInvalid(f"At most {limit} periods of a {grain} in one answer.")
    return ps


def _figures(r: Any) -> Figures:
    hidden = bool(r["suppressed"])
    return Figures(
        trips=cell(int(r["trips"]), hidden),
        participants=cell(int(r["participants"]), hidden),
        grams=cell(int(r["grams"]), hidden),
        points=cell(int(r["points"]), hidden),
    )


async def _as_of(conn: Any, rollup: str) -> datetime | None:
    return (await repo.refreshes(conn)).get(rollup)


# --- green travel ------------------------------------------------------------------------------


async def totals(conn: Any, grain: str, period: date) -> Totals:
    check_period(grain, period)
    rows = await repo.travel_rows(conn, grain, period, period, district=ALL, mode=ALL)
    return Totals(
        grain=grain,  # type: ignore[arg-type]
        period=period,
        as_of=await _as_of(conn, f"travel_{grain}"),
        figures=_figures(rows[0]) if rows else EMPTY,
    )


async def series(
    conn: Any,
    grain: str,
    start: date,
    end: date,
    s: ReportingSettings,
    *,
    district: str | None = None,
    mode: str | None = None,
) -> Series:
    """Every period of [start, end] (periods without data are zeros) of one cell of the
    district x mode table (None: all)."""
    ps = check_range(grain, start, end, s)
    rows = await repo.travel_rows(
        conn, grain, start, end, district=district or ALL, mode=mode or ALL
    )
    found = {r["period"]: _figures(r) for r in rows}
    out = []
    for p in ps:
        f = found.get(p, EMPTY)
        out.append(
            SeriesPoint(
                period=p,
                trips=f.trips,
                participants=f.participants,
                grams=f.grams,
                points=f.points,
            )
        )
    return Series(
        grain=grain,  # type: ignore[arg-type]
        start=start,
        end=end,
        district=district,
        mode=mode,
        as_of=await _as_of(conn, f"travel_{grain}"),
        points=out,
    )


async def district_mode(conn: Any, grain: str, period: date) -> DistrictMode:
    check_period(grain, period)
    rows = await repo.travel_rows(conn, grain, period, period)
    cells: dict[str, dict[str, Figures]] = defaultdict(dict)
    by_district: dict[str, Figures] = {}
    by_mode: dict[str, Figures] = {}
    total = EMPTY
    for r in rows:
        d, m, f = r["district"], r["mode"], _figures(r)
        if d == ALL and m == ALL:
            total = f
        elif m == ALL:
            by_district[d] = f
        elif d == ALL:
            by_mode[m] = f
        else:
            cells[d][m] = f
    return DistrictMode(
        grain=grain,  # type: ignore[arg-type]
        period=period,
        as_of=await _as_of(conn, f"travel_{grain}"),
        districts=sorted(by_district),
        modes=sorted(by_mode),
        cells=dict(cells),
        district_totals=by_district,
        mode_totals=by_mode,
        total=total,
    )


async def by_mode(conn: Any, grain: str, period: date) -> ByMode:
    t = await district_mode(conn, grain, period)
    return ByMode(
        grain=t.grain,
        period=period,
        as_of=t.as_of,
        modes=[ModeRow(mode=m, figures=f) for m, f in sorted(t.mode_totals.items())],
        total=t.total,
    )


async def by_district(conn: Any, grain: str, period: date) -> ByDistrict:
    t = await district_mode(conn, grain, period)
    return ByDistrict(
        grain=t.grain, period=period, as_of=t.as_of, districts=t.district_totals, total=t.total
    )


# --- enterprises -------------------------------------------------------------------------------


def _tonnes(v: float, hidden: bool) -> Cell:
    return cell(round(v / 1000, 3), hidden)


def _enterprise_figures(r: Any) -> EnterpriseFigures:
    hidden = bool(r["suppressed"])
    return EnterpriseFigures(
        enterprises=cell(int(r["firms"]), hidden),
        emissions_t=_tonnes(float(r["emissions_kg"]), hidden),
        energy_tce=_tonnes(float(r["energy_kgce"]), hidden),
        offsets_t=cell(round(int(r["offsets_g"]) / 1_000_000, 6), hidden),
    )


EMPTY_ENTERPRISE = EnterpriseFigures(
    enterprises=Cell(value=0),
    emissions_t=Cell(value=0.0),
    energy_tce=Cell(value=0.0),
    offsets_t=Cell(value=0.0),
)


async def enterprise_table(conn: Any, grain: str, period: date, by: str) -> EnterpriseTable:
    """Emissions by district (industry all) or by industry (district all) of one period."""
    check_period(grain, period)
    rows = await repo.enterprise_rows(
        conn,
        grain,
        period,
        period,
        district=ALL if by == "industry" else None,
        industry=ALL if by == "district" else None,
    )
    out: dict[str, EnterpriseFigures] = {}
    total = EMPTY_ENTERPRISE
    for r in rows:
        key = r["district"] if by == "district" else r["industry"]
        if key == ALL:
            total = _enterprise_figures(r)
        else:
            out[key] = _enterprise_figures(r)
    return EnterpriseTable(
        grain=grain,  # type: ignore[arg-type]
        period=period,
        by=by,  # type: ignore[arg-type]
        as_of=await _as_of(conn, "enterprises"),
        rows=out,
        total=total,
    )


async def enterprise_series(
    conn: Any,
    grain: str,
    start: date,
    end: date,
    *,
    district: str | None = None,
    industry: str | None = None,
) -> EnterpriseSeries:
    """Enterprises' figures of one cell (a district, an industry, or all) over [start, end]
    (month or year periods; periods without data are zeros)."""
    ps = check_range(grain, start, end, _SERIES_LIMITS)
    rows = await repo.enterprise_rows(
        conn, grain, start, end, district=district or ALL, industry=industry or ALL
    )
    found = {r["period"]: _enterprise_figures(r) for r in rows}
    return EnterpriseSeries(
        grain=grain,  # type: ignore[arg-type]
        start=start,
        end=end,
        district=district,
        industry=industry,
        as_of=await _as_of(conn, "enterprises"),
        points=[EnterprisePoint(period=p, figures=found.get(p, EMPTY_ENTERPRISE)) for p in ps],
    )


_SERIES_LIMITS = ReportingSettings()


_GRADE_KEYS = {"0": "ungraded", "1": "1", "2": "2", "3": "3", "4": "4", "5": "5"}


def _distribution(found: dict[str, Any]) -> GradeDistribution:
    out = {}
    for g, name in _GRADE_KEYS.items():
        r = found.get(g)
        out[name] = Cell(value=0) if r is None else cell(int(r["firms"]), r["suppressed"])
    t = found.get(ALL)
    total = Cell(value=0) if t is None else cell(int(t["firms"]), t["suppressed"])
    return GradeDistribution(grades=dict(sorted(out.items())), total=total)


async def grade_distribution(conn: Any, year: int, by: str | None) -> Grades:
    if not MIN_DAY.year <= year <= MAX_DAY.year:
        raise ReportRangeInvalid("Years lie between 2000 and 2100.")
    rows = await repo.grade_rows(
        conn,
        year,
        district=ALL if by in (None, "industry") else None,
        industry=ALL if by in (None, "district") else None,
    )
    groups: dict[str, dict[str, Any]] = defaultdict(dict)
    for r in rows:
        key = r["district"] if by == "district" else r["industry"] if by == "industry" else ALL
        groups[key][r["grade"]] = r
    total = _distribution(groups.pop(ALL, {}))
    return Grades(
        year=year,
        by=by,  # type: ignore[arg-type]
        as_of=await _as_of(conn, "enterprises"),
        groups={k: _distribution(v) for k, v in sorted(groups.items())},
        total=total,
    )


async def retrofit_list(tx: Tx, year: int, ent: EnterprisesSettings, *, actor: str) -> RetrofitList:
    """Grade 4 and 5 enterprises of ``year`` (Huzhou's retrofit list): enterprise-level detail,
    for gov_admin only, computed from the enterprises' own grades; the access is written to the
    audit log in the same transaction."""
    if not MIN_DAY.year <= year <= MAX_DAY.year:
        raise ReportRangeInvalid("Years lie between 2000 and 2100.")
    assessed = [a for a in await grades.grade_year(tx.conn, year, ent) if (a.grade.grade or 0) >= 4]
    who = {
        i.enterprise_id: i
        for i in await accounting.identities(tx.conn, [a.grade.enterprise_id for a in assessed])
    }
    listed = [
        RetrofitEnterprise(
            enterprise_id=str(a.grade.enterprise_id),
            credit_code=who[a.grade.enterprise_id].credit_code,
            name=who[a.grade.enterprise_id].name,
            district=who[a.grade.enterprise_id].district_code,
            industry=who[a.grade.enterprise_id].industry,
            grade=a.grade.grade or 0,
            colour=a.grade.colour,
            intensity=a.grade.intensity,
            k=a.grade.k,
        )
        for a in assessed
    ]
    listed.sort(key=lambda e: (-e.grade, -(e.k or 0), e.credit_code))
    await audit.record(
        tx,
        actor=actor,
        action="reports.retrofit_list.read",
        target=f"year:{year}",
        after={"enterprises": [e.enterprise_id for e in listed]},
    )
    return RetrofitList(year=year, enterprises=listed)


# --- the programme's liability -------------------------------------------------------------------


def _per_kg(points: int, grams: int) -> float | None:
    return round(points * 1000 / grams, 3) if grams else None


async def liability(conn: Any, unit: str, first: date | None = None) -> Liability:
    """Points outstanding, issued, redeemed, expired, donated per period and the points paid per
    kg CO2e verified, from the daily rollup of the ledger (rewards.liability's classification)."""
    start = first or MIN_DAY
    rows = await repo.points_rows(conn, start, MAX_DAY)
    before = await repo.points_before(conn, start)

    def delta(r: Any) -> int:
        return int(
            r["issued"] + r["refunded"] + r["other_in"]
            - r["clawed_back"] - r["redeemed"] - r["expired"] - r["donated"] - r["other_out"]
        )  # fmt: skip

    outstanding = delta(before)
    buckets: dict[date, dict[str, int]] = {}
    for r in rows:
        p = period_of("year" if unit == "year" else "month", r["day"])
        if unit == "quarter":
            p = p.replace(month=(p.month - 1) // 3 * 3 + 1)
        b = buckets.setdefault(p, defaultdict(int))
        for f in ("issued", "clawed_back", "redeemed", "refunded", "expired", "donated",
                  "grams_issued"):  # fmt: skip
            b[f] += int(r[f])
        outstanding += delta(r)
        b["outstanding"] = outstanding
    out = [
        LiabilityPeriod(
            period=p,
            issued=b["issued"],
            clawed_back=b["clawed_back"],
            redeemed=b["redeemed"],
            refunded=b["refunded"],
            expired=b["expired"],
            donated=b["donated"],
            outstanding=b["outstanding"],
            grams_issued=b["grams_issued"],
            points_per_kg=_per_kg(b["issued"] - b["clawed_back"], b["grams_issued"]),
        )
        for p, b in sorted(buckets.items())
    ]
    return Liability(
        unit=unit,  # type: ignore[arg-type]
        as_of=await _as_of(conn, "points"),
        periods=out,
        outstanding=outstanding,
        redeemed=sum(p.redeemed - p.refunded for p in out),
        expired=sum(p.expired for p in out),
        donated=sum(p.donated for p in out),
        points_per_kg=_per_kg(
            sum(p.issued - p.clawed_back for p in out), sum(p.grams_issued for p in out)
        ),
    )


# --- the dual-carbon index ---------------------------------------------------------------------


def _value(c: Cell) -> float | None:
    return None if c.value is None else float(c.value)


def _emissions(t: EnterpriseTable) -> float | None:
    """A period's enterprises' emissions; None when no enterprise reported for it (no data,
    not a fall to zero) or the figure is suppressed."""
    return _value(t.total.emissions_t) if t.total.enterprises.value else None


async def indicator_values(conn: Any, year: int) -> dict[str, float | None]:
    """The index's indicators of ``year`` from the published (disclosure-controlled) figures:
    a suppressed input gives no value."""
    now = await totals(conn, "year", date(year, 1, 1))
    before = await totals(conn, "year", date(year - 1, 1, 1))
    ent_now = await enterprise_table(conn, "year", date(year, 1, 1), "district")
    ent_before = await enterprise_table(conn, "year", date(year - 1, 1, 1), "district")
    g = (await grade_distribution(conn, year, None)).total
    graded = [g.grades[k] for k in ("1", "2", "3", "4", "5")]
    low = [g.grades["1"], g.grades["2"]]
    graded_n = (
        None if any(c.value is None for c in graded) else sum(float(c.value or 0) for c in graded)
    )
    low_n = None if any(c.value is None for c in low) else sum(float(c.value or 0) for c in low)
    emissions = _emissions(ent_now)
    offsets = _value(ent_now.total.offsets_t)
    return {
        "green_travel_growth": change(_value(now.figures.grams), _value(before.figures.grams)),
        "participation_growth": change(
            _value(now.figures.participants), _value(before.figures.participants)
        ),
        "enterprise_emissions_change": change(emissions, _emissions(ent_before)),
        "low_carbon_enterprise_share": (
            low_n / graded_n if graded_n and low_n is not None else None
        ),
        "offset_share": offsets / emissions if emissions and offsets is not None else None,
    }


async def dual_carbon_index(conn: Any, year: int, s: ReportingSettings) -> DualCarbonIndex:
    if not MIN_DAY.year < year <= MAX_DAY.year:
        raise ReportRangeInvalid("Years lie between 2001 and 2100.")
    return index(year, await indicator_values(conn, year), scales(s.index_weights))


async def emissions_series(conn: Any, first_year: int, last_year: int) -> list[tuple[int, Cell]]:
    """Enterprises' annual emissions (t, the year grain's grand totals) for the peak test."""
    rows = await repo.enterprise_rows(
        conn, "year", date(first_year, 1, 1), date(last_year, 1, 1), district=ALL, industry=ALL
    )
    return [(r["period"].year, _enterprise_figures(r).emissions_t) for r in rows]


def principal_actor(subject: str) -> str:
    """The audit log's actor for a gov user's token subject (a canonical UUID)."""
    return str(uuid.UUID(subject))
