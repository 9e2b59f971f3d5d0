"""All SQL of enterprises' energy and activity tables (enterprise_sites, enterprise_meters,
meter_readings, meter_monthly, activity_reports, activity_report_lines,
green_certificate_claims, activity_touched). The rules are in ``enterprises.energy``; every
statement here is set-wise (arrays as arguments), so a batch costs the same few statements
whatever its size."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

import asyncpg

from enterprises.energy_errors import EnterpriseNotFound

# --- sites and meters --------------------------------------------------------------------------

_SITE = "id, enterprise_id, name, address, created_at"
_METER = (
    "id, enterprise_id, site_id, ref, kind, unit, factor, interval_s, register, pusher, "
    "spike_factor, created_at, equipment_class"
)


async def insert_site(conn: Any, enterprise_id: uuid.UUID, name: str, address: str) -> Any:
    """The new site, or None when the enterprise has a site of that name."""
    try:
        return await conn.fetchrow(
            f"""
            INSERT INTO enterprise_sites (enterprise_id, name, address) VALUES ($1, $2, $3)
            ON CONFLICT (enterprise_id, name) DO NOTHING RETURNING {_SITE}
            """,
            enterprise_id,
            name,
            address,
        )
    except asyncpg.ForeignKeyViolationError:
        raise EnterpriseNotFound(f"No enterprise {enterprise_id}.") from None


async def site_by_name(conn: Any, enterprise_id: uuid.UUID, name: str) -> Any:
    return await conn.fetchrow(
        f"SELECT {_SITE} FROM enterprise_sites WHERE enterprise_id = $1 AND name = $2",
        enterprise_id,
        name,
    )


async def sites(conn: Any, enterprise_id: uuid.UUID) -> list[Any]:
    return list(
        await conn.fetch(
            f"SELECT {_SITE} FROM enterprise_sites WHERE enterprise_id = $1 ORDER BY name, id",
            enterprise_id,
        )
    )


async def site_exists(conn: Any, enterprise_id: uuid.UUID, site_id: uuid.UUID) -> bool:
    return bool(
        await conn.fetchval(
            "SELECT true FROM enterprise_sites WHERE enterprise_id = $1 AND id = $2",
            enterprise_id,
            site_id,
        )
    )


async def insert_meter(conn: Any, enterprise_id: uuid.UUID, m: Any, factor: float) -> Any:
    """The new meter, or None when its pusher has a meter of that reference."""
    return await conn.fetchrow(
        f"""
        INSERT INTO enterprise_meters (enterprise_id, site_id, ref, kind, unit, factor,
            interval_s, register, pusher, spike_factor, equipment_class)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
        ON CONFLICT (pusher, ref) DO NOTHING RETURNING {_METER}
        """,
        enterprise_id,
        m.site_id,
        m.ref,
        m.kind,
        m.unit,
        factor,
        m.interval_s,
        m.register,
        m.pusher,
        m.spike_factor,
        m.equipment_class,
    )


async def meter_by_ref(conn: Any, pusher: str, ref: str) -> Any:
    return await conn.fetchrow(
        f"SELECT {_METER} FROM enterprise_meters WHERE pusher = $1 AND ref = $2", pusher, ref
    )


async def meters(conn: Any, enterprise_id: uuid.UUID, site_id: uuid.UUID | None) -> list[Any]:
    return list(
        await conn.fetch(
            f"""
            SELECT {_METER} FROM enterprise_meters
            WHERE enterprise_id = $1 AND ($2::uuid IS NULL OR site_id = $2)
            ORDER BY site_id, ref, id
            """,
            enterprise_id,
            site_id,
        )
    )


# --- readings ----------------------------------------------------------------------------------


async def lock_meters(conn: Any, pusher: str, refs: Sequence[str]) -> list[Any]:
    """The pusher's meters among ``refs``, locked (in id order, so two batches sharing meters
    lock them in the same order): one batch at a time derives a meter's readings."""
    await conn.execute("SET LOCAL plan_cache_mode = force_custom_plan")
    return list(
        await conn.fetch(
            f"""
            SELECT {_METER} FROM enterprise_meters
            WHERE pusher = $1 AND ref = ANY($2::text[])
            ORDER BY id FOR UPDATE
            """,
            pusher,
            list(refs),
        )
    )


