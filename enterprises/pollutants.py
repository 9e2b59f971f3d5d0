"""Pollutants beside carbon in the enterprise account (issue 15, item 2; docs/pollutants.md).

Yuhang's 碳眼 keeps pollutant emissions in every enterprise account ("pollutants and CO2 share
root, source and time"). Here: SO2, NOx, particulate matter (``pm``) and VOCs per enterprise
and month, each line from a source (``permit``: the discharge permit's execution report,
``online_monitoring``: the continuous emission monitoring system, ``report``: the enterprise's
own report), its amount converted to kg from the unit given (t, kg, g), the given amount and
unit kept beside it.

- A month's lines are replaced as a whole (all or nothing, in the caller's transaction); the
  same pollutant from the same source twice in one month is ``pollutant_lines_duplicate``.
- The month's amount of a pollutant is its most trusted source's (``sources`` in
  enterprises/pollutants.json, most trusted first: online monitoring, permit, report): sources
  overlap, they are never added (as the ledger's rule of overlapping claims, the more trusted
  claim wins).
- Pollutant equivalents (污染当量): kg / the pollutant's ``equivalent_kg`` (the Environmental
  Protection Tax Law's values), so that unlike pollutants add up by harm.
- Intensity, as carbon's L: kg (or equivalents) per 10,000 yuan of added value, the added value
  being the one accounting recorded for the same months under the programme's default basis
  (``enterprise_emissions``, kind ``added_value``); a period's intensity is over the months that
  have both pollutant data and added value (None without such a month).

Data (the pollutants, units, sources and the index's scale) is enterprises/pollutants.json.

    async def submit(tx, enterprise_id, data: PollutantsIn, *, recorded_by) -> PollutantsRecorded
    async def load(tx, items: Sequence[tuple[UUID, PollutantsIn]]) -> int
    async def period(conn, enterprise_id, period: str, settings) -> PollutantPeriod
    async def enterprise_years(conn, settings, first_year, last_year) -> list[EnterpriseYear]
"""

from __future__ import annotations

import math
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import date
from functools import cache
from importlib import resources
from typing import Any

import msgspec
from msgspec import Struct

from enterprises import accounting_repository as accounting_repo
from enterprises import pollutants_repository as repo
from enterprises.accounting import year_figures
from enterprises.factors import Basis
from enterprises.pollutants_errors import (
    PollutantLinesDuplicate,
    PollutantMonthInvalid,
    PollutantUnitUnknown,
)
from enterprises.pollutants_schemas import (
    POLLUTANTS,
    PollutantFigures,
    PollutantLine,
    PollutantMonth,
    PollutantPeriod,
    PollutantsIn,
    PollutantsRecorded,
)
from enterprises.settings import EnterprisesSettings
from kit.db import Tx
from kit.errors import FieldError, InvalidInput

FIRST_YEAR = 2000
LAST_YEAR = 2100
AMOUNT_MAX_KG = 1e12  # the table's bound: a billion tonnes of one pollutant in a month


# --- the data ------------------------------------------------------------------------------------


class PollutantInfo(Struct, frozen=True, kw_only=True):
    name_en: str
    name_zh: str
    equivalent_kg: float
    source: str


class IndexScale(Struct, frozen=True, kw_only=True):
    best_change: float
    best_score: float
    worst_change: float
    worst_score: float


class Catalogue(Struct, frozen=True, kw_only=True):
    pollutants: dict[str, PollutantInfo]
    units: dict[str, float]  # kg per given unit
    sources: list[str]  # most trusted first
    index: IndexScale


@cache
def catalogue() -> Catalogue:
    """enterprises/pollutants.json, read once."""
    text = (resources.files("enterprises") / "pollutants.json").read_text(encoding="utf-8")
    raw = msgspec.json.decode(text)
    raw.pop("_comment", None)
    found = msgspec.convert(raw, Catalogue)
    if set(found.pollutants) != set(POLLUTANTS):
        raise ValueError("enterprises/pollutants.json must describe so2, nox, pm and vocs")
    return found


def to_kg(amount: float, unit: str) -> float | None:
    """``amount`` in ``unit`` as kg; None when ``unit`` is not an accepted one."""
    factor = catalogue().units.get(unit)
    return None if factor is None else amount * factor


def equivalents(amounts_kg: dict[str, float]) -> float:
    """Pollutant equivalents of the amounts (kg by pollutant)."""
    table = catalogue().pollutants
    return math.fsum(kg / table[p].equivalent_kg for p, kg in amounts_kg.items())


def index_score(change: float | None) -> float | None:
    """The three-colour index's pollutant score of a year-on-year change of the equivalents'
    intensity: linear between the data's two points (a fall scores higher), clamped."""
    if change is None:
        return None
    s = catalogue().index
    t = (change - s.best_change) / (s.worst_change - s.best_change)
    t = min(1.0, max(0.0, t))
    return round(s.best_score + t * (s.worst_score - s.best_score), 2)


# --- writing -----------------------------------------------------------------------------------

Row = tuple[uuid.UUID, date, str, str, float, float, str, uuid.UUID | None]


