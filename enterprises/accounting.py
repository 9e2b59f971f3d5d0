"""Emissions = Σ activity × factor, and the enterprises' verified reductions on the ledger.

The pure core, :func:`emissions`, turns ``ActivityRow`` s (``enterprises.activity``) into
:class:`EmissionRow` s under a factor basis (``enterprises.factors``): deterministic (sorted,
no clock), each row recording the factor it used (reference, year, version, value).

- Purchased grid electricity: quantity × the basis's grid factor (scope 2).
- Purchased green electricity (only the kWh whose certificate serials this enterprise claimed,
  as the data side reports them): taken out of the month's grid electricity at the same grid
  factor, a negative row, never more than the month's grid electricity (scope 2).
- On-site renewable generation: zero-carbon (a row with factor 0, kept for the structure).
- Fuels (scope 1) and purchased heat and steam (scope 2): quantity × the fuel's factor.
- Economic kinds (added value, output, tax): kept beside the emissions (no factor), the grades'
  denominators.

Persistence is set-wise: :func:`record` replaces a basis's rows of a range of months (of some
enterprises or all) in two statements; :func:`recompute` reads the data side's
``monthly_activity`` for the range and records it. Computing under another basis (another
factor year or scope) writes rows under that basis's label and leaves the others as they are.

The functions others call (the enterprise API, the tasks):

    async def recompute(tx, *, start: date, end: date, basis: Basis,
                        enterprise_ids: Sequence[UUID] | None = None) -> Recorded
    async def record(tx, activity: Sequence[ActivityRow], *, start, end, basis,
                     enterprise_ids=None) -> Recorded
    async def monthly_emissions(conn, enterprise_id, *, start: date, end: date,
                                basis: Basis) -> list[MonthEmissions]
    async def credit_reductions(tx, year: int, *, settings: EnterprisesSettings,
                                policy: PointsPolicy, enterprise_ids=None) -> list[Credited]
    async def credited(conn, enterprise_id) -> list[Credited]

A **verified enterprise reduction** (credited as ``CO2E_G`` to the enterprise's ledger
account) is the year-on-year fall of its intensity at the year's own output: (L_baseline −
L_year) × added value of the year, in grams, where L is t CO2 per 10,000 yuan of added value
under the programme's default basis and the baseline is the year ``reduction_baseline_years``
before; both years complete (twelve months of added value and of emissions data), the
reduction positive. Credited once per enterprise and year (``enterprise_reduction_credits``'s
primary key decides; the ledger transfer's idempotency key is derived from the same pair), from
the system account ``enterprise_issuance`` (an issuance account: it goes negative by the
region's total credited to enterprises), so residents' and enterprises' totals are read from
the one ledger.
"""

from __future__ import annotations

import math
import uuid
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any, Final
from zoneinfo import ZoneInfo

from msgspec import Struct

from enterprises import accounting_repository as repo
from enterprises import energy
from enterprises.activity import CANONICAL_UNITS, ActivityRow
from enterprises.factors import Basis, GridFactor, Library, library
from enterprises.ledger import ENTERPRISE_ISSUANCE, open_issuance_account
from enterprises.settings import EnterprisesSettings
from kit.db import Tx
from points import service as ledger
from points.schemas import Owner, PointsPolicy, TransferRequest

ECONOMIC: Final = ("added_value", "output", "tax")
SCOPE1: Final = ("natural_gas", "coal", "gasoline", "diesel", "fuel_oil", "lpg")
SCOPE2: Final = ("electricity", "green_electricity", "heat", "steam")
ZERO_CARBON: Final = ("onsite_renewable",)

# How enterprises' verified reductions are booked on the ledger (enterprises.ledger).
REDUCTION_KIND: Final = "enterprise_reduction"
REDUCTION_REASON: Final = "verified_enterprise_reduction"


class EmissionRow(Struct, frozen=True, kw_only=True):
    enterprise_id: uuid.UUID
    month: date
    kind: str
    quantity: float  # in CANONICAL_UNITS[kind]
    source: str  # meter | report
    factor_ref: str | None  # grid:<year>:<scope>:<area> | fuel:<kind>; None: economic
    factor_year: int | None
    factor_version: int | None
    factor_kg: float | None  # kg CO2 per unit
    kgce_per_unit: float | None
    emissions_kg: float  # negative for green electricity (the deduction)
    energy_kgce: float