async def reading_context(
    conn: Any, meter_ids: Sequence[uuid.UUID], lows: Sequence[datetime], highs: Sequence[datetime]
) -> list[Any]:
    """For each meter: its reading before ``low`` (the state a new reading follows), every
    reading from ``low`` to ``high`` (duplicates, conflicts, the readings between late ones) and
    the first after ``high`` (re-derived when a late reading lands before it). One statement,
    each part an index range of the primary key."""
    return list(
        await conn.fetch(
            """
            SELECT m.meter_id, r.read_at, r.value, r.quantity, r.flag, r.month, r.base, r.level,
                   r.level_n
            FROM unnest($1::uuid[], $2::timestamptz[], $3::timestamptz[]) AS m(meter_id, lo, hi)
            CROSS JOIN LATERAL (
                (SELECT * FROM meter_readings
                 WHERE meter_id = m.meter_id AND read_at < m.lo
                 ORDER BY read_at DESC LIMIT 1)
                UNION ALL
                (SELECT * FROM meter_readings
                 WHERE meter_id = m.meter_id AND read_at >= m.lo AND read_at <= m.hi)
                UNION ALL
                (SELECT * FROM meter_readings
                 WHERE meter_id = m.meter_id AND read_at > m.hi
                 ORDER BY read_at LIMIT 1)
            ) r
            """,
            list(meter_ids),
            list(lows),
            list(highs),
        )
    )


_READING_COLUMNS = (
    "meter_id",
    "read_at",
    "value",
    "quantity",
    "flag",
    "month",
    "base",
    "level",
    "level_n",
)


async def write_readings(
    conn: Any,
    new: list[tuple[Any, ...]],
    changed: tuple[list[Any], ...],
    monthly: tuple[list[Any], ...],
    touched: tuple[list[Any], ...],
) -> None:
    """Two statements: COPY the new readings in (the meters are locked and the instants known
    free, so no conflict can arise; COPY is the cheapest insert), then one statement that
    re-derives the changed ones, adds the deltas to the monthly sums and records the touched
    (enterprise, month) pairs."""
    if new:
        await conn.copy_records_to_table("meter_readings", records=new, columns=_READING_COLUMNS)
    await conn.execute(
        """
        WITH upd AS (
            UPDATE meter_readings r SET quantity = c.quantity, flag = c.flag, base = c.base,
                level = c.level, level_n = c.level_n
            FROM unnest($1::uuid[], $2::timestamptz[], $3::float8[], $4::text[],
                        $5::float8[], $6::float8[], $7::int[])
                 AS c(meter_id, read_at, quantity, flag, base, level, level_n)
            WHERE r.meter_id = c.meter_id AND r.read_at = c.read_at
        ), agg AS (
            INSERT INTO meter_monthly AS t
                (meter_id, month, enterprise_id, kind, quantity, readings, flagged)
            SELECT * FROM unnest($8::uuid[], $9::date[], $10::uuid[], $11::text[],
                                 $12::float8[], $13::int[], $14::int[])
            ON CONFLICT (meter_id, month) DO UPDATE SET
                quantity = t.quantity + EXCLUDED.quantity,
                readings = t.readings + EXCLUDED.readings,
                flagged = t.flagged + EXCLUDED.flagged
        )
        INSERT INTO activity_touched (enterprise_id, month)
        SELECT * FROM unnest($15::uuid[], $16::date[])
        ON CONFLICT (enterprise_id, month) DO UPDATE SET touched_at = now()
        """,
        *changed,
        *monthly,
        *touched,
    )


async def meter_months(conn: Any, enterprise_id: uuid.UUID, start: date, end: date) -> list[Any]:
    return list(
        await conn.fetch(
            """
            SELECT mm.meter_id, mm.month, mm.kind, mm.quantity, mm.readings, mm.flagged
            FROM meter_monthly mm
            WHERE mm.enterprise_id = $1 AND mm.month >= $2 AND mm.month < $3
            ORDER BY mm.month, mm.meter_id
            """,
            enterprise_id,
            start,
            end,
        )
    )


async def flagged_readings(
    conn: Any, enterprise_id: uuid.UUID, meter_id: uuid.UUID | None, limit: int
) -> list[Any]:
    return list(
        await conn.fetch(
            """
            SELECT r.meter_id, r.read_at, r.value, r.flag
            FROM enterprise_meters m JOIN meter_readings r ON r.meter_id = m.id
            WHERE m.enterprise_id = $1 AND ($2::uuid IS NULL OR m.id = $2)
              AND r.flag IS NOT NULL
            ORDER BY r.read_at DESC, r.meter_id LIMIT $3
            """,
            enterprise_id,
            meter_id,
            limit,
        )
    )


