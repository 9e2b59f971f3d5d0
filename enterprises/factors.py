"""The versioned factor library: grid electricity factors by year and scope, fuels' and purchased
heat's factors, each with its source, kept as data (``enterprises/factors.json``, seeded into
``enterprise_grid_factors`` and ``enterprise_fuel_factors``; a seeder never overwrites a stored
version, a corrected publication is a new version).

A computation names its **basis** (:class:`Basis`): a factor year (or ``None``: each month's own
year) and a grid scope (and area, for a regional grid or a province). :meth:`Library.grid_for`
picks the grid factor of a month under a basis, deterministically: the basis's year, or for
``None`` the month's own year, else the latest year published before it, else the earliest
published; always the highest version of that year. Fuels use their highest version.

Fuel factors the national guidelines derive are derived here from their inputs (:func:`derived`),
so the file keeps what the guidelines tabulate (net calorific value, carbon content per unit of
heat, oxidation rate) rather than a number nobody can re-check.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from msgspec import Struct

from enterprises import accounting_repository as repo
from enterprises.errors import FactorMissing
from enterprises.settings import EnterprisesSettings, GridScope

FACTORS_FILE = Path(__file__).with_name("factors.json")
# Mass of CO2 per mass of carbon.
CO2_PER_C = 44 / 12
# Scopes whose factor is that of an area (a grid's name, a province's GB/T 2260 code).
AREA_SCOPES = ("regional", "provincial")


class GridFactor(Struct, frozen=True, kw_only=True):
    year: int
    scope: GridScope
    area: str
    version: int
    kg_per_kwh: float
    source: str
    published: str = ""

    @property
    def ref(self) -> str:
        return f"grid:{self.year}:{self.scope}:{self.area}"


class FuelFactor(Struct, frozen=True, kw_only=True):
    kind: str
    version: int
    unit: str
    kg_per_unit: float
    kgce_per_unit: float
    source: str
    ncv_gj_per_unit: float | None = None
    carbon_tc_per_gj: float | None = None
    oxidation: float | None = None

    @property
    def ref(self) -> str:
        return f"fuel:{self.kind}"


class Basis(Struct, frozen=True, kw_only=True):
    """Which grid factors a computation uses: ``year`` None is each month's own year."""

    year: int | None = None
    scope: GridScope = "national"
    area: str = ""

    @property
    def label(self) -> str:
        """The basis as stored with each result: ``<year|own>/<scope>/<area>``."""
        return f"{self.year or 'own'}/{self.scope}/{self.area}"

    @classmethod
    def of(cls, settings: EnterprisesSettings) -> Basis:
        """The programme's default basis (``TANPUHUI_ENTERPRISES_FACTOR_*``)."""
        return cls(
            year=settings.factor_year or None,
            scope=settings.factor_scope,
            area=settings.factor_area if settings.factor_scope in AREA_SCOPES else "",
        )


def derived(ncv_gj_per_unit: float, carbon_tc_per_gj: float, oxidation: float) -> float:
    """kg CO2 per unit of a fuel by the national guidelines: NCV (GJ/unit) × carbon content
    (t C/GJ) × oxidation rate × 44/12, in kg (rounded to 6 decimals, as stored)."""
    return round(ncv_gj_per_unit * carbon_tc_per_gj * oxidation * CO2_PER_C * 1000, 6)


class Library(Struct, frozen=True, kw_only=True):
    """The factors as stored: every grid factor (the highest version of each year, scope and
    area) and the highest version of each fuel's."""

    grid: tuple[GridFactor, ...]
    fuels: dict[str, FuelFactor]

    def grid_for(self, basis: Basis, year: int) -> GridFactor:
        """The grid factor of a month in ``year`` under ``basis`` (see the module's text)."""
        candidates = [
            g for g in self.grid if g.scope == basis.scope and g.area == (basis.area or "")
        ]
        if not candidates:
            raise FactorMissing(
                f"No grid factor of scope {basis.scope!r}"
                + (f" and area {basis.area!r}" if basis.area else "")
                + " in the factor library.",
                extra={"scope": basis.scope, "area": basis.area},
            )
        years = sorted({g.year for g in candidates})
        wanted = basis.year if basis.year is not None else year
        if basis.year is not None and wanted not in years:
            raise FactorMissing(
                f"No grid factor of scope {basis.scope!r} for {wanted} (published: "
                f"{', '.join(map(str, years))}).",
                extra={"scope": basis.scope, "area": basis.area, "year": wanted},
            )
        before = [y for y in years if y <= wanted]
        chosen = before[-1] if before else years[0]
        return max((g for g in candidates if g.year == chosen), key=lambda g: g.version)

    def fuel(self, kind: str) -> FuelFactor:
        f = self.fuels.get(kind)
        if f is None:
            raise FactorMissing(
                f"No factor of {kind!r} in the factor library.", extra={"kind": kind}
            )
        return f


