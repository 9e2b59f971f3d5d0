"""Buildings: grid electricity at the year's grid factor, on-site PV zero-carbon, gas, LPG,
generators' diesel and purchased heat at the factor library's factors, per square metre of
floor area (graded A-E by building type, account_kinds.json)."""

from __future__ import annotations

from typing import Final

from enterprises.kinds.methods import common
from enterprises.kinds.registry import number
from enterprises.kinds.schemas import Activity, Emissions, Factors

REQUIRES: Final = ("floor_area_m2", "electricity_kwh")
FUELS: Final = {
    "natural_gas_m3": "natural_gas",
    "lpg_t": "lpg",
    "diesel_t": "diesel",
    "heat_gj": "heat",
}


def account(activity: Activity, factors: Factors) -> Emissions:
    lines = [common.grid("electricity_kwh", number(activity, "electricity_kwh"), factors)]
    if "onsite_renewable_kwh" in activity:
        lines.append(
            common.zero("onsite_renewable_kwh", number(activity, "onsite_renewable_kwh"), "kWh")
        )
    lines += common.fuels(activity, factors, FUELS)
    return common.total(lines)
