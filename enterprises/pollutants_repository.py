"""All SQL of the enterprises' pollutant table (migration 0049, ``enterprise_pollutants``),
with the added value it is divided by read from ``enterprise_emissions`` (the same package's
accounting table). Set-wise: each function is one statement (or a fixed two) whatever the
number of rows."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

_LINE = "enterprise_id, month, pollutant, source, amount_kg, given_amount, given_unit, recorded_at"


async def replace_months(
    conn: Any,
    keys: Sequence[tuple[Any, date]],
    rows: Sequence[tuple[Any, date, str, str, float, float, str, Any]],
) -> tuple[list[Any], list[Any]]:
    """The lines of the (enterprise, month) ``keys`` replaced by ``rows`` (enterprise, month,
    pollutant, source, amount_kg, given_amount, given_unit, recorded_by): three statements.
    The keys are locked first (transaction advisory locks, taken in one order), so two
    replacements of one month queue instead of colliding on its first insert. Returns the
    (enterprise_id, month) of each line deleted and the lines written."""
    await conn.execute(
        """
        SELECT pg_advisory_xact_lock(h) FROM (
            SELECT DISTINCT hashtextextended('enterprise_pollutants:' || e::text || ':'
                                             || m::text, 0) AS h
            FROM unnest($1::uuid[], $2::date[]) AS k(e, m)) AS x
        ORDER BY h
        """,
        [k[0] for k in keys],
        [k[1] for k in keys],
    )
    deleted = await conn.fetch(
        """
        DELETE FROM enterprise_pollutants p
        USING unnest($1::uuid[], $2::date[]) AS k(enterprise_id, month)
        WHERE p.enterprise_id = k.enterprise_id AND p.month = k.month
        RETURNING p.enterprise_id, p.month
        """,
        [k[0] for k in keys],
        [k[1] for k in keys],
    )
    written = await conn.fetch(
        f"""
        INSERT INTO enterprise_pollutants
            (enterprise_id, month, pollutant, source, amount_kg, given_amount, given_unit,
             recorded_by)
        SELECT * FROM unnest($1::uuid[], $2::date[], $3::text[], $4::text[], $5::float8[],
                             $6::float8[], $7::text[], $8::uuid[])
        RETURNING {_LINE}
        """,
        [r[0] for r in rows],
        [r[1] for r in rows],
        [r[2] for r in rows],
        [r[3] for r in rows],
        [r[4] for r in rows],
        [r[5] for r in rows],
        [r[6] for r in rows],
        [r[7] for r in rows],
    )
    return list(deleted), list(written)


async def lines(conn: Any, enterprise_id: Any, start: date, end: date) -> list[Any]:
    """An enterprise's lines of the months [start, end), by month, pollutant and source."""
    return list(
        await conn.fetch(
            f"""
            SELECT {_LINE} FROM enterprise_pollutants
            WHERE enterprise_id = $1 AND month >= $2 AND month < $3
            ORDER BY month, pollutant, source
            """,
            enterprise_id,
            start,
            end,
        )
    )


async def accounted(
    conn: Any,
    basis: str,
    sources: Sequence[str],
    start: date,
    end: date,
    *,
    enterprise_ids: Sequence[Any] | None = None,
    industry_prefix: str | None = None,
) -> list[Any]:
    """Per enterprise, month of [start, end) and pollutant: the amount of its most trusted
    source (``sources``, most trusted first), with the enterprise's industry and district and
    the month's added value under ``basis`` (NULL when none is recorded). One statement."""
    return list(
        await conn.fetch(
            """
            SELECT DISTINCT ON (p.enterprise_id, p.month, p.pollutant)
                   p.enterprise_id, e.industry, e.district_code, p.month, p.pollutant,
                   p.source, p.amount_kg, v.quantity AS added_value
            FROM enterprise_pollutants p
            JOIN enterprises e ON e.id = p.enterprise_id
            LEFT JOIN enterprise_emissions v
              ON v.basis = $1 AND v.enterprise_id = p.enterprise_id AND v.month = p.month
             AND v.kind = 'added_value'
            WHERE p.month >= $3 AND p.month < $4
              AND ($5::uuid[] IS NULL OR p.enterprise_id = ANY($5::uuid[]))
              AND ($6::text IS NULL OR e.industry LIKE $6 || '%')
            ORDER BY p.enterprise_id, p.month, p.pollutant, array_position($2::text[], p.source)
            """,
            basis,
            list(sources),
            start,
            end,
            None if enterprise_ids is None else list(enterprise_ids),
            industry_prefix,
        )
    )
