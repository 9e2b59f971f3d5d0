"""All SQL of the enterprises' accounting tables (migration 0042): the factor library
(``enterprise_grid_factors``, ``enterprise_fuel_factors``), ``enterprise_emissions``,
``enterprise_budgets``, ``enterprise_alerts`` and ``enterprise_reduction_credits``. Set-wise:
each function is one statement (or a fixed few) whatever the number of rows."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from enterprises.accounting import EmissionRow
    from enterprises.factors import FuelFactor, GridFactor

# --- the factor library ------------------------------------------------------------------------


async def insert_grid_factors(conn: Any, rows: Sequence[GridFactor]) -> None:
    await conn.execute(
        """
        INSERT INTO enterprise_grid_factors
            (year, scope, area, version, kg_per_kwh, published, source)
        SELECT * FROM unnest($1::int[], $2::text[], $3::text[], $4::int[], $5::numeric[],
                             $6::text[], $7::text[])
        ON CONFLICT (year, scope, area, version) DO NOTHING
        """,
        [r.year for r in rows],
        [r.scope for r in rows],
        [r.area for r in rows],
        [r.version for r in rows],
        [r.kg_per_kwh for r in rows],
        [r.published for r in rows],
        [r.source for r in rows],
    )


async def insert_fuel_factors(conn: Any, rows: Sequence[FuelFactor]) -> None:
    await conn.execute(
        """
        INSERT INTO enterprise_fuel_factors
            (kind, version, unit, ncv_gj_per_unit, carbon_tc_per_gj, oxidation, kg_per_unit,
             kgce_per_unit, source)
        SELECT * FROM unnest($1::text[], $2::int[], $3::text[], $4::numeric[], $5::numeric[],
                             $6::numeric[], $7::numeric[], $8::numeric[], $9::text[])
        ON CONFLICT (kind, version) DO NOTHING
        """,
        [r.kind for r in rows],
        [r.version for r in rows],
        [r.unit for r in rows],
        [r.ncv_gj_per_unit for r in rows],
        [r.carbon_tc_per_gj for r in rows],
        [r.oxidation for r in rows],
        [r.kg_per_unit for r in rows],
        [r.kgce_per_unit for r in rows],
        [r.source for r in rows],
    )


async def grid_factors(conn: Any) -> list[Any]:
    return list(
        await conn.fetch(
            "SELECT year, scope, area, version, kg_per_kwh, published, source "
            "FROM enterprise_grid_factors ORDER BY year, scope, area, version"
        )
    )


async def fuel_factors(conn: Any) -> list[Any]:
    return list(
        await conn.fetch(
            "SELECT kind, version, unit, ncv_gj_per_unit, carbon_tc_per_gj, oxidation, "
            "kg_per_unit, kgce_per_unit, source FROM enterprise_fuel_factors ORDER BY kind, version"
        )
    )


# --- emissions ---------------------------------------------------------------------------------


async def replace_emissions(
    conn: Any,
    basis: str,
    start: date,
    end: date,
    enterprise_ids: Sequence[Any] | None,
    rows: Sequence[EmissionRow],
) -> int:
    """The basis's rows of the months [start, end) (of ``enterprise_ids``, or of every
    enterprise) replaced by ``rows``: two statements. Returns how many rows were written."""
    await conn.execute("SET LOCAL plan_cache_mode = force_custom_plan")
    await conn.execute(
        """
        DELETE FROM enterprise_emissions
        WHERE basis = $1 AND month >= $2 AND month < $3
          AND ($4::uuid[] IS NULL OR enterprise_id = ANY($4::uuid[]))
        """,
        basis,
        start,
        end,
        None if enterprise_ids is None else list(enterprise_ids),
    )
    if not rows:
        return 0
    await conn.execute(
        """
        INSERT INTO enterprise_emissions
            (basis, enterprise_id, month, kind, quantity, source, factor_ref, factor_year,
             factor_version, factor_kg, kgce_per_unit, emissions_kg, energy_kgce)
        SELECT $1, * FROM unnest($2::uuid[], $3::date[], $4::text[], $5::float8[], $6::text[],
                                 $7::text[], $8::int[], $9::int[], $10::float8[], $11::float8[],
                                 $12::float8[], $13::float8[])
        """,
        basis,
        [r.enterprise_id for r in rows],
        [r.month for r in rows],
        [r.kind for r in rows],
        [r.quantity for r in rows],
        [r.source for r in rows],
        [r.factor_ref for r in rows],
        [r.factor_year for r in rows],
        [r.factor_version for r in rows],
        [r.factor_kg for r in rows],
        [r.kgce_per_unit for r in rows],
        [r.emissions_kg for r in rows],
        [r.energy_kgce for r in rows],
    )
    return len(rows)


_EMISSION_COLUMNS = (
    "enterprise_id, month, kind, quantity, source, factor_ref, factor_year, factor_version, "
    "factor_kg, kgce_per_unit, emissions_kg, energy_kgce"
)


async def emissions(conn: Any, basis: str, enterprise_id: Any, start: date, end: date) -> list[Any]:
    return list(
        await conn.fetch(
            f"""
            SELECT {_EMISSION_COLUMNS} FROM enterprise_emissions
            WHERE basis = $1 AND enterprise_id = $2 AND month >= $3 AND month < $4
            ORDER BY month, kind
            """,
            basis,
            enterprise_id,
            start,
            end,
        )
    )


async def yearly_kinds(
    conn: Any,
    basis: str,
    first_year: int,
    last_year: int,
    *,
    industry_prefix: str | None = None,
    enterprise_ids: Sequence[Any] | None = None,
    with_factors: bool = False,
) -> list[Any]:
    """One row per enterprise, year and kind of the years [first_year, last_year]: quantity,
    emissions and energy summed over the months, with the enterprise's industry, the months
    the kind was reported in and (``with_factors``) the factor references and versions used."""
    factors = (
        "array_agg(DISTINCT x.factor_ref || '@v' || x.factor_version) "
        "FILTER (WHERE x.factor_ref IS NOT NULL)"
        if with_factors
        else "NULL::text[]"
    )
    return list(
        await conn.fetch(
            f"""
            SELECT x.enterprise_id, e.industry, extract(year FROM x.month)::int AS year, x.kind,
                   sum(x.quantity) AS quantity, sum(x.emissions_kg) AS emissions_kg,
                   sum(x.energy_kgce) AS energy_kgce, count(*)::int AS months,
                   {factors} AS factors
            FROM enterprise_emissions x
            JOIN enterprises e ON e.id = x.enterprise_id
            WHERE x.basis = $1 AND x.month >= make_date($2, 1, 1)
              AND x.month < make_date($3 + 1, 1, 1)
              AND ($4::text IS NULL OR e.industry LIKE $4 || '%')
              AND ($5::uuid[] IS NULL OR x.enterprise_id = ANY($5::uuid[]))
            GROUP BY x.enterprise_id, e.industry, 3, x.kind
            """,
            basis,
            first_year,
            last_year,
            industry_prefix,
            None if enterprise_ids is None else list(enterprise_ids),
        )
    )


# --- budgets and alerts ------------------------------------------------------------------------

_BUDGET_COLUMNS = "enterprise_id, metric, period_kind, period_start, amount, set_by, updated_at"


async def upsert_budget(
    conn: Any,
    enterprise_id: Any,
    metric: str,
    period_kind: str,
    period_start: date,
    amount: float,
    set_by: str,
) -> Any:
    return await conn.fetchrow(
        f"""
        INSERT INTO enterprise_budgets (enterprise_id, metric, period_kind, period_start, amount,
                                        set_by)
        VALUES ($1, $2, $3, $4, $5, $6)
        ON CONFLICT (enterprise_id, metric, period_kind, period_start)
        DO UPDATE SET amount = EXCLUDED.amount, set_by = EXCLUDED.set_by, updated_at = now()
        RETURNING {_BUDGET_COLUMNS}
        """,
        enterprise_id,
        metric,
        period_kind,
        period_start,
        amount,
        set_by,
    )


async def budgets(conn: Any, enterprise_id: Any) -> list[Any]:
    return list(
        await conn.fetch(
            f"SELECT {_BUDGET_COLUMNS} FROM enterprise_budgets WHERE enterprise_id = $1 "
            "ORDER BY period_start DESC, metric, period_kind",
            enterprise_id,
        )
    )


async def budget_usage(
    conn: Any, basis: str, as_of_month: date, enterprise_ids: Sequence[Any] | None
) -> list[Any]:
    """Every budget whose period contains the month ``as_of_month`` (of ``enterprise_ids``, or
    of every enterprise), with what its period used so far under ``basis``: one statement."""
    return list(
        await conn.fetch(
            """
            SELECT b.enterprise_id, b.metric, b.period_kind, b.period_start, b.amount,
                   coalesce(sum(CASE WHEN b.metric = 'carbon_kg' THEN x.emissions_kg
                                     ELSE x.energy_kgce END), 0) AS used
            FROM enterprise_budgets b
            LEFT JOIN enterprise_emissions x
                   ON x.basis = $1 AND x.enterprise_id = b.enterprise_id
                  AND x.month >= b.period_start
                  AND x.month < b.period_start + CASE WHEN b.period_kind = 'month'
                                                      THEN interval '1 month'
                                                      ELSE interval '1 year' END
            WHERE b.period_start <= $2
              AND b.period_start + CASE WHEN b.period_kind = 'month' THEN interval '1 month'
                                        ELSE interval '1 year' END > $2
              AND ($3::uuid[] IS NULL OR b.enterprise_id = ANY($3::uuid[]))
            GROUP BY b.enterprise_id, b.metric, b.period_kind, b.period_start, b.amount
            """,
            basis,
            as_of_month,
            None if enterprise_ids is None else list(enterprise_ids),
        )
    )


_ALERT_COLUMNS = (
    "a.id, a.enterprise_id, a.metric, a.period_kind, a.period_start, a.threshold, a.budget, "
    "a.actual, a.projected, a.state, a.raised_at, a.cleared_at, a.changed_at, "
    "a.delivered_state, a.delivered_at, a.attempts"
)


async def apply_alerts(
    conn: Any,
    crossing: Sequence[tuple[Any, str, str, date, float, float, float, float]],
    falling: Sequence[tuple[Any, str, str, date, float, float, float, float]],
    now: datetime,
) -> list[int]:
    """Raise (or raise again) the alerts of ``crossing`` and clear the raised ones of
    ``falling``; each tuple is (enterprise, metric, period kind, period start, threshold,
    budget, actual, projected). Two statements; returns the ids whose state changed."""
    changed: list[int] = []

    def cols(items: Sequence[tuple[Any, ...]]) -> list[list[Any]]:
        return [[t[i] for t in items] for i in range(8)]

    if crossing:
        rows = await conn.fetch(
            """
            WITH u AS (
                SELECT enterprise_id, metric, period_kind, period_start,
                       round(threshold, 4) AS threshold, budget, actual, projected
                FROM unnest($1::uuid[], $2::text[], $3::text[], $4::date[], $5::numeric[],
                            $6::float8[], $7::float8[], $8::float8[])
                    AS u(enterprise_id, metric, period_kind, period_start, threshold, budget,
                         actual, projected)
            ),
            prior AS (
                SELECT a.enterprise_id, a.metric, a.period_kind, a.period_start, a.threshold,
                       a.state
                FROM enterprise_alerts a
                JOIN u USING (enterprise_id, metric, period_kind, period_start, threshold)
            ),
            ins AS (
                INSERT INTO enterprise_alerts AS a
                    (enterprise_id, metric, period_kind, period_start, threshold, budget, actual,
                     projected, state, raised_at, changed_at)
                SELECT u.*, 'raised', $9, $9 FROM u
                ORDER BY 1, 2, 3, 4, 5
                ON CONFLICT (enterprise_id, metric, period_kind, period_start, threshold)
                DO UPDATE SET budget = EXCLUDED.budget, actual = EXCLUDED.actual,
                              projected = EXCLUDED.projected, state = 'raised',
                              cleared_at = NULL,
                              raised_at = CASE WHEN a.state = 'raised' THEN a.raised_at
                                               ELSE EXCLUDED.raised_at END,
                              changed_at = CASE WHEN a.state = 'raised' THEN a.changed_at
                                                ELSE EXCLUDED.changed_at END
                RETURNING a.id, a.enterprise_id, a.metric, a.period_kind, a.period_start,
                          a.threshold
            )
            SELECT ins.id, prior.state IS DISTINCT FROM 'raised' AS changed
            FROM ins
            LEFT JOIN prior USING (enterprise_id, metric, period_kind, period_start, threshold)
            """,
            *cols(crossing),
            now,
        )
        changed += [r["id"] for r in rows if r["changed"]]
    if falling:
        rows = await conn.fetch(
            """
            UPDATE enterprise_alerts a
            SET state = 'cleared', cleared_at = $9, changed_at = $9, budget = u.budget,
                actual = u.actual, projected = u.projected
            FROM unnest($1::uuid[], $2::text[], $3::text[], $4::date[], $5::numeric[],
                        $6::float8[], $7::float8[], $8::float8[])
                 AS u(enterprise_id, metric, period_kind, period_start, threshold, budget,
                      actual, projected)
            WHERE a.enterprise_id = u.enterprise_id AND a.metric = u.metric
              AND a.period_kind = u.period_kind AND a.period_start = u.period_start
              AND a.threshold = round(u.threshold, 4) AND a.state = 'raised'
            RETURNING a.id
            """,
            *cols(falling),
            now,
        )
        changed += [r["id"] for r in rows]
    return sorted(changed)


async def alerts(conn: Any, enterprise_id: Any, *, raised_only: bool = False) -> list[Any]:
    return list(
        await conn.fetch(
            f"""
            SELECT {_ALERT_COLUMNS} FROM enterprise_alerts a
            WHERE a.enterprise_id = $1 AND (NOT $2 OR a.state = 'raised')
            ORDER BY a.period_start DESC, a.metric, a.period_kind, a.threshold
            """,
            enterprise_id,
            raised_only,
        )
    )


async def alert_by_id(conn: Any, alert_id: int) -> Any:
    return await conn.fetchrow(
        f"""
        SELECT {_ALERT_COLUMNS}, e.credit_code
        FROM enterprise_alerts a JOIN enterprises e ON e.id = a.enterprise_id
        WHERE a.id = $1
        """,
        alert_id,
    )


async def mark_delivered(conn: Any, alert_id: int, state: str, changed_at: datetime) -> bool:
    """Record the delivery of ``state`` unless the alert changed meanwhile."""
    done = await conn.fetchval(
        """
        UPDATE enterprise_alerts
        SET delivered_state = $2, delivered_at = now(), attempts = attempts + 1, last_error = NULL
        WHERE id = $1 AND state = $2 AND changed_at = $3
        RETURNING id
        """,
        alert_id,
        state,
        changed_at,
    )
    return done is not None


async def mark_failed(conn: Any, alert_id: int, error: str) -> int:
    attempts: int = await conn.fetchval(
        "UPDATE enterprise_alerts SET attempts = attempts + 1, last_error = $2 WHERE id = $1 "
        "RETURNING attempts",
        alert_id,
        error[:500],
    )
    return attempts


async def undelivered_alerts(conn: Any, max_attempts: int, limit: int = 1000) -> list[int]:
    rows = await conn.fetch(
        """
        SELECT id FROM enterprise_alerts
        WHERE delivered_state IS DISTINCT FROM state AND attempts < $1
        ORDER BY changed_at LIMIT $2
        """,
        max_attempts,
        limit,
    )
    return [r["id"] for r in rows]


# --- verified reductions -----------------------------------------------------------------------


async def insert_reduction_credits(conn: Any, rows: Sequence[Any]) -> set[str]:
    """Record the credits not recorded yet (the primary key decides: once per enterprise and
    year); the transfer keys of those inserted."""
    if not rows:
        return set()
    inserted = await conn.fetch(
        """
        INSERT INTO enterprise_reduction_credits
            (enterprise_id, year, basis, baseline_year, baseline_l, year_l, added_value,
             reduction_g, transfer_key)
        SELECT * FROM unnest($1::uuid[], $2::int[], $3::text[], $4::int[], $5::float8[],
                             $6::float8[], $7::float8[], $8::bigint[], $9::text[])
        ORDER BY 1
        ON CONFLICT (enterprise_id, year) DO NOTHING
        RETURNING transfer_key
        """,
        [r.enterprise_id for r in rows],
        [r.year for r in rows],
        [r.basis for r in rows],
        [r.baseline_year for r in rows],
        [r.baseline_l for r in rows],
        [r.year_l for r in rows],
        [r.added_value for r in rows],
        [r.reduction_g for r in rows],
        [r.transfer_key for r in rows],
    )
    return {r["transfer_key"] for r in inserted}


async def reduction_credits(conn: Any, enterprise_ids: Sequence[Any]) -> list[Any]:
    return list(
        await conn.fetch(
            """
            SELECT enterprise_id, year, basis, baseline_year, baseline_l, year_l, added_value,
                   reduction_g, transfer_key, credited_at
            FROM enterprise_reduction_credits WHERE enterprise_id = ANY($1::uuid[])
            ORDER BY enterprise_id, year
            """,
            list(enterprise_ids),
        )
    )


async def enterprise_districts(conn: Any, enterprise_ids: Sequence[Any] | None) -> list[Any]:
    """(id, district_code) of ``enterprise_ids``, or of every enterprise."""
    return list(
        await conn.fetch(
            "SELECT id, district_code FROM enterprises "
            "WHERE $1::uuid[] IS NULL OR id = ANY($1::uuid[]) ORDER BY id",
            None if enterprise_ids is None else list(enterprise_ids),
        )
    )


# --- the government reports' rollup (reporting.rollups) ----------------------------------------


async def monthly_by_enterprise(conn: Any, basis: str, start: date, end: date) -> list[Any]:
    """Per enterprise and month of [start, end): emissions and energy summed over the kinds,
    with the enterprise's district and industry (one statement)."""
    return list(
        await conn.fetch(
            """
            SELECT x.enterprise_id, e.district_code, e.industry, x.month,
                   sum(x.emissions_kg) AS emissions_kg, sum(x.energy_kgce) AS energy_kgce
            FROM enterprise_emissions x
            JOIN enterprises e ON e.id = x.enterprise_id
            WHERE x.basis = $1 AND x.month >= $2 AND x.month < $3
            GROUP BY x.enterprise_id, e.district_code, e.industry, x.month
            """,
            basis,
            start,
            end,
        )
    )


async def credits_by_year(conn: Any, first_year: int, last_year: int) -> list[Any]:
    """(enterprise_id, district_code, industry, year, reduction_g) of the credited years."""
    return list(
        await conn.fetch(
            """
            SELECT c.enterprise_id, e.district_code, e.industry, c.year, c.reduction_g
            FROM enterprise_reduction_credits c JOIN enterprises e ON e.id = c.enterprise_id
            WHERE c.year BETWEEN $1 AND $2
            """,
            first_year,
            last_year,
        )
    )


async def enterprise_identities(conn: Any, enterprise_ids: Sequence[Any]) -> list[Any]:
    """(id, credit_code, name, district_code, industry) of ``enterprise_ids``."""
    return list(
        await conn.fetch(
            "SELECT id, credit_code, name, district_code, industry FROM enterprises "
            "WHERE id = ANY($1::uuid[]) ORDER BY id",
            list(enterprise_ids),
        )
    )