def _by_enterprise(
    activity: Sequence[ActivityRow],
) -> dict[uuid.UUID, dict[tuple[date, str], ActivityRow]]:
    """One row per enterprise, month and kind (the contract gives one; two are summed, a
    report's source winning), grouped by enterprise."""
    out: dict[uuid.UUID, dict[tuple[date, str], ActivityRow]] = {}
    for r in activity:
        rows = out.get(r.enterprise_id)
        if rows is None:
            rows = out[r.enterprise_id] = {}
        key = (r.month, r.kind)
        seen = rows.get(key)
        if seen is None:
            rows[key] = r
        else:
            rows[key] = ActivityRow(
                enterprise_id=r.enterprise_id,
                month=r.month,
                kind=r.kind,
                quantity=seen.quantity + r.quantity,
                source="report" if "report" in (seen.source, r.source) else "meter",
            )
    return out


def emissions(activity: Sequence[ActivityRow], lib: Library, basis: Basis) -> list[EmissionRow]:
    """The emission rows of ``activity`` under ``basis`` (see the module's text), sorted by
    enterprise, month and kind."""
    grids: dict[int, GridFactor] = {}
    out: list[EmissionRow] = []
    grouped = _by_enterprise(activity)
    for eid in sorted(grouped, key=str):
        rows = grouped[eid]
        grid_kwh = {
            month: max(r.quantity, 0.0)
            for (month, kind), r in rows.items()
            if kind == "electricity"
        }
        for month, kind in sorted(rows):
            r = rows[(month, kind)]
            if kind in ECONOMIC:
                out.append(
                    EmissionRow(
                        enterprise_id=eid,
                        month=month,
                        kind=kind,
                        quantity=r.quantity,
                        source=r.source,
                        factor_ref=None,
                        factor_year=None,
                        factor_version=None,
                        factor_kg=None,
                        kgce_per_unit=None,
                        emissions_kg=0.0,
                        energy_kgce=0.0,
                    )
                )
                continue
            fuel = lib.fuel(kind)
            if kind in ("electricity", "green_electricity"):
                g = grids.get(month.year)
                if g is None:
                    g = grids[month.year] = lib.grid_for(basis, month.year)
                ref, year, version, factor = g.ref, g.year, g.version, g.kg_per_kwh
                if kind == "electricity":
                    kg = r.quantity * factor
                else:  # the claimed green kWh, at most the month's grid kWh, taken out
                    kg = -min(max(r.quantity, 0.0), grid_kwh.get(month, 0.0)) * factor
            else:
                ref, year, version, factor = fuel.ref, None, fuel.version, fuel.kg_per_unit
                kg = r.quantity * factor
            out.append(
                EmissionRow(
                    enterprise_id=eid,
                    month=month,
                    kind=kind,
                    quantity=r.quantity,
                    source=r.source,
                    factor_ref=ref,
                    factor_year=year,
                    factor_version=version,
                    factor_kg=factor,
                    kgce_per_unit=fuel.kgce_per_unit,
                    emissions_kg=kg,
                    energy_kgce=r.quantity * fuel.kgce_per_unit,
                )
            )
    return out


class Totals(Struct, frozen=True, kw_only=True):
    emissions_kg: float
    scope1_kg: float
    scope2_kg: float
    energy_kgce: float


def totals(rows: Sequence[EmissionRow]) -> Totals:
    """Σ of ``rows`` by scope (economic rows contribute nothing)."""
    s1 = math.fsum(r.emissions_kg for r in rows if r.kind in SCOPE1)
    s2 = math.fsum(r.emissions_kg for r in rows if r.kind in SCOPE2)
    return Totals(
        emissions_kg=s1 + s2,
        scope1_kg=s1,
        scope2_kg=s2,
        energy_kgce=math.fsum(r.energy_kgce for r in rows),
    )


# --- persistence -------------------------------------------------------------------------------


class Recorded(Struct, frozen=True, kw_only=True):
    basis: str
    start: date
    end: date
    rows: int
    enterprises: int


