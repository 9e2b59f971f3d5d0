"""All SQL of donation's tables (``donation_projects``, ``donations``; migration 0051)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from rewards.donation_schemas import ProjectInput

_PROJECT_COLUMNS = (
    "id::text AS id, title, beneficiary, description, target_asset, target_amount, starts_at, "
    "ends_at"
)


async def insert_project(conn: Any, p: ProjectInput) -> Any:
    return await conn.fetchrow(
        f"""
        INSERT INTO donation_projects
            (title, beneficiary, description, target_asset, target_amount, starts_at, ends_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7)
        RETURNING {_PROJECT_COLUMNS}
        """,
        p.title,
        p.beneficiary,
        p.description,
        p.target_asset,
        p.target_amount,
        p.starts_at,
        p.ends_at,
    )


async def project(conn: Any, project_id: str) -> Any:
    try:
        canonical = str(uuid.UUID(project_id))
    except ValueError:  # not a uuid: no such project (checked here: no failed statement)
        return None
    return await conn.fetchrow(
        f"SELECT {_PROJECT_COLUMNS} FROM donation_projects WHERE id = $1::uuid", canonical
    )


async def projects_page(
    conn: Any, before: tuple[datetime, str] | None, limit: int, *, open_at: datetime | None
) -> list[Any]:
    """Projects newest start first (keyset on (starts_at, id)); ``open_at``: only those
    taking donations at that time."""
    return list(
        await conn.fetch(
            f"""
            SELECT {_PROJECT_COLUMNS} FROM donation_projects
            WHERE ($1::timestamptz IS NULL OR (starts_at, id) < ($1, $2::uuid))
              AND ($3::timestamptz IS NULL OR (starts_at <= $3 AND ends_at > $3))
            ORDER BY starts_at DESC, id DESC
            LIMIT $4
            """,
            before[0] if before else None,
            before[1] if before else None,
            open_at,
            limit,
        )
    )


async def project_totals(conn: Any, project_ids: Sequence[str]) -> dict[str, Any]:
    """Per project: points donated, grams retired, donations, distinct donors (one statement)."""
    rows = await conn.fetch(
        """
        SELECT project_id::text AS project_id,
               coalesce(sum(amount) FILTER (WHERE asset = 'POINT'), 0)::bigint AS points,
               coalesce(sum(amount) FILTER (WHERE asset = 'CO2E_G'), 0)::bigint AS grams,
               count(*) AS donations, count(DISTINCT resident_id) AS donors
        FROM donations
        WHERE project_id = ANY($1::uuid[])
        GROUP BY project_id
        """,
        list(project_ids),
    )
    return {r["project_id"]: r for r in rows}


async def insert_donation(
    conn: Any,
    *,
    vintage: int,
    asset: str,
    project_id: str,
    resident_id: str,
    donor: str,
    amount: int,
) -> Any:
    return await conn.fetchrow(
        """
        INSERT INTO donations (vintage, asset, project_id, resident_id, donor, amount)
        VALUES ($1, $2, $3::uuid, $4::uuid, $5, $6)
        RETURNING id, serial, donated_at
        """,
        vintage,
        asset,
        project_id,
        resident_id,
        donor,
        amount,
    )


async def set_transfers(conn: Any, donation_id: int, pool_transfer: int, transfer: int) -> None:
    await conn.execute(
        "UPDATE donations SET pool_transfer_id = $2, transfer_id = $3 WHERE id = $1",
        donation_id,
        pool_transfer,
        transfer,
    )


_DONATION = """
SELECT d.id, d.serial, d.asset, d.amount, d.donor, d.donated_at, d.transfer_id,
       d.project_id::text AS project_id, p.title AS project_title, p.beneficiary
FROM donations d JOIN donation_projects p ON p.id = d.project_id
"""


async def donation_by_serial(conn: Any, serial: str) -> Any:
    return await conn.fetchrow(_DONATION + " WHERE d.serial = $1", serial)


async def resident_donations(
    conn: Any, resident_id: str, before_id: int | None, limit: int
) -> list[Any]:
    """A resident's donations newest first (keyset on id)."""
    return list(
        await conn.fetch(
            _DONATION
            + """
            WHERE d.resident_id = $1::uuid AND ($2::bigint IS NULL OR d.id < $2)
            ORDER BY d.id DESC LIMIT $3
            """,
            resident_id,
            before_id,
            limit,
        )
    )


async def retired_grams_of_vintage(conn: Any, vintage: int) -> int:
    """Grams residents retired (donations of CO2E_G) of ``vintage`` (enterprises.pooling)."""
    return int(
        await conn.fetchval(
            "SELECT coalesce(sum(amount), 0)::bigint FROM donations"
            " WHERE asset = 'CO2E_G' AND vintage = $1",
            vintage,
        )
    )
