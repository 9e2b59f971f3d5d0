"""All SQL of the reporting tables (migration 0065): the rollups, their refresh marks and the
reconciliation runs. A period is always replaced whole (delete, then COPY), in the caller's
transaction, so a report never sees half a period."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

import msgspec

TRAVEL_COLUMNS = (
    "grain", "period", "district", "mode", "methodology",
    "trips", "participants", "grams", "points", "suppressed",
)  # fmt: skip
POINTS_COLUMNS = (
    "day", "issued", "clawed_back", "redeemed", "refunded", "expired", "donated",
    "other_in", "other_out", "grams_issued", "grams_retired",
)  # fmt: skip
ENTERPRISE_COLUMNS = (
    "grain", "period", "district", "industry", "firms", "emissions_kg", "energy_kgce",
    "top1_kg", "top2_kg", "offsets_g", "suppressed",
)  # fmt: skip
GRADE_COLUMNS = ("year", "district", "industry", "grade", "firms", "suppressed")


async def replace_travel(
    conn: Any, grain: str, periods: Sequence[date], rows: Sequence[tuple[Any, ...]]
) -> None:
    await conn.execute(
        "DELETE FROM reporting_travel WHERE grain = $1 AND period = ANY($2::date[])",
        grain,
        list(periods),
    )
    if rows:
        await conn.copy_records_to_table("reporting_travel", records=rows, columns=TRAVEL_COLUMNS)


async def travel_rows(
    conn: Any,
    grain: str,
    first: date,
    last: date,
    *,
    district: str | None = None,
    mode: str | None = None,
    all_methodologies: bool = True,
) -> list[Any]:
    """Rows of the periods [first, last] of ``grain`` (``district`` / ``mode``: only that
    value, '*' included; None: every value). Methodology margins only unless asked."""
    return list(
        await conn.fetch(
            """
            SELECT period, district, mode, methodology, trips, participants, grams, points,
                   suppressed
            FROM reporting_travel
            WHERE grain = $1 AND period >= $2 AND period <= $3
              AND ($4::text IS NULL OR district = $4)
              AND ($5::text IS NULL OR mode = $5)
              AND (NOT $6 OR methodology = '*')
            ORDER BY period, district, mode, methodology
            """,
            grain,
            first,
            last,
            district,
            mode,
            all_methodologies,
        )
    )


async def travel_tables(conn: Any, grain: str, first: date, last: date) -> list[Any]:
    """The published tables (methodology margins) of the periods [first, last]: what the
    protection of linked periods reads."""
    return list(
        await conn.fetch(
            """
            SELECT period, district, mode, participants, grams, suppressed
            FROM reporting_travel
            WHERE grain = $1 AND period >= $2 AND period <= $3 AND methodology = '*'
            """,
            grain,
            first,
            last,
        )
    )


async def suppress_travel(conn: Any, grain: str, keys: Sequence[tuple[date, str, str]]) -> None:
    """Suppress more cells ((period, district, mode) of the methodology margins)."""
    if not keys:
        return
    await conn.execute(
        """
        UPDATE reporting_travel t SET suppressed = true
        FROM unnest($2::date[], $3::text[], $4::text[]) AS k (period, district, mode)
        WHERE t.grain = $1 AND t.period = k.period AND t.district = k.district
          AND t.mode = k.mode AND t.methodology = '*'
        """,
        grain,
        [k[0] for k in keys],
        [k[1] for k in keys],
        [k[2] for k in keys],
    )


async def travel_day_totals(conn: Any, first: date, last: date) -> dict[date, tuple[int, int, int]]:
    """(grams, points, trips) of each day's grand total in [first, last]."""
    rows = await conn.fetch(
        """
        SELECT period, grams, points, trips FROM reporting_travel
        WHERE grain = 'day' AND period >= $1 AND period <= $2
          AND district = '*' AND mode = '*' AND methodology = '*'
        """,
        first,
        last,
    )
    return {r["period"]: (int(r["grams"]), int(r["points"]), int(r["trips"])) for r in rows}


async def travel_cells(conn: Any, grain: str, first: date, last: date) -> list[Any]:
    """Every row of the periods (the reconciliation compares them cell by cell)."""
    return list(
        await conn.fetch(
            """
            SELECT period, district, mode, methodology, trips, participants, grams, points
            FROM reporting_travel WHERE grain = $1 AND period >= $2 AND period <= $3
            """,
            grain,
            first,
            last,
        )
    )


