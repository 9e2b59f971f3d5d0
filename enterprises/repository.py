"""All SQL of the enterprises' table (enterprises). Other packages reach it through
``enterprises.service``, never with SQL of their own."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from enterprises.schemas import Enterprise, EnterpriseIn

_COLUMNS = "id, credit_code, name, industry, district_code, size_class, registered_at, kind"


def _enterprise(row: Any) -> Enterprise:
    return Enterprise(
        id=row["id"],
        credit_code=row["credit_code"],
        name=row["name"],
        industry=row["industry"],
        district=row["district_code"],
        size_class=row["size_class"],
        registered_at=row["registered_at"],
        kind=row["kind"],
    )


async def insert_missing(conn: Any, rows: Sequence[EnterpriseIn]) -> dict[str, Enterprise]:
    """Insert the rows whose credit code is not registered yet (one statement, in credit-code
    order so two concurrent imports lock in the same order); the inserted rows by credit code.
    The unique credit code decides: a row registered meanwhile is skipped, never duplicated."""
    await conn.execute("SET LOCAL plan_cache_mode = force_custom_plan")
    ordered = sorted(rows, key=lambda r: r.credit_code)
    inserted = await conn.fetch(
        f"""
        INSERT INTO enterprises (credit_code, name, industry, district_code, size_class, kind)
        SELECT * FROM unnest(
            $1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[]
        )
        ORDER BY 1
        ON CONFLICT (credit_code) DO NOTHING
        RETURNING {_COLUMNS}
        """,
        [r.credit_code for r in ordered],
        [r.name for r in ordered],
        [r.industry for r in ordered],
        [r.district for r in ordered],
        [r.size_class for r in ordered],
        [r.kind for r in ordered],
    )
    return {r["credit_code"]: _enterprise(r) for r in inserted}


async def by_credit_codes(conn: Any, codes: Sequence[str]) -> dict[str, Enterprise]:
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM enterprises WHERE credit_code = ANY($1::text[])", list(codes)
    )
    return {r["credit_code"]: _enterprise(r) for r in rows}