async def record(
    tx: Tx,
    activity: Sequence[ActivityRow],
    *,
    start: date,
    end: date,
    basis: Basis,
    enterprise_ids: Sequence[uuid.UUID] | None = None,
    lib: Library | None = None,
) -> Recorded:
    """Replace the basis's emissions of the months [start, end) of ``enterprise_ids`` (None:
    every enterprise) by those of ``activity`` (rows outside the range or the enterprises are
    ignored). A constant number of statements."""
    lib = lib or await library(tx.conn)
    wanted = None if enterprise_ids is None else set(enterprise_ids)
    inside = [
        a
        for a in activity
        if start <= a.month < end and (wanted is None or a.enterprise_id in wanted)
    ]
    rows = emissions(inside, lib, basis)
    n = await repo.replace_emissions(tx.conn, basis.label, start, end, enterprise_ids, rows)
    return Recorded(
        basis=basis.label,
        start=start,
        end=end,
        rows=n,
        enterprises=len({r.enterprise_id for r in rows}),
    )


async def recompute(
    tx: Tx,
    *,
    start: date,
    end: date,
    basis: Basis,
    enterprise_ids: Sequence[uuid.UUID] | None = None,
) -> Recorded:
    """Recompute the months [start, end) of ``enterprise_ids`` (None: all) from the data side's
    monthly activity (``enterprises.energy.monthly_activity``)."""
    activity = await energy.monthly_activity(
        tx.conn, start=start, end=end, enterprise_ids=enterprise_ids
    )
    return await record(
        tx, activity, start=start, end=end, basis=basis, enterprise_ids=enterprise_ids
    )


class KindEmissions(Struct, frozen=True, kw_only=True):
    kind: str
    quantity: float
    unit: str
    source: str
    emissions_kg: float
    energy_kgce: float
    factor_ref: str | None
    factor_year: int | None
    factor_version: int | None
    factor_kg: float | None


class MonthEmissions(Struct, frozen=True, kw_only=True):
    month: date
    basis: str
    emissions_kg: float  # scope 1 + scope 2 (green electricity deducted)
    scope1_kg: float
    scope2_kg: float
    energy_kgce: float
    kinds: list[KindEmissions]


async def monthly_emissions(
    conn: Any, enterprise_id: uuid.UUID, *, start: date, end: date, basis: Basis
) -> list[MonthEmissions]:
    """An enterprise's recorded emissions of the months [start, end), by month and kind, with
    the factor each kind used (one statement)."""
    by_month: dict[date, list[Any]] = defaultdict(list)
    for r in await repo.emissions(conn, basis.label, enterprise_id, start, end):
        by_month[r["month"]].append(r)
    out = []
    for month, rs in sorted(by_month.items()):
        rows = [_row(r) for r in rs]
        t = totals(rows)
        out.append(
            MonthEmissions(
                month=month,
                basis=basis.label,
                emissions_kg=t.emissions_kg,
                scope1_kg=t.scope1_kg,
                scope2_kg=t.scope2_kg,
                energy_kgce=t.energy_kgce,
                kinds=[
                    KindEmissions(
                        kind=r.kind,
                        quantity=r.quantity,
                        unit=CANONICAL_UNITS.get(r.kind, ""),
                        source=r.source,
                        emissions_kg=r.emissions_kg,
                        energy_kgce=r.energy_kgce,
                        factor_ref=r.factor_ref,
                        factor_year=r.factor_year,
                        factor_version=r.factor_version,
                        factor_kg=r.factor_kg,
                    )
                    for r in rows
                ],
            )
        )
    return out


def _row(r: Any) -> EmissionRow:
    return EmissionRow(
        enterprise_id=r["enterprise_id"],
        month=r["month"],
        kind=r["kind"],
        quantity=r["quantity"],
        source=r["source"],
        factor_ref=r["factor_ref"],
        factor_year=r["factor_year"],
        factor_version=r["factor_version"],
        factor_kg=r["factor_kg"],
        kgce_per_unit=r["kgce_per_unit"],
        emissions_kg=r["emissions_kg"],
        energy_kgce=r["energy_kgce"],
    )


# --- the ledger --------------------------------------------------------------------------------


