"""The SQL of the energy-efficiency bill and the green-services facts (enterprises.efficiency_bill,
enterprises.green_services): reads only, over tables the enterprises package owns
(``enterprise_emissions``, ``enterprises``, ``meter_monthly``, ``enterprise_meters``,
``enterprise_sites``). Each function is one set-wise statement."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

# The economic kinds of enterprise_emissions (enterprises.accounting.ECONOMIC): no energy.
_ECONOMIC = ["added_value", "output", "tax"]


async def peer_intensities(
    conn: Any,
    basis: str,
    start: date,
    end: date,
    industry: str,
    min_peers: int,
) -> Any:
    """Over the enterprises whose GB/T 4754 code starts with ``industry`` (the industry at the
    grade's level) and which have, in the months [start, end), both energy rows and a positive
    added value: how many, and the medians of their energy intensity (t ce per 10,000 yuan)
    and carbon intensity (t CO2 per 10,000 yuan). The medians are NULL when there are fewer
    than ``min_peers`` of them: below the minimum the figure never leaves the database."""
    return await conn.fetchrow(
        """
        WITH per AS (
            SELECT x.enterprise_id,
                   sum(x.energy_kgce) FILTER (WHERE x.kind <> ALL($6::text[])) AS kgce,
                   sum(x.emissions_kg) FILTER (WHERE x.kind <> ALL($6::text[])) AS kg,
                   sum(x.quantity) FILTER (WHERE x.kind = 'added_value') AS added_value,
                   count(*) FILTER (WHERE x.kind <> ALL($6::text[])) AS energy_rows
            FROM enterprise_emissions x
            JOIN enterprises e ON e.id = x.enterprise_id
            WHERE x.basis = $1 AND x.month >= $2 AND x.month < $3
              AND e.industry LIKE $4 || '%'
            GROUP BY x.enterprise_id
        ), rated AS (
            SELECT kgce / 1000 / added_value AS energy_i, kg / 1000 / added_value AS carbon_i
            FROM per WHERE added_value > 0 AND energy_rows > 0
        )
        SELECT count(*)::int AS peers,
               CASE WHEN count(*) >= $5 THEN
                   percentile_cont(0.5) WITHIN GROUP (ORDER BY energy_i) END AS energy_median,
               CASE WHEN count(*) >= $5 THEN
                   percentile_cont(0.5) WITHIN GROUP (ORDER BY carbon_i) END AS carbon_median
        FROM rated
        """,
        basis,
        start,
        end,
        industry,
        min_peers,
        _ECONOMIC,
    )


async def metered_use(conn: Any, enterprise_id: uuid.UUID, start: date, end: date) -> list[Any]:
    """The enterprise's metered use of the months [start, end) by site, equipment class (NULL:
    unclassified) and energy kind: quantity summed (flagged readings excluded, as in
    ``meter_monthly``) and the number of meters."""
    return list(
        await conn.fetch(
            """
            SELECT s.id AS site_id, s.name AS site, m.equipment_class, mm.kind,
                   sum(mm.quantity) AS quantity, count(DISTINCT m.id)::int AS meters
            FROM meter_monthly mm
            JOIN enterprise_meters m ON m.id = mm.meter_id
            JOIN enterprise_sites s ON s.id = m.site_id
            WHERE mm.enterprise_id = $1 AND mm.month >= $2 AND mm.month < $3
            GROUP BY s.id, s.name, m.equipment_class, mm.kind
            ORDER BY s.name, m.equipment_class NULLS LAST, mm.kind
            """,
            enterprise_id,
            start,
            end,
        )
    )


async def equipment_classes(conn: Any, enterprise_id: uuid.UUID) -> list[str]:
    """The equipment classes the enterprise's meters carry."""
    rows = await conn.fetch(
        """
        SELECT DISTINCT equipment_class FROM enterprise_meters
        WHERE enterprise_id = $1 AND equipment_class IS NOT NULL ORDER BY 1
        """,
        enterprise_id,
    )
    return [r["equipment_class"] for r in rows]
