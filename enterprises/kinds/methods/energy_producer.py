"""Energy producers (power and heat plants): fuels burned at the factor library's factors
(scope 1) and grid electricity bought (scope 2), over the energy supplied (electricity sent
out plus heat supplied at 277.7778 kWh/GJ, the kind's denominator in account_kinds.json)."""

from __future__ import annotations

from typing import Final

from enterprises.kinds.methods import common
from enterprises.kinds.registry import number
from enterprises.kinds.schemas import Activity, Emissions, Factors

REQUIRES: Final = ("supplied_electricity_kwh", "supplied_heat_gj")
FUELS: Final = {
    "coal_t": "coal",
    "natural_gas_m3": "natural_gas",
    "fuel_oil_t": "fuel_oil",
    "diesel_t": "diesel",
}


def account(activity: Activity, factors: Factors) -> Emissions:
    lines = common.fuels(activity, factors, FUELS)
    if "purchased_electricity_kwh" in activity:
        kwh = number(activity, "purchased_electricity_kwh")
        lines.append(common.grid("purchased_electricity_kwh", kwh, factors))
    return common.total(lines)
