"""Road transport: the fleet's diesel, petrol and gas at the factor library's factors and its
charging at the year's grid factor, per tonne-km of freight; per vehicle-km beside it when the
fleet's distance is given (figure ``g_per_vehicle_km``, not graded)."""

from __future__ import annotations

from typing import Final

from enterprises.kinds.methods import common
from enterprises.kinds.registry import number
from enterprises.kinds.schemas import Activity, Emissions, Factors

REQUIRES: Final = ("tonne_km",)
FUELS: Final = {"diesel_t": "diesel", "gasoline_t": "gasoline", "natural_gas_m3": "natural_gas"}


def account(activity: Activity, factors: Factors) -> Emissions:
    lines = common.fuels(activity, factors, FUELS)
    if "electricity_kwh" in activity:
        lines.append(common.grid("electricity_kwh", number(activity, "electricity_kwh"), factors))
    e = common.total(lines)
    vkm = number(activity, "vehicle_km")
    if vkm > 0:
        return common.total(e.lines, {"g_per_vehicle_km": e.emissions_kg * 1000 / vkm})
    return e
