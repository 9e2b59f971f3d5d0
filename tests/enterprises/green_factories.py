"""The worked district of the green-services and bill tests, made through the enterprises
package's services: five cement makers (GB/T 4754 C3011) with a year of uniform months.

Enterprise 1 (the one under test), each month of 2025: 250,000 kWh of grid electricity,
2,000 GJ of purchased steam, 500 (10,000 yuan) of added value. Under the default basis (each
month's own year: 2025 takes the latest national factor published before it, 2023's 0.5306 kg
CO2/kWh) and the factor library (electricity 0.1229 kgce/kWh; steam 110 kg CO2 and 34.12 kgce
per GJ), its year is:

    electricity 3,000,000 kWh: 1,591.8 t CO2, 368.7 t ce
    steam 24,000 GJ:           2,640.0 t CO2, 818.88 t ce
    total 4,231.8 t CO2, 1,187.58 t ce, added value 6,000: L = 0.7053, energy 0.19793 t ce/10k

Peers 2-5: electricity only, X kWh and 100 of added value a month, X = 100k, 300k, 400k,
500k: energy intensity X × 1.229e-6 (0.1229, 0.3687, 0.4916, 0.6145), carbon X × 5.306e-6
(0.5306, 1.5918, 2.1224, 2.653).
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from enterprises.activity import ActivityRow
from tests.enterprises.accounting_factories import enterprises, recorded, year_rows

YEAR = 2025
INDUSTRY = "C3011"
PEER_KWH = (100_000, 300_000, 400_000, 500_000)
OWN = {"electricity": 250_000.0, "steam": 2_000.0, "added_value": 500.0}


async def district(
    pool: Any, *, own: uuid.UUID | None = None, peers: tuple[int, ...] = PEER_KWH
) -> list[uuid.UUID]:
    """Enterprise 1 (``own``: registered already, e.g. with its administrator) and its peers
    (ids in that order), their year 2025 recorded."""
    if own is None:
        ids = await enterprises(pool, 1 + len(peers), industry=INDUSTRY)
    else:
        ids = [own, *await enterprises(pool, len(peers), industry=INDUSTRY, first=2)]
    rows: list[ActivityRow] = year_rows(ids[0], YEAR, OWN)
    for eid, kwh in zip(ids[1:], peers, strict=True):
        rows += year_rows(eid, YEAR, {"electricity": float(kwh), "added_value": 100.0})
    await recorded(pool, rows, start=date(YEAR, 1, 1), end=date(YEAR + 1, 1, 1))
    return ids
