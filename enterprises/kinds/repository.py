"""All SQL of the kind accounts (``enterprise_kind_accounts``) and of the enterprise's
``kind`` column (the registry's table, this package's too)."""

from __future__ import annotations

import uuid
from typing import Any

_COLUMNS = (
    "enterprise_id, year, kind, method, basis, activity, emissions_kg, denominator, "
    "intensity, grade, result, recorded_at"
)


async def enterprise_kind(conn: Any, enterprise_id: uuid.UUID) -> str | None:
    kind: str | None = await conn.fetchval(
        "SELECT kind FROM enterprises WHERE id = $1", enterprise_id
    )
    return kind


async def upsert(
    conn: Any,
    *,
    enterprise_id: uuid.UUID,
    year: int,
    kind: str,
    method: str,
    basis: str,
    activity: dict[str, Any],  # jsonb (kit.db's codec encodes it)
    emissions_kg: float,
    denominator: float,
    intensity: float | None,
    grade: str | None,
    result: dict[str, Any],
) -> Any:
    """Store the year's account; the same activity, kind, basis and result again leaves the
    row (and its recorded_at) as it is. The row as stored."""
    row = await conn.fetchrow(
        f"""
        INSERT INTO enterprise_kind_accounts
            (enterprise_id, year, kind, method, basis, activity, emissions_kg, denominator,
             intensity, grade, result)
        VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $8, $9, $10, $11::jsonb)
        ON CONFLICT (enterprise_id, year) DO UPDATE SET
            kind = EXCLUDED.kind, method = EXCLUDED.method, basis = EXCLUDED.basis,
            activity = EXCLUDED.activity, emissions_kg = EXCLUDED.emissions_kg,
            denominator = EXCLUDED.denominator, intensity = EXCLUDED.intensity,
            grade = EXCLUDED.grade, result = EXCLUDED.result, recorded_at = now()
        WHERE (enterprise_kind_accounts.kind, enterprise_kind_accounts.basis,
               enterprise_kind_accounts.activity, enterprise_kind_accounts.result)
              IS DISTINCT FROM (EXCLUDED.kind, EXCLUDED.basis, EXCLUDED.activity,
                                EXCLUDED.result)
        RETURNING {_COLUMNS}
        """,
        enterprise_id,
        year,
        kind,
        method,
        basis,
        activity,
        emissions_kg,
        denominator,
        intensity,
        grade,
        result,
    )
    if row is None:  # unchanged
        row = await one(conn, enterprise_id, year)
    return row


async def one(conn: Any, enterprise_id: uuid.UUID, year: int) -> Any:
    return await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM enterprise_kind_accounts WHERE enterprise_id = $1 AND year = $2",
        enterprise_id,
        year,
    )


async def of_enterprise(conn: Any, enterprise_id: uuid.UUID) -> list[Any]:
    rows: list[Any] = await conn.fetch(
        f"SELECT {_COLUMNS} FROM enterprise_kind_accounts WHERE enterprise_id = $1 "
        "ORDER BY year DESC",
        enterprise_id,
    )
    return rows