def _rows(enterprise_id: uuid.UUID, data: PollutantsIn, by: uuid.UUID | None) -> list[Row]:
    """The month's lines as rows, or the refusal naming every field that breaks a rule."""
    m = data.month
    if m.day != 1 or not FIRST_YEAR <= m.year <= LAST_YEAR:
        raise PollutantMonthInvalid(
            "Pollutant data is given per month, named by its first day (2000 to 2100).",
            errors=[FieldError(path="month", message="the first day of a month, 2000-2100")],
        )
    units = catalogue().units
    bad = [
        FieldError(
            path=f"lines[{n}].unit",
            message=f"{line.unit!r} is not a unit of mass (one of: {', '.join(units)}).",
        )
        for n, line in enumerate(data.lines)
        if line.unit not in units
    ]
    if bad:
        raise PollutantUnitUnknown(f"{len(bad)} line(s) with an unknown unit.", errors=bad)
    large = [
        FieldError(path=f"lines[{n}].amount", message=f"at most {AMOUNT_MAX_KG:g} kg")
        for n, line in enumerate(data.lines)
        if line.amount * units[line.unit] >= AMOUNT_MAX_KG
    ]
    if large:
        raise InvalidInput(
            f"{len(large)} amount(s) too large.", code="validation_failed", errors=large
        )
    seen: set[tuple[str, str]] = set()
    twice = []
    out: list[Row] = []
    for n, line in enumerate(data.lines):
        key = (line.pollutant, line.source)
        if key in seen:
            twice.append(
                FieldError(
                    path=f"lines[{n}]",
                    message=f"{line.pollutant} from {line.source} is listed twice.",
                )
            )
        seen.add(key)
        kg = line.amount * units[line.unit]
        out.append((enterprise_id, m, line.pollutant, line.source, kg, line.amount, line.unit, by))
    if twice:
        raise PollutantLinesDuplicate(
            "One pollutant from one source is listed once a month.", errors=twice
        )
    return out


def _line(r: Any) -> PollutantLine:
    return PollutantLine(
        pollutant=r["pollutant"],
        source=r["source"],
        amount_kg=float(r["amount_kg"]),
        given_amount=float(r["given_amount"]),
        given_unit=r["given_unit"],
        recorded_at=r["recorded_at"],
    )


async def submit(
    tx: Tx, enterprise_id: uuid.UUID, data: PollutantsIn, *, recorded_by: uuid.UUID | None
) -> PollutantsRecorded:
    """Replace the enterprise's pollutant lines of ``data.month`` by ``data.lines`` (validated
    first; nothing is written when a line is refused)."""
    rows = _rows(enterprise_id, data, recorded_by)
    deleted, written = await repo.replace_months(tx.conn, [(enterprise_id, data.month)], rows)
    return PollutantsRecorded(
        enterprise_id=enterprise_id,
        month=data.month,
        replaced=len(deleted),
        lines=sorted((_line(r) for r in written), key=lambda x: (x.pollutant, x.source)),
    )


async def load(tx: Tx, items: Sequence[tuple[uuid.UUID, PollutantsIn]]) -> int:
    """Replace many enterprises' months at once (the synthetic district, imports): every item
    validated, then one replacement of all their months. Returns the lines written."""
    rows = [r for eid, data in items for r in _rows(eid, data, None)]
    keys = sorted({(eid, data.month) for eid, data in items}, key=lambda k: (str(k[0]), k[1]))
    if not keys:
        return 0
    _, written = await repo.replace_months(tx.conn, keys, rows)
    return len(written)


# --- reading -----------------------------------------------------------------------------------


class _Acc:
    """Accounted amounts of some months: totals, and those of the months with added value."""

    __slots__ = ("amounts", "months", "sources", "value", "valued")

    def __init__(self) -> None:
        self.amounts: dict[str, float] = defaultdict(float)
        self.sources: dict[str, set[str]] = defaultdict(set)
        self.valued: dict[str, float] = defaultdict(float)  # amounts of the valued months
        self.value = 0.0
        self.months: set[date] = set()

    def add_month(self, rows: Iterable[Any]) -> None:
        value: float | None = None
        amounts: dict[str, float] = {}
        for r in rows:
            amounts[r["pollutant"]] = float(r["amount_kg"])
            self.sources[r["pollutant"]].add(r["source"])
            if r["added_value"] is not None:
                value = float(r["added_value"])
            self.months.add(r["month"])
        for p, kg in amounts.items():
            self.amounts[p] += kg
        if value is not None and value > 0:
            self.value += value
            for p, kg in amounts.items():
                self.valued[p] += kg

    def figures(self) -> PollutantFigures:
        has_value = self.value > 0
        return PollutantFigures(
            amounts_kg={p: self.amounts[p] for p in POLLUTANTS if p in self.amounts},
            sources={p: "/".join(sorted(self.sources[p])) for p in POLLUTANTS if p in self.sources},
            equivalents=equivalents(dict(self.amounts)),
            added_value=self.value if has_value else None,
            intensity_kg_per_10k=(
                {p: self.valued.get(p, 0.0) / self.value for p in POLLUTANTS if p in self.amounts}
                if has_value
                else None
            ),
            equivalents_per_10k=equivalents(dict(self.valued)) / self.value if has_value else None,
        )


