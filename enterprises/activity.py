"""Enterprises' activity data as accounting reads it: the contract between the data side
(meters, readings, monthly and annual reports: ``enterprises.energy``) and the accounting side
(factors, emissions, grades, alerts: ``enterprises.accounting``).

Every quantity is in its kind's canonical unit (``CANONICAL_UNITS``), converted on the way in;
a month is the programme's calendar month (``TANPUHUI_TIMEZONE``), named by its first day.
``enterprises.energy.monthly_activity(conn, start=..., end=..., enterprise_ids=...)`` answers
``ActivityRow`` s, one per enterprise, month and kind: meters' readings summed (flagged readings
excluded) and reports' lines, a report superseding the meters for the kinds it reports. Green
electricity appears only as far as its certificate serials were claimed by that enterprise.
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import Final, Literal

from msgspec import Struct

# Energy carriers an enterprise consumes or generates.
EnergyKind = Literal[
    "electricity",  # purchased grid electricity
    "natural_gas",
    "coal",  # raw coal
    "gasoline",
    "diesel",
    "fuel_oil",
    "lpg",
    "heat",  # purchased heat
    "steam",  # purchased steam
    "onsite_renewable",  # on-site PV / wind generation consumed
    "green_electricity",  # purchased green electricity with certificate serials
]
# Economic denominators of the intensities.
EconomicKind = Literal["added_value", "output", "tax"]
ActivityKind = Literal[
    "electricity",
    "natural_gas",
    "coal",
    "gasoline",
    "diesel",
    "fuel_oil",
    "lpg",
    "heat",
    "steam",
    "onsite_renewable",
    "green_electricity",
    "added_value",
    "output",
    "tax",
]

CANONICAL_UNITS: Final[dict[str, str]] = {
    "electricity": "kWh",
    "natural_gas": "m3",  # normal cubic metres
    "coal": "t",
    "gasoline": "t",
    "diesel": "t",
    "fuel_oil": "t",
    "lpg": "t",
    "heat": "GJ",
    "steam": "GJ",
    "onsite_renewable": "kWh",
    "green_electricity": "kWh",
    "added_value": "10k_CNY",  # 万元
    "output": "unit",  # the enterprise's own product unit
    "tax": "10k_CNY",
}

Source = Literal["meter", "report"]


class ActivityRow(Struct, frozen=True, kw_only=True):
    enterprise_id: uuid.UUID
    month: date  # the first day of the month
    kind: ActivityKind
    quantity: float  # in CANONICAL_UNITS[kind]
    source: Source
