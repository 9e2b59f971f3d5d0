"""Resident households, kept simple: electricity at the year's grid factor, piped gas and
bottled LPG at the factor library's factors, and car travel as petrol: km × L/100 km ÷ 100 ×
kg/L ÷ 1000 = t of petrol at petrol's factor (the kind's params). Graded per household; per
person beside it when the household's size is given (figure ``kg_per_person``)."""

from __future__ import annotations

from typing import Final

from enterprises.kinds.methods import common
from enterprises.kinds.registry import number
from enterprises.kinds.schemas import Activity, Emissions, Factors

REQUIRES: Final = ("electricity_kwh", "car_km", "household_size")


def account(activity: Activity, factors: Factors) -> Emissions:
    lines = [common.grid("electricity_kwh", number(activity, "electricity_kwh"), factors)]
    if "natural_gas_m3" in activity:
        lines.append(
            common.fuel(
                "natural_gas_m3", number(activity, "natural_gas_m3"), "natural_gas", factors
            )
        )
    if "lpg_kg" in activity:
        lines.append(common.fuel("lpg_kg", number(activity, "lpg_kg") / 1000, "lpg", factors))
    if "car_km" in activity:
        p = factors.params
        kg = number(activity, "car_km") * p["car_l_per_100km"] / 100 * p["gasoline_kg_per_l"]
        lines.append(common.fuel("car_km", kg / 1000, "gasoline", factors))
    e = common.total(lines)
    persons = number(activity, "household_size")
    if persons > 0:
        return common.total(e.lines, {"kg_per_person": e.emissions_kg / persons})
    return e