def _by_month(rows: Iterable[Any]) -> dict[tuple[uuid.UUID, date], list[Any]]:
    out: dict[tuple[uuid.UUID, date], list[Any]] = defaultdict(list)
    for r in rows:
        out[(r["enterprise_id"], r["month"])].append(r)
    return out


async def period(
    conn: Any,
    enterprise_id: uuid.UUID,
    start: date,
    end: date,
    label: str,
    settings: EnterprisesSettings,
) -> PollutantPeriod:
    """The enterprise's pollutant lines and figures of the months [start, end), by month and
    for the period (two statements)."""
    basis = Basis.of(settings).label
    given: dict[date, list[PollutantLine]] = defaultdict(list)
    for r in await repo.lines(conn, enterprise_id, start, end):
        given[r["month"]].append(_line(r))
    accounted = _by_month(
        await repo.accounted(
            conn, basis, catalogue().sources, start, end, enterprise_ids=[enterprise_id]
        )
    )
    total = _Acc()
    months = []
    for (_, month), rows in sorted(accounted.items(), key=lambda kv: kv[0][1]):
        one = _Acc()
        one.add_month(rows)
        total.add_month(rows)
        months.append(PollutantMonth(month=month, lines=given[month], figures=one.figures()))
    return PollutantPeriod(
        period=label, start=start, end=end, basis=basis, months=months, figures=total.figures()
    )


class EnterpriseYear(Struct, frozen=True, kw_only=True):
    """An enterprise's year, carbon and pollutants side by side (what the synergy analyses and
    the three-colour index read). Carbon: net emissions and the year's added value (L as the
    grades compute it); pollutants: their accounted kg and equivalents, and the added value of
    the months with pollutant data."""

    enterprise_id: uuid.UUID
    industry: str  # GB/T 4754 code as registered
    district_code: str
    year: int
    emissions_kg: float
    added_value: float  # 10,000 yuan, the year
    carbon_intensity: float | None  # t CO2 per 10,000 yuan (L)
    pollutants: PollutantFigures


async def enterprise_years(
    conn: Any,
    settings: EnterprisesSettings,
    first_year: int,
    last_year: int,
    *,
    enterprise_ids: Sequence[uuid.UUID] | None = None,
    industry_prefix: str | None = None,
) -> list[EnterpriseYear]:
    """Every enterprise-year of [first_year, last_year] with pollutant data, with its carbon
    figures beside (two statements, set-wise)."""
    basis = Basis.of(settings).label
    rows = await repo.accounted(
        conn,
        basis,
        catalogue().sources,
        date(first_year, 1, 1),
        date(last_year + 1, 1, 1),
        enterprise_ids=enterprise_ids,
        industry_prefix=industry_prefix,
    )
    if not rows:
        return []
    accs: dict[tuple[uuid.UUID, int], _Acc] = defaultdict(_Acc)
    who: dict[uuid.UUID, tuple[str, str]] = {}
    for (eid, month), found in sorted(_by_month(rows).items(), key=lambda kv: kv[0][1]):
        accs[(eid, month.year)].add_month(found)
        who[eid] = (found[0]["industry"], found[0]["district_code"])
    carbon = year_figures(
        await accounting_repo.yearly_kinds(
            conn, basis, first_year, last_year, enterprise_ids=sorted(who, key=str)
        )
    )
    out = []
    for (eid, year), acc in sorted(accs.items(), key=lambda kv: (str(kv[0][0]), kv[0][1])):
        c = carbon.get((eid, year))
        has_l = c is not None and c.added_value > 0 and c.emission_months > 0
        out.append(
            EnterpriseYear(
                enterprise_id=eid,
                industry=who[eid][0],
                district_code=who[eid][1],
                year=year,
                emissions_kg=c.emissions_kg if c else 0.0,
                added_value=c.added_value if c else 0.0,
                carbon_intensity=c.intensity if c is not None and has_l else None,
                pollutants=acc.figures(),
            )
        )
    return out


async def equivalents_intensities(
    conn: Any,
    settings: EnterprisesSettings,
    first_year: int,
    last_year: int,
    *,
    enterprise_ids: Sequence[uuid.UUID] | None = None,
    industry_prefix: str | None = None,
) -> dict[tuple[uuid.UUID, int], float]:
    """(enterprise, year) -> pollutant equivalents per 10,000 yuan, where there is one (one
    statement)."""
    rows = await repo.accounted(
        conn,
        Basis.of(settings).label,
        catalogue().sources,
        date(first_year, 1, 1),
        date(last_year + 1, 1, 1),
        enterprise_ids=enterprise_ids,
        industry_prefix=industry_prefix,
    )
    accs: dict[tuple[uuid.UUID, int], _Acc] = defaultdict(_Acc)
    for (eid, month), found in _by_month(rows).items():
        accs[(eid, month.year)].add_month(found)
    out = {}
    for key, acc in accs.items():
        f = acc.figures()
        if f.equivalents_per_10k is not None:
            out[key] = f.equivalents_per_10k
    return out