# --- reports -----------------------------------------------------------------------------------

_REPORT = (
    "id, enterprise_id, period, period_start, version, content_hash, submitted_at, superseded_at"
)


async def lock_report_chain(conn: Any, enterprise_id: uuid.UUID, period: str, start: date) -> Any:
    """Serialise the submissions of one (enterprise, period, start) (a transaction-level
    advisory lock), then its current version (None: none yet)."""
    await conn.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended($1, 41))",
        f"activity_report:{enterprise_id}:{period}:{start.isoformat()}",
    )
    return await conn.fetchrow(
        f"""
        SELECT {_REPORT} FROM activity_reports
        WHERE enterprise_id = $1 AND period = $2 AND period_start = $3 AND superseded_at IS NULL
        """,
        enterprise_id,
        period,
        start,
    )


async def insert_report(
    conn: Any,
    enterprise_id: uuid.UUID,
    period: str,
    start: date,
    previous: uuid.UUID | None,
    version: int,
    content_hash: bytes,
    lines: tuple[list[Any], ...],
) -> Any:
    """Supersede ``previous`` (when given: first, as the current version is unique) and insert
    the new version with its lines."""
    if previous is not None:
        await conn.execute(
            "UPDATE activity_reports SET superseded_at = now() WHERE id = $1", previous
        )
    try:
        return await conn.fetchrow(
            f"""
            WITH rep AS (
                INSERT INTO activity_reports
                    (enterprise_id, period, period_start, version, content_hash)
                VALUES ($1, $2, $3, $4, $5) RETURNING {_REPORT}
            ), lin AS (
                INSERT INTO activity_report_lines
                    (report_id, kind, quantity, given_quantity, given_unit, certificates)
                SELECT rep.id, l.kind, l.quantity, l.given_quantity, l.given_unit,
                       CASE WHEN l.serials = '' THEN '{{}}'::text[]
                            ELSE string_to_array(l.serials, ' ') END
                FROM rep, unnest($6::text[], $7::float8[], $8::float8[], $9::text[],
                                 $10::text[]) AS l(kind, quantity, given_quantity, given_unit,
                                                   serials)
            )
            SELECT * FROM rep
            """,
            enterprise_id,
            period,
            start,
            version,
            content_hash,
            *lines,
        )
    except asyncpg.ForeignKeyViolationError:
        raise EnterpriseNotFound(f"No enterprise {enterprise_id}.") from None


async def claim_certificates(
    conn: Any,
    serials: Sequence[str],
    enterprise_id: uuid.UUID,
    period: str,
    start: date,
    report_id: uuid.UUID,
) -> set[str]:
    """Claim ``serials`` for the report (sorted, so two claimants lock in the same order); a
    serial already claimed by the same report chain moves to the new version. The serials this
    report now holds; one missing was claimed elsewhere (the primary key decides: a concurrent
    claimant's insert waits for ours to commit or roll back)."""
    rows = await conn.fetch(
        """
        INSERT INTO green_certificate_claims AS c
            (serial, enterprise_id, period, period_start, report_id)
        SELECT s, $2, $3, $4, $5 FROM unnest($1::text[]) AS s ORDER BY s
        ON CONFLICT (serial) DO UPDATE SET report_id = EXCLUDED.report_id
            WHERE c.enterprise_id = EXCLUDED.enterprise_id AND c.period = EXCLUDED.period
              AND c.period_start = EXCLUDED.period_start
        RETURNING serial
        """,
        sorted(serials),
        enterprise_id,
        period,
        start,
        report_id,
    )
    return {r["serial"] for r in rows}


async def release_certificates(
    conn: Any, enterprise_id: uuid.UUID, period: str, start: date, report_id: uuid.UUID
) -> None:
    """Release the chain's claims the new version (``report_id``) no longer makes."""
    await conn.execute(
        """
        DELETE FROM green_certificate_claims
        WHERE enterprise_id = $1 AND period = $2 AND period_start = $3 AND report_id <> $4
        """,
        enterprise_id,
        period,
        start,
        report_id,
    )


async def certificate_holders(conn: Any, serials: Sequence[str]) -> dict[str, uuid.UUID]:
    rows = await conn.fetch(
        "SELECT serial, enterprise_id FROM green_certificate_claims WHERE serial = ANY($1)",
        list(serials),
    )
    return {r["serial"]: r["enterprise_id"] for r in rows}


