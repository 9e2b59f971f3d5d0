"""Industrial enterprises (Zhejiang's carbon-efficiency method, enterprises/accounting.py on a
year's totals): grid electricity at the year's grid factor, less the claimed green
electricity (at most the grid kWh, at the same factor); on-site renewables zero-carbon; fuels,
purchased heat and steam at the factor library's factors. The denominator is the added value;
the grade is K against the industry (enterprises/grades.py), so the programme grades industry
from its activity reports with its peers, and this module is what a year's totals make."""

from __future__ import annotations

from typing import Final

from enterprises.kinds.methods import common
from enterprises.kinds.registry import number
from enterprises.kinds.schemas import Activity, Emissions, Factors

REQUIRES: Final = ("electricity_kwh", "added_value_10k_cny")
FUELS: Final = {
    "natural_gas_m3": "natural_gas",
    "coal_t": "coal",
    "gasoline_t": "gasoline",
    "diesel_t": "diesel",
    "fuel_oil_t": "fuel_oil",
    "lpg_t": "lpg",
    "heat_gj": "heat",
    "steam_gj": "steam",
}


def account(activity: Activity, factors: Factors) -> Emissions:
    kwh = number(activity, "electricity_kwh")
    lines = [common.grid("electricity_kwh", kwh, factors)]
    if "green_electricity_kwh" in activity:
        green = min(number(activity, "green_electricity_kwh"), kwh)
        line = common.grid("green_electricity_kwh", -green, factors)
        lines.append(line)
    if "onsite_renewable_kwh" in activity:
        lines.append(
            common.zero("onsite_renewable_kwh", number(activity, "onsite_renewable_kwh"), "kWh")
        )
    lines += common.fuels(activity, factors, FUELS)
    return common.total(lines)