async def replace_points(
    conn: Any, first: date, last: date, rows: Sequence[tuple[Any, ...]]
) -> None:
    await conn.execute("DELETE FROM reporting_points WHERE day >= $1 AND day <= $2", first, last)
    if rows:
        await conn.copy_records_to_table("reporting_points", records=rows, columns=POINTS_COLUMNS)


async def points_rows(conn: Any, first: date, last: date) -> list[Any]:
    return list(
        await conn.fetch(
            f"SELECT {', '.join(POINTS_COLUMNS)} FROM reporting_points "
            "WHERE day >= $1 AND day <= $2 ORDER BY day",
            first,
            last,
        )
    )


async def points_before(conn: Any, day: date) -> Any:
    """Sums of every flow of the days before ``day`` (the outstanding points at its start)."""
    return await conn.fetchrow(
        f"SELECT {', '.join(f'coalesce(sum({c}), 0)::bigint AS {c}' for c in POINTS_COLUMNS[1:])} "
        "FROM reporting_points WHERE day < $1",
        day,
    )


async def replace_enterprise(
    conn: Any, grain: str, periods: Sequence[date], rows: Sequence[tuple[Any, ...]]
) -> None:
    await conn.execute(
        "DELETE FROM reporting_enterprise WHERE grain = $1 AND period = ANY($2::date[])",
        grain,
        list(periods),
    )
    if rows:
        await conn.copy_records_to_table(
            "reporting_enterprise", records=rows, columns=ENTERPRISE_COLUMNS
        )


async def enterprise_rows(
    conn: Any, grain: str, first: date, last: date, *, district: str | None, industry: str | None
) -> list[Any]:
    return list(
        await conn.fetch(
            f"""
            SELECT {", ".join(ENTERPRISE_COLUMNS[1:])} FROM reporting_enterprise
            WHERE grain = $1 AND period >= $2 AND period <= $3
              AND ($4::text IS NULL OR district = $4)
              AND ($5::text IS NULL OR industry = $5)
            ORDER BY period, district, industry
            """,
            grain,
            first,
            last,
            district,
            industry,
        )
    )


async def replace_grades(conn: Any, years: Sequence[int], rows: Sequence[tuple[Any, ...]]) -> None:
    await conn.execute("DELETE FROM reporting_grades WHERE year = ANY($1::int[])", list(years))
    if rows:
        await conn.copy_records_to_table("reporting_grades", records=rows, columns=GRADE_COLUMNS)


async def grade_rows(
    conn: Any, year: int, *, district: str | None, industry: str | None
) -> list[Any]:
    return list(
        await conn.fetch(
            """
            SELECT district, industry, grade, firms, suppressed FROM reporting_grades
            WHERE year = $1 AND ($2::text IS NULL OR district = $2)
              AND ($3::text IS NULL OR industry = $3)
            ORDER BY district, industry, grade
            """,
            year,
            district,
            industry,
        )
    )


async def mark_refreshed(conn: Any, rollup: str, first: date, last: date, at: datetime) -> None:
    await conn.execute(
        """
        INSERT INTO reporting_refreshes (rollup, refreshed_at, first_day, last_day)
        VALUES ($1, $2, $3, $4)
        ON CONFLICT (rollup) DO UPDATE SET refreshed_at = excluded.refreshed_at,
            first_day = least(reporting_refreshes.first_day, excluded.first_day),
            last_day = greatest(reporting_refreshes.last_day, excluded.last_day)
        """,
        rollup,
        at,
        first,
        last,
    )


async def refreshes(conn: Any) -> dict[str, datetime]:
    rows = await conn.fetch("SELECT rollup, refreshed_at FROM reporting_refreshes")
    return {r["rollup"]: r["refreshed_at"] for r in rows}


async def insert_reconciliation(
    conn: Any, first: date, last: date, ok: bool, differences: Sequence[Any]
) -> int:
    return int(
        await conn.fetchval(
            """
            INSERT INTO reporting_reconciliations (first_day, last_day, ok, differences)
            VALUES ($1, $2, $3, $4::jsonb) RETURNING id
            """,
            first,
            last,
            ok,
            msgspec.to_builtins(list(differences)),  # a JSON array (the pool's jsonb codec)
        )
    )


async def last_reconciliation(conn: Any) -> Any:
    return await conn.fetchrow(
        "SELECT id, checked_at, first_day, last_day, ok, differences "
        "FROM reporting_reconciliations ORDER BY id DESC LIMIT 1"
    )