async def library(conn: Any) -> Library:
    """The factor library as stored (two statements)."""
    grid = await repo.grid_factors(conn)
    fuels = await repo.fuel_factors(conn)
    latest: dict[tuple[int, str, str], GridFactor] = {}
    for r in grid:
        g = GridFactor(
            year=r["year"],
            scope=r["scope"],
            area=r["area"],
            version=r["version"],
            kg_per_kwh=float(r["kg_per_kwh"]),
            source=r["source"],
            published=r["published"],
        )
        key = (g.year, g.scope, g.area)
        if key not in latest or latest[key].version < g.version:
            latest[key] = g
    by_kind: dict[str, FuelFactor] = {}
    for r in fuels:
        f = FuelFactor(
            kind=r["kind"],
            version=r["version"],
            unit=r["unit"],
            kg_per_unit=float(r["kg_per_unit"]),
            kgce_per_unit=float(r["kgce_per_unit"]),
            source=r["source"],
            ncv_gj_per_unit=_opt(r["ncv_gj_per_unit"]),
            carbon_tc_per_gj=_opt(r["carbon_tc_per_gj"]),
            oxidation=_opt(r["oxidation"]),
        )
        if f.kind not in by_kind or by_kind[f.kind].version < f.version:
            by_kind[f.kind] = f
    return Library(grid=tuple(sorted(latest.values(), key=lambda g: g.ref)), fuels=by_kind)


def _opt(value: Any) -> float | None:
    return None if value is None else float(value)


def file_entries() -> tuple[list[GridFactor], list[FuelFactor]]:
    """The factors of ``factors.json`` (fuels' CO2 factors derived where the file gives the
    guidelines' inputs)."""
    data = json.loads(FACTORS_FILE.read_text(encoding="utf-8"))
    grid = [
        GridFactor(
            year=g["year"],
            scope=g["scope"],
            area=g.get("area", ""),
            version=g.get("version", 1),
            kg_per_kwh=g["kg_per_kwh"],
            source=g["source"],
            published=g["published"],
        )
        for g in data["grid"]
    ]
    fuels = []
    for f in data["fuels"]:
        ncv, carbon, ox = f.get("ncv_gj_per_unit"), f.get("carbon_tc_per_gj"), f.get("oxidation")
        kg = derived(ncv, carbon, ox) if ncv is not None else f["kg_per_unit"]
        fuels.append(
            FuelFactor(
                kind=f["kind"],
                version=f.get("version", 1),
                unit=f["unit"],
                kg_per_unit=kg,
                kgce_per_unit=f["kgce_per_unit"],
                source=f["source"],
                ncv_gj_per_unit=ncv,
                carbon_tc_per_gj=carbon,
                oxidation=ox,
            )
        )
    return grid, fuels


async def seed(conn: Any, region_code: str) -> None:
    """Seeder (server.seeds.SEEDERS): the factors of ``factors.json`` that are not stored yet
    (by year, scope, area and version; by kind and version). Never overwrites a stored one."""
    grid, fuels = file_entries()
    async with conn.transaction():
        await repo.insert_grid_factors(conn, grid)
        await repo.insert_fuel_factors(conn, fuels)


async def publish_grid_factor(conn: Any, factor: GridFactor) -> GridFactor:
    """Store a grid factor as the next version of its year, scope and area (a corrected
    publication): results computed afterwards use it and record its version; results computed
    before keep theirs until recomputed."""
    rows = await repo.grid_factors(conn)
    versions = [
        r["version"]
        for r in rows
        if (r["year"], r["scope"], r["area"]) == (factor.year, factor.scope, factor.area)
    ]
    stored = GridFactor(
        year=factor.year,
        scope=factor.scope,
        area=factor.area,
        version=max(versions, default=0) + 1,
        kg_per_kwh=factor.kg_per_kwh,
        source=factor.source,
        published=factor.published,
    )
    await repo.insert_grid_factors(conn, [stored])
    return stored
