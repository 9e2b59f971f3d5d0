"""Agriculture: machinery fuel at the factor library's factors, electricity at the year's grid
factor, and the direct N2O of nitrogen applied: kg N × EF1 (kg N2O-N per kg N) × 44/28 ×
GWP100 of N2O (the kind's params, with their sources), in kg CO2e; per 10,000 yuan of output
value."""

from __future__ import annotations

from typing import Final

from enterprises.kinds.methods import common
from enterprises.kinds.registry import number
from enterprises.kinds.schemas import Activity, Emissions, Factors, Line

REQUIRES: Final = ("output_value_10k_cny", "nitrogen_kg")
FUELS: Final = {"diesel_t": "diesel", "gasoline_t": "gasoline"}


def account(activity: Activity, factors: Factors) -> Emissions:
    lines = common.fuels(activity, factors, FUELS)
    if "electricity_kwh" in activity:
        lines.append(common.grid("electricity_kwh", number(activity, "electricity_kwh"), factors))
    if "nitrogen_kg" in activity:
        p = factors.params
        per_kg_n = p["n2o_ef_direct"] * p["n2o_per_n2o_n"] * p["gwp_n2o"]
        n = number(activity, "nitrogen_kg")
        lines.append(
            Line(
                field="nitrogen_kg",
                quantity=n,
                unit="kg N",
                factor_ref="param:n2o_ef_direct*n2o_per_n2o_n*gwp_n2o",
                factor_version=None,
                factor_kg=per_kg_n,
                emissions_kg=n * per_kg_n,
            )
        )
    return common.total(lines)