async def report_by_id(conn: Any, enterprise_id: uuid.UUID, report_id: uuid.UUID) -> Any:
    return await conn.fetchrow(
        f"SELECT {_REPORT} FROM activity_reports WHERE enterprise_id = $1 AND id = $2",
        enterprise_id,
        report_id,
    )


async def reports(conn: Any, enterprise_id: uuid.UUID, history: bool) -> list[Any]:
    return list(
        await conn.fetch(
            f"""
            SELECT {_REPORT} FROM activity_reports
            WHERE enterprise_id = $1 AND ($2 OR superseded_at IS NULL)
            ORDER BY period_start DESC, period, version DESC
            """,
            enterprise_id,
            history,
        )
    )


async def report_lines(conn: Any, report_ids: Sequence[uuid.UUID]) -> list[Any]:
    return list(
        await conn.fetch(
            """
            SELECT report_id, kind, quantity, given_quantity, given_unit, certificates
            FROM activity_report_lines WHERE report_id = ANY($1::uuid[]) ORDER BY report_id, kind
            """,
            list(report_ids),
        )
    )


async def touch(conn: Any, enterprise_ids: Sequence[uuid.UUID], months: Sequence[date]) -> None:
    await conn.execute(
        """
        INSERT INTO activity_touched (enterprise_id, month)
        SELECT * FROM unnest($1::uuid[], $2::date[]) ORDER BY 1, 2
        ON CONFLICT (enterprise_id, month) DO UPDATE SET touched_at = now()
        """,
        list(enterprise_ids),
        list(months),
    )


async def take_touched(conn: Any, limit: int) -> list[Any]:
    return list(
        await conn.fetch(
            """
            DELETE FROM activity_touched t USING (
                SELECT enterprise_id, month FROM activity_touched
                ORDER BY touched_at, enterprise_id, month LIMIT $1 FOR UPDATE SKIP LOCKED
            ) s
            WHERE t.enterprise_id = s.enterprise_id AND t.month = s.month
            RETURNING t.enterprise_id, t.month
            """,
            limit,
        )
    )


# --- what accounting reads -------------------------------------------------------------------


async def monthly_activity(
    conn: Any, start: date, end: date, enterprise_ids: Sequence[uuid.UUID] | None
) -> list[Any]:
    """Per (enterprise, month, kind) one quantity: a current monthly report's line, else a
    current annual report's line spread over its twelve months, else the meters' sum."""
    return list(
        await conn.fetch(
            """
            WITH reported AS (
                SELECT r.enterprise_id, r.period_start AS month, l.kind, l.quantity,
                       1 AS rank
                FROM activity_reports r JOIN activity_report_lines l ON l.report_id = r.id
                WHERE r.period = 'month' AND r.superseded_at IS NULL
                  AND r.period_start >= $1 AND r.period_start < $2
                  AND ($3::uuid[] IS NULL OR r.enterprise_id = ANY($3::uuid[]))
                UNION ALL
                SELECT r.enterprise_id, m.month::date, l.kind, l.quantity / 12, 2
                FROM activity_reports r JOIN activity_report_lines l ON l.report_id = r.id
                CROSS JOIN LATERAL generate_series(r.period_start,
                    r.period_start + interval '11 months', interval '1 month') AS m(month)
                WHERE r.period = 'year' AND r.superseded_at IS NULL
                  AND r.period_start > ($1::date - interval '1 year') AND r.period_start < $2
                  AND ($3::uuid[] IS NULL OR r.enterprise_id = ANY($3::uuid[]))
            ), metered AS (
                SELECT enterprise_id, month, kind, sum(quantity) AS quantity, 3 AS rank
                FROM meter_monthly
                WHERE month >= $1 AND month < $2
                  AND ($3::uuid[] IS NULL OR enterprise_id = ANY($3::uuid[]))
                GROUP BY enterprise_id, month, kind
            )
            SELECT DISTINCT ON (enterprise_id, month, kind)
                enterprise_id, month, kind, quantity, rank
            FROM (SELECT * FROM reported WHERE month >= $1 AND month < $2
                  UNION ALL SELECT * FROM metered) a
            ORDER BY enterprise_id, month, kind, rank
            """,
            start,
            end,
            None if enterprise_ids is None else list(enterprise_ids),
        )
    )