class Reduction(Struct, frozen=True, kw_only=True):
    enterprise_id: uuid.UUID
    year: int
    basis: str
    baseline_year: int
    baseline_l: float  # t CO2 per 10,000 yuan
    year_l: float
    added_value: float  # 10,000 yuan, the credited year
    reduction_g: int
    transfer_key: str


class YearFigures(Struct, frozen=True, kw_only=True):
    """An enterprise's year: emissions (kg, net), added value (10,000 yuan), and in how many
    months each was reported."""

    emissions_kg: float
    added_value: float
    emission_months: int
    value_months: int

    @property
    def complete(self) -> bool:
        return self.emission_months == 12 and self.value_months == 12 and self.added_value > 0

    @property
    def intensity(self) -> float:
        """L: t CO2 per 10,000 yuan."""
        return self.emissions_kg / 1000 / self.added_value


def reduction_key(enterprise_id: uuid.UUID, year: int) -> str:
    return f"enterprise:reduction:{enterprise_id}:{year}"


def verified_reduction(
    enterprise_id: uuid.UUID,
    year: int,
    baseline_year: int,
    basis: str,
    base: YearFigures,
    this: YearFigures,
) -> Reduction | None:
    """The verified reduction of ``year`` against ``baseline_year`` (module text), or None."""
    if not (base.complete and this.complete):
        return None
    base_l, year_l = base.intensity, this.intensity
    grams = math.floor((base_l - year_l) * this.added_value * 1_000_000)
    if grams <= 0:
        return None
    return Reduction(
        enterprise_id=enterprise_id,
        year=year,
        basis=basis,
        baseline_year=baseline_year,
        baseline_l=base_l,
        year_l=year_l,
        added_value=this.added_value,
        reduction_g=grams,
        transfer_key=reduction_key(enterprise_id, year),
    )


def year_figures(rows: Sequence[Any]) -> dict[tuple[uuid.UUID, int], YearFigures]:
    """Rows of ``accounting_repository.yearly_kinds`` folded into figures per enterprise and
    year."""
    acc: dict[tuple[uuid.UUID, int], list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0, 0.0])
    for r in rows:
        a = acc[(r["enterprise_id"], r["year"])]
        if r["kind"] == "added_value":
            a[1] += r["quantity"]
            a[3] = max(a[3], r["months"])
        elif r["kind"] not in ECONOMIC:
            a[0] += r["emissions_kg"]
            a[2] = max(a[2], r["months"])
    return {
        k: YearFigures(
            emissions_kg=v[0], added_value=v[1], emission_months=int(v[2]), value_months=int(v[3])
        )
        for k, v in acc.items()
    }


class Credited(Struct, frozen=True, kw_only=True):
    reduction: Reduction
    new: bool  # False: credited before (this call changed nothing)


async def credit_reductions(
    tx: Tx,
    year: int,
    *,
    settings: EnterprisesSettings,
    policy: PointsPolicy,
    enterprise_ids: Sequence[uuid.UUID] | None = None,
) -> list[Credited]:
    """Credit the verified reductions of ``year`` (of ``enterprise_ids``, or every enterprise)
    to their ledger accounts: set-wise (one read, one insert of the credits, one ledger
    transfer call), once per enterprise and year (a second call credits nothing new and
    answers the first call's credits as ``new=False``)."""
    basis = Basis.of(settings)
    baseline = year - settings.reduction_baseline_years
    rows = await repo.yearly_kinds(
        tx.conn, basis.label, baseline, year, enterprise_ids=enterprise_ids
    )
    figures = year_figures(rows)
    found: list[Reduction] = []
    for (eid, y), this in sorted(figures.items(), key=lambda kv: str(kv[0][0])):
        base = figures.get((eid, baseline))
        if y != year or base is None:
            continue
        r = verified_reduction(eid, year, baseline, basis.label, base, this)
        if r is not None:
            found.append(r)
    if not found:
        return []
    new_keys = await repo.insert_reduction_credits(tx.conn, found)
    districts = {
        r["id"]: r["district_code"]
        for r in await repo.enterprise_districts(tx.conn, [r.enterprise_id for r in found])
    }
    new = [r for r in found if r.transfer_key in new_keys]
    if new:
        await open_issuance_account(tx.conn)
        occurred = datetime(year, 12, 31, 23, 59, 59, tzinfo=ZoneInfo(policy.timezone))
        await ledger.transfer(
            tx,
            [
                TransferRequest(
                    idempotency_key=r.transfer_key,
                    debit=ENTERPRISE_ISSUANCE,
                    credit=Owner("enterprise", str(r.enterprise_id)),
                    asset="CO2E_G",
                    amount=r.reduction_g,
                    kind=REDUCTION_KIND,
                    reason_code=REDUCTION_REASON,
                    region_code=districts[r.enterprise_id],
                    occurred_at=occurred.astimezone(UTC),
                    source_ref=f"enterprise:{r.enterprise_id}:{year}",
                )
                for r in new
            ],
            policy,
        )
    stored = {c.transfer_key: c for c in await _credits(tx.conn, [r.enterprise_id for r in found])}
    return [
        Credited(reduction=stored.get(r.transfer_key, r), new=r.transfer_key in new_keys)
        for r in found
    ]


