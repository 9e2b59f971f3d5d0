"""Lines the methods share: grid electricity at the year's grid factor, a fuel at the factor
library's factor, a quantity at one of the kind's params, a zero-carbon line. Not a method (no
``account``)."""

from __future__ import annotations

import math
from collections.abc import Iterable

from enterprises.errors import FactorMissing
from enterprises.kinds.registry import number
from enterprises.kinds.schemas import Activity, Emissions, Factors, Line


def grid(field: str, kwh: float, f: Factors) -> Line:
    g = f.grid
    return Line(
        field=field,
        quantity=kwh,
        unit="kWh",
        factor_ref=g.ref,
        factor_version=g.version,
        factor_kg=g.kg_per_kwh,
        emissions_kg=kwh * g.kg_per_kwh,
    )


def fuel(field: str, quantity: float, fuel_kind: str, f: Factors) -> Line:
    """``quantity`` (in the fuel's unit in the factor library) × the fuel's factor."""
    fuel = f.fuels.get(fuel_kind)
    if fuel is None:
        raise FactorMissing(
            f"No factor of {fuel_kind!r} in the factor library.", extra={"kind": fuel_kind}
        )
    return Line(
        field=field,
        quantity=quantity,
        unit=fuel.unit,
        factor_ref=fuel.ref,
        factor_version=fuel.version,
        factor_kg=fuel.kg_per_unit,
        emissions_kg=quantity * fuel.kg_per_unit,
    )


def zero(field: str, quantity: float, unit: str) -> Line:
    return Line(
        field=field,
        quantity=quantity,
        unit=unit,
        factor_ref="zero",
        factor_version=None,
        factor_kg=0.0,
        emissions_kg=0.0,
    )


def fuels(activity: Activity, f: Factors, fields: dict[str, str]) -> list[Line]:
    """A fuel line per field of ``fields`` (field -> fuel kind) present in ``activity``."""
    return [
        fuel(field, number(activity, field), k, f)
        for field, k in fields.items()
        if field in activity
    ]


def total(lines: Iterable[Line], figures: dict[str, float] | None = None) -> Emissions:
    ls = list(lines)
    return Emissions(
        emissions_kg=math.fsum(line.emissions_kg for line in ls),
        lines=ls,
        figures=figures or {},
    )