async def _credits(conn: Any, enterprise_ids: Sequence[uuid.UUID]) -> list[Reduction]:
    return [_reduction(r) for r in await repo.reduction_credits(conn, enterprise_ids)]


def _reduction(r: Any) -> Reduction:
    return Reduction(
        enterprise_id=r["enterprise_id"],
        year=r["year"],
        basis=r["basis"],
        baseline_year=r["baseline_year"],
        baseline_l=r["baseline_l"],
        year_l=r["year_l"],
        added_value=r["added_value"],
        reduction_g=r["reduction_g"],
        transfer_key=r["transfer_key"],
    )


async def credited(conn: Any, enterprise_id: uuid.UUID) -> list[Reduction]:
    """The verified reductions credited to an enterprise, by year."""
    return await _credits(conn, [enterprise_id])


# --- reads for the government reports (reporting.rollups) ---------------------------------------


class EnterpriseMonth(Struct, frozen=True, kw_only=True):
    """One enterprise's month under the programme's basis: emissions over every kind."""

    enterprise_id: uuid.UUID
    district_code: str
    industry: str  # GB/T 4754 code as registered
    month: date
    emissions_kg: float
    energy_kgce: float


class YearCredit(Struct, frozen=True, kw_only=True):
    enterprise_id: uuid.UUID
    district_code: str
    industry: str
    year: int
    reduction_g: int


class Identity(Struct, frozen=True, kw_only=True):
    enterprise_id: uuid.UUID
    credit_code: str
    name: str
    district_code: str
    industry: str


async def monthly_by_enterprise(
    conn: Any, settings: EnterprisesSettings, start: date, end: date
) -> list[EnterpriseMonth]:
    """Every enterprise's emissions per month of [start, end) (the default basis): one
    statement, set-wise."""
    rows = await repo.monthly_by_enterprise(conn, Basis.of(settings).label, start, end)
    return [
        EnterpriseMonth(
            enterprise_id=r["enterprise_id"],
            district_code=r["district_code"],
            industry=r["industry"],
            month=r["month"],
            emissions_kg=float(r["emissions_kg"]),
            energy_kgce=float(r["energy_kgce"]),
        )
        for r in rows
    ]


async def credits_by_year(conn: Any, first_year: int, last_year: int) -> list[YearCredit]:
    """The verified reductions credited for the years [first_year, last_year]."""
    return [
        YearCredit(
            enterprise_id=r["enterprise_id"],
            district_code=r["district_code"],
            industry=r["industry"],
            year=r["year"],
            reduction_g=int(r["reduction_g"]),
        )
        for r in await repo.credits_by_year(conn, first_year, last_year)
    ]


async def identities(conn: Any, enterprise_ids: Sequence[uuid.UUID]) -> list[Identity]:
    """Who the enterprises are (credit code, name, district, industry)."""
    return [
        Identity(
            enterprise_id=r["id"],
            credit_code=r["credit_code"],
            name=r["name"],
            district_code=r["district_code"],
            industry=r["industry"],
        )
        for r in await repo.enterprise_identities(conn, enterprise_ids)
    ]
