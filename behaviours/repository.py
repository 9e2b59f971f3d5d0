"""All SQL of behaviours: set-wise statements over whole batches (``unnest``, ``ANY``), never one
query per event. Functions take an asyncpg connection (``tx.conn`` inside a transaction)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, NamedTuple

import asyncpg

# --- reference data ------------------------------------------------------------------------


async def reference_token(conn: Any) -> str | None:
    token = await conn.fetchval("SELECT token::text FROM behaviour_reference")
    return str(token) if token is not None else None


async def touch_reference(conn: Any) -> None:
    await conn.execute(
        """
        INSERT INTO behaviour_reference (id, token, changed_at)
        VALUES (true, gen_random_uuid(), now())
        ON CONFLICT (id) DO UPDATE SET token = gen_random_uuid(), changed_at = now()
        """
    )


async def load_factors(conn: Any) -> list[Any]:
    return list(
        await conn.fetch(
            """
            SELECT f.code, f.version, f.mode, f.behaviour, f.unit, f.factor_g,
                   f.project_g_per_kwh, f.min_distance_m, f.max_distance_m, f.max_speed_kmh,
                   f.typical_trip_m, m.effective_from, m.effective_to
            FROM methodology_factors f
            JOIN methodologies m USING (code, version)
            """
        )
    )


async def load_caps(conn: Any) -> list[Any]:
    return list(
        await conn.fetch(
            "SELECT code, version, behaviour, daily_cap_g, yearly_cap_g, daily_max_events "
            "FROM methodology_caps"
        )
    )


async def load_districts(conn: Any) -> list[Any]:
    return list(await conn.fetch("SELECT code, geometry FROM districts ORDER BY code"))


async def count_districts(conn: Any) -> int:
    return int(await conn.fetchval("SELECT count(*) FROM districts"))


async def district_names(conn: Any, codes: Sequence[str]) -> dict[str, str]:
    rows = await conn.fetch("SELECT code, name FROM districts WHERE code = ANY($1::text[])", codes)
    return {r["code"]: r["name"] for r in rows}


async def load_gtfs(conn: Any) -> tuple[list[Any], list[Any], list[Any], list[Any]]:
    stops = await conn.fetch("SELECT feed, stop_id, lat, lon FROM gtfs_stops")
    shapes = await conn.fetch("SELECT feed, shape_id, geometry FROM gtfs_shapes")
    trips = await conn.fetch("SELECT feed, trip_id, route_id, shape_id FROM gtfs_trips")
    times = await conn.fetch(
        "SELECT feed, trip_id, stop_sequence, stop_id, shape_dist_traveled, shape_dist_m "
        "FROM gtfs_stop_times"
    )
    return list(stops), list(shapes), list(trips), list(times)


async def insert_methodology(conn: Any, m: dict[str, Any]) -> bool:
    """Insert one methodology version with its factors and caps unless it exists already
    (an administrator's edits are never overwritten). True when inserted."""
    inserted = await conn.fetchval(
        """
        INSERT INTO methodologies (code, version, title, effective_from, effective_to, source)
        VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (code, version) DO NOTHING
        RETURNING true
        """,
        m["code"],
        m["version"],
        m["title"],
        m["effective_from"],
        m["effective_to"],
        m["source"],
    )
    if not inserted:
        return False
    await conn.executemany(
        """
        INSERT INTO methodology_factors (code, version, mode, behaviour, unit, factor_g,
            project_g_per_kwh, min_distance_m, max_distance_m, max_speed_kmh, source,
            typical_trip_m)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
        """,
        [
            (
                m["code"],
                m["version"],
                f["mode"],
                f["behaviour"],
                f["unit"],
                f["factor_g"],
                f.get("project_g_per_kwh"),
                f.get("min_distance_m"),
                f.get("max_distance_m"),
                f.get("max_speed_kmh"),
                f["source"],
                f.get("typical_trip_m"),
            )
            for f in m["factors"]
        ],
    )
    await conn.executemany(
        """
        INSERT INTO methodology_caps (code, version, behaviour, daily_cap_g, yearly_cap_g,
            daily_max_events, source)
        VALUES ($1, $2, $3, $4, $5, $6, $7)
        """,
        [
            (
                m["code"],
                m["version"],
                c["behaviour"],
                c.get("daily_cap_g"),
                c.get("yearly_cap_g"),
                c.get("daily_max_events"),
                c["source"],
            )
            for c in m.get("caps", [])
        ],
    )
    return True


async def list_methodologies(conn: Any) -> list[Any]:
    return list(
        await conn.fetch(
            "SELECT code, version, title, effective_from, effective_to, source "
            "FROM methodologies ORDER BY code, version"
        )
    )


# --- districts and GTFS (written by integrations through the service) -----------------------


async def upsert_districts(conn: Any, rows: Sequence[tuple[str, str, str | None, bytes]]) -> None:
    await conn.execute(
        """
        INSERT INTO districts (code, name, parent_code, geometry)
        SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bytea[])
        ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name,
            parent_code = EXCLUDED.parent_code, geometry = EXCLUDED.geometry, imported_at = now()
        """,
        [r[0] for r in rows],
        [r[1] for r in rows],
        [r[2] for r in rows],
        [r[3] for r in rows],
    )


_GTFS_COLUMNS = {
    "gtfs_stops": ("feed", "stop_id", "name", "lat", "lon"),
    "gtfs_shapes": ("feed", "shape_id", "geometry"),
    "gtfs_trips": ("feed", "trip_id", "route_id", "shape_id"),
    "gtfs_stop_times": (
        "feed",
        "trip_id",
        "stop_sequence",
        "stop_id",
        "shape_dist_traveled",
        "shape_dist_m",
    ),
    # the import's staging tables: a feed's stop_times as read, each trip's pattern, and each
    # pattern's position (metres) at each of its stop sequences
    "gtfs_stop_times_import": (
        "trip_id",
        "stop_sequence",
        "stop_id",
        "shape_dist_traveled",
        "line",
    ),
    "gtfs_import_trip_patterns": ("trip_id", "pattern"),
    "gtfs_import_pattern_stops": ("pattern", "stop_sequence", "position"),
}


async def begin_gtfs_replace(conn: Any, feed: str) -> None:
    """Empty the feed's rows and create the import's staging tables (dropped at commit)."""
    for table in ("gtfs_stop_times", "gtfs_trips", "gtfs_shapes", "gtfs_stops"):
        await conn.execute(f"DELETE FROM {table} WHERE feed = $1", feed)
    await conn.execute(
        """
        CREATE TEMP TABLE gtfs_stop_times_import (
            trip_id text NOT NULL, stop_sequence integer NOT NULL, stop_id text NOT NULL,
            shape_dist_traveled double precision, line bigint
        ) ON COMMIT DROP;
        CREATE TEMP TABLE gtfs_import_trip_patterns (
            trip_id text NOT NULL, pattern integer NOT NULL
        ) ON COMMIT DROP;
        CREATE TEMP TABLE gtfs_import_pattern_stops (
            pattern integer NOT NULL, stop_sequence integer NOT NULL, position double precision
        ) ON COMMIT DROP
        """
    )


async def copy_gtfs(conn: Any, table: str, records: Sequence[tuple[Any, ...]]) -> None:
    """COPY a chunk of rows into one of the GTFS tables (columns as in ``_GTFS_COLUMNS``)."""
    await conn.copy_records_to_table(table, records=records, columns=list(_GTFS_COLUMNS[table]))


async def gtfs_import_distance_spans(conn: Any, feed: str) -> list[tuple[str, float]]:
    """Per shape, the largest shape_dist_traveled of its trips' stop times (staged): the unit's
    evidence against the shape's length."""
    rows = await conn.fetch(
        """
        SELECT t.shape_id, max(s.shape_dist_traveled) AS span
        FROM gtfs_stop_times_import s
        JOIN gtfs_trips t ON t.feed = $1 AND t.trip_id = s.trip_id
        WHERE t.shape_id IS NOT NULL AND s.shape_dist_traveled IS NOT NULL
        GROUP BY t.shape_id
        """,
        feed,
    )
    return [(r["shape_id"], r["span"]) for r in rows]


async def gtfs_import_trip_patterns(conn: Any, feed: str) -> Any:
    """A cursor over the staged trips, by shape: each trip's stop sequences, stops, distances
    and file lines in stop order (aggregated here, so stop times never travel one by one)."""
    return await conn.cursor(
        """
        SELECT s.trip_id, t.shape_id,
            array_agg(s.stop_sequence ORDER BY s.stop_sequence) AS seqs,
            array_agg(s.stop_id ORDER BY s.stop_sequence) AS stops,
            array_agg(s.shape_dist_traveled ORDER BY s.stop_sequence) AS dists,
            array_agg(s.line ORDER BY s.stop_sequence) AS lines
        FROM gtfs_stop_times_import s
        JOIN gtfs_trips t ON t.feed = $1 AND t.trip_id = s.trip_id
        GROUP BY t.shape_id, s.trip_id
        ORDER BY t.shape_id NULLS LAST, s.trip_id
        """,
        feed,
    )


async def gtfs_import_finish(conn: Any, feed: str) -> None:
    """Write the staged stop times with their position: their trip pattern's at their
    stop_sequence."""
    await conn.execute(
        """
        INSERT INTO gtfs_stop_times (feed, trip_id, stop_sequence, stop_id, shape_dist_traveled,
            shape_dist_m)
        SELECT $1, s.trip_id, s.stop_sequence, s.stop_id, s.shape_dist_traveled, p.position
        FROM gtfs_stop_times_import s
        JOIN gtfs_import_trip_patterns tp ON tp.trip_id = s.trip_id
        JOIN gtfs_import_pattern_stops p
            ON p.pattern = tp.pattern AND p.stop_sequence = s.stop_sequence
        """,
        feed,
    )


# --- operators and keys ----------------------------------------------------------------------


async def insert_operator(
    conn: Any,
    operator_id: str,
    name: str,
    kind: str,
    region_code: str,
    gtfs_feed: str | None,
    scopes: Sequence[str],
) -> None:
    await conn.execute(
        """
        INSERT INTO operators (id, name, kind, region_code, gtfs_feed, scopes)
        VALUES ($1, $2, $3, $4, $5, $6)
        ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, kind = EXCLUDED.kind,
            region_code = EXCLUDED.region_code, gtfs_feed = EXCLUDED.gtfs_feed,
            scopes = EXCLUDED.scopes
        """,
        operator_id,
        name,
        kind,
        region_code,
        gtfs_feed,
        list(scopes),
    )


async def ensure_operator(
    conn: Any, operator_id: str, name: str, kind: str, region: str, scopes: Sequence[str]
) -> None:
    await conn.execute(
        "INSERT INTO operators (id, name, kind, region_code, scopes) VALUES ($1, $2, $3, $4, $5) "
        "ON CONFLICT (id) DO NOTHING",
        operator_id,
        name,
        kind,
        region,
        list(scopes),
    )


async def get_operator(conn: Any, operator_id: str) -> Any:
    return await conn.fetchrow(
        "SELECT id, name, kind, region_code, gtfs_feed, scopes, disabled_at FROM operators "
        "WHERE id = $1",
        operator_id,
    )


async def list_all_operators(conn: Any) -> list[Any]:
    return list(await conn.fetch("SELECT id, kind, region_code, gtfs_feed, scopes FROM operators"))


async def list_operators(conn: Any) -> list[Any]:
    """The operators residents may link: enabled, not the residents' app, reporting some
    behaviour (an enterprise's meter gateway reports none)."""
    return list(
        await conn.fetch(
            "SELECT id, name, kind, region_code, scopes FROM operators "
            "WHERE disabled_at IS NULL AND kind <> 'app' AND cardinality(scopes) > 0 ORDER BY id"
        )
    )


async def add_key(conn: Any, operator_id: str, key_id: str, secret: str) -> None:
    await conn.execute(
        "INSERT INTO operator_keys (operator_id, key_id, secret) VALUES ($1, $2, $3)",
        operator_id,
        key_id,
        secret,
    )


async def add_key_once(conn: Any, operator_id: str, key_id: str, secret: str) -> bool:
    """Add a key unless the operator has one of that id already (False then)."""
    done = await conn.fetchval(
        "INSERT INTO operator_keys (operator_id, key_id, secret) VALUES ($1, $2, $3) "
        "ON CONFLICT (operator_id, key_id) DO NOTHING RETURNING true",
        operator_id,
        key_id,
        secret,
    )
    return bool(done)


async def revoke_key(conn: Any, operator_id: str, key_id: str) -> bool:
    done = await conn.fetchval(
        "UPDATE operator_keys SET revoked_at = now() WHERE operator_id = $1 AND key_id = $2 "
        "AND (revoked_at IS NULL OR revoked_at > now()) RETURNING true",
        operator_id,
        key_id,
    )
    return bool(done)


async def clear_secrets(conn: Any) -> list[tuple[str, str, str]]:
    """(operator, key id, secret) of the keys whose secret is still stored in clear."""
    rows = await conn.fetch(
        "SELECT operator_id, key_id, secret FROM operator_keys WHERE secret NOT LIKE 'v1:%' "
        "ORDER BY operator_id, key_id FOR UPDATE"
    )
    return [(r["operator_id"], r["key_id"], r["secret"]) for r in rows]


async def replace_secret(conn: Any, operator_id: str, key_id: str, old: str, new: str) -> None:
    await conn.execute(
        "UPDATE operator_keys SET secret = $4 WHERE operator_id = $1 AND key_id = $2 "
        "AND secret = $3",
        operator_id,
        key_id,
        old,
        new,
    )


async def key_secret(conn: Any, operator_id: str, key_id: str) -> str | None:
    secret = await conn.fetchval(
        """
        SELECT k.secret FROM operator_keys k JOIN operators o ON o.id = k.operator_id
        WHERE k.operator_id = $1 AND k.key_id = $2
          AND (k.revoked_at IS NULL OR k.revoked_at > clock_timestamp())
          AND o.disabled_at IS NULL
        """,
        operator_id,
        key_id,
    )
    return str(secret) if secret is not None else None


# --- links -----------------------------------------------------------------------------------


async def upsert_link(
    conn: Any, operator_id: str, resident_id: str, subject_ref: str, scope: list[str]
) -> Any:
    """Create the link; change the scope of an active one (same subject_ref); or renew a
    revoked one under the new ``subject_ref`` (the old pseudonym is refused from then on, so an
    operator cannot recognise the resident across an unlink and a relink)."""
    return await conn.fetchrow(
        """
        INSERT INTO operator_links (operator_id, subject_ref, resident_id, scope)
        VALUES ($1, $2, $3, $4)
        ON CONFLICT (resident_id, operator_id) DO UPDATE SET scope = EXCLUDED.scope,
            granted_at = CASE WHEN operator_links.revoked_at IS NULL
                              THEN operator_links.granted_at ELSE now() END,
            subject_ref = CASE WHEN operator_links.revoked_at IS NULL
                               THEN operator_links.subject_ref ELSE EXCLUDED.subject_ref END,
            revoked_at = NULL
        RETURNING operator_id, subject_ref, resident_id::text, scope, granted_at, revoked_at
        """,
        operator_id,
        subject_ref,
        resident_id,
        scope,
    )


async def copy_links(
    conn: Any, operator_id: str, links: Sequence[tuple[str, str]], scope: list[str], granted: Any
) -> None:
    """Many new links at once (``COPY``): (subject_ref, resident_id) pairs consented at
    ``granted``. A pair that already exists fails the whole copy (unique constraints)."""
    await conn.copy_records_to_table(
        "operator_links",
        records=[(operator_id, ref, uuid.UUID(rid), scope, granted) for ref, rid in links],
        columns=["operator_id", "subject_ref", "resident_id", "scope", "granted_at"],
    )


async def revoke_link(conn: Any, resident_id: str, operator_id: str) -> bool:
    done = await conn.fetchval(
        "UPDATE operator_links SET revoked_at = now() WHERE resident_id = $1 "
        "AND operator_id = $2 AND revoked_at IS NULL RETURNING true",
        resident_id,
        operator_id,
    )
    return bool(done)


async def resident_links(conn: Any, resident_id: str) -> list[Any]:
    return list(
        await conn.fetch(
            """
            SELECT l.operator_id, o.name AS operator_name, l.subject_ref, l.resident_id::text,
                   l.scope, l.granted_at, l.revoked_at
            FROM operator_links l JOIN operators o ON o.id = l.operator_id
            WHERE l.resident_id = $1 ORDER BY l.operator_id
            """,
            resident_id,
        )
    )


async def resolve_subjects(conn: Any, operator_id: str, subjects: Sequence[str]) -> list[Any]:
    """Links of the batch's subjects (one query). The residents' home districts and their
    per-resident lock come from the residents package (``residents.service.lock_homes``)."""
    return list(
        await conn.fetch(
            """
            SELECT l.subject_ref, l.resident_id::text AS resident_id, l.scope, l.granted_at,
                   l.revoked_at
            FROM operator_links l
            WHERE l.operator_id = $1 AND l.subject_ref = ANY($2::text[])
            """,
            operator_id,
            list(subjects),
        )
    )


# --- the batch path --------------------------------------------------------------------------


async def read_usage(conn: Any, resident_ids: Sequence[str]) -> dict[str, str]:
    """The residents' running usage (JSON text); read after their lock, in its own statement,
    so it sees what a batch that held the lock before committed."""
    if not resident_ids:
        return {}
    rows = await conn.fetch(
        "SELECT resident_id::text, used::text FROM behaviour_usage "
        "WHERE resident_id = ANY($1::uuid[])",
        list(resident_ids),
    )
    return {r[0]: r[1] for r in rows}


async def save_usage(conn: Any, resident_ids: Sequence[str], used: Sequence[str]) -> dict[str, int]:
    """Write the residents' new usage, one row version each (created on their first credited
    activity); their sequence numbers (``trip_key``)."""
    if not resident_ids:
        return {}
    rows = await conn.fetch(
        """
        INSERT INTO behaviour_usage AS u (resident_id, used)
        SELECT r, used::jsonb FROM unnest($1::uuid[], $2::text[]) AS v(r, used) ORDER BY r
        ON CONFLICT (resident_id) DO UPDATE SET used = EXCLUDED.used
        RETURNING resident_id::text, seq
        """,
        list(resident_ids),
        list(used),
    )
    return {r[0]: r[1] for r in rows}


async def plan_for_this_batch(conn: Any) -> None:
    """Plan this transaction's statements for their actual arguments, not a cached generic plan.

    A batch's array arguments run from 1 to 5,000 elements and the tables grow fast: a generic
    plan cached while a table was nearly empty (a sequential scan filtering on ``= ANY($n)``)
    turned a 5,000-record lookup into a 30 s scan once the table held 400k rows (seen in the
    ingestion benchmark as a statement timeout). Planning costs well under a millisecond per
    statement, a few statements per 5,000 events.
    """
    await conn.execute("SET LOCAL plan_cache_mode = force_custom_plan")


async def existing_records(conn: Any, operator_id: str, record_ids: Sequence[str]) -> list[Any]:
    return list(
        await conn.fetch(
            """
            SELECT record_id, id::text, status, reduction_g, points, reason_code, reason_message,
                   CASE WHEN methodology_code IS NULL THEN NULL
                        ELSE methodology_code || '@' || methodology_version END
                       AS methodology_version,
                   content_digest
            FROM behaviour_events WHERE operator_id = $1 AND record_id = ANY($2::text[])
            """,
            operator_id,
            list(record_ids),
        )
    )


# A stored trip claim takes part in the resolution when it is credited, superseded, or refused
# for an overlap with its own reduction kept (claim_g; rows from before migration 0026 have none).
_CLAIM_ROWS = """
    (e.status = 'accepted' AND e.trip_key IS NOT NULL)
    OR e.status = 'superseded'
    OR (e.status = 'rejected' AND e.claim_g IS NOT NULL
        AND e.reason_code IN ('overlapping_activity', 'claim_outranked',
                              'displacement_points_spent'))
"""

_TRIP_CLAIMS = f"""
WITH RECURSIVE q(r, s, t) AS (
    SELECT * FROM unnest($1::uuid[], $2::timestamptz[], $3::timestamptz[])
), found(id, resident_id, s, t) AS (
    SELECT e.id, e.resident_id, e.started_at, e.ended_at
    FROM q JOIN behaviour_events e
      ON e.resident_id = q.r AND e.started_at < q.t AND e.ended_at > q.s
    WHERE {_CLAIM_ROWS}
    UNION
    SELECT e.id, e.resident_id, e.started_at, e.ended_at
    FROM found f JOIN behaviour_events e
      ON e.resident_id = f.resident_id AND e.started_at < f.t + interval '1 second'
     AND e.ended_at > f.s - interval '1 second'
    WHERE {_CLAIM_ROWS}
)
SELECT e.id::text, e.operator_id, e.record_id, e.resident_id::text, e.kind, e.mode,
       e.behaviour, e.started_at, e.ended_at, e.status, e.reason_code,
       coalesce(e.claim_g, e.reduction_g) AS claim_g, e.reduction_g, e.points, e.distance_m,
       e.district_code, e.content_digest, e.credit_seq
FROM behaviour_events e WHERE e.id IN (SELECT id FROM found)
"""


async def trip_claims(
    conn: Any, residents: Sequence[str], starts: Sequence[datetime], ends: Sequence[datetime]
) -> list[Any]:
    """The stored trip claims connected to the given trips (same resident, overlapping in
    time, directly or through a chain of stored claims): one recursive statement over the
    resident index. Bounds are widened by a second (the caller decides overlaps on whole
    seconds, as the exclusion constraint does): a few extra rows, never a missing one."""
    if not residents:
        return []
    return list(
        await conn.fetch(
            _TRIP_CLAIMS,
            list(residents),
            [s - _SECOND for s in starts],
            [t + _SECOND for t in ends],
        )
    )


_SECOND = timedelta(seconds=1)

_RESOLVE_STORED = """
UPDATE behaviour_events e
SET status = v.status, reason_code = v.reason_code, reason_message = v.reason_message,
    reduction_g = v.reduction_g, points = v.points, trip_key = v.trip_key,
    credit_seq = v.credit_seq, superseded_by = v.superseded_by,
    history = coalesce(e.history, '[]'::jsonb) || jsonb_build_array(jsonb_build_object(
        'status', e.status, 'reason_code', e.reason_code, 'reduction_g', e.reduction_g,
        'points', e.points, 'until', $11::timestamptz))
FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::int8[], $6::int8[],
            $7::box[], $8::int4[], $9::uuid[], $10::text[])
    AS v(id, status, reason_code, reason_message, reduction_g, points, trip_key, credit_seq,
         superseded_by, was)
WHERE e.id = v.id AND e.status = v.was
RETURNING e.id::text
"""


class StoredChange(NamedTuple):
    """A stored claim's new verdict (``was``: the status the resolution read, checked again)."""

    id: str
    was: str
    status: str
    reason_code: str | None
    reason_message: str | None
    reduction_g: int
    points: int
    trip_key: tuple[float, float, float, float] | None
    credit_seq: int | None
    superseded_by: str | None


async def change_stored(conn: Any, changes: Sequence[StoredChange], at: datetime) -> int:
    """Apply the resolution's changes to stored claims (one statement), each row's previous
    verdict appended to its ``history``; the count of rows changed. Callers run the
    displacements (accepted -> superseded) before the credits (-> accepted): the exclusion
    constraint is checked row by row."""
    if not changes:
        return 0
    rows = await conn.fetch(
        _RESOLVE_STORED,
        [c.id for c in changes],
        [c.status for c in changes],
        [c.reason_code for c in changes],
        [c.reason_message for c in changes],
        [c.reduction_g for c in changes],
        [c.points for c in changes],
        [trip_box(c.trip_key) for c in changes],
        [c.credit_seq for c in changes],
        [c.superseded_by for c in changes],
        [c.was for c in changes],
        at,
    )
    return len(rows)


async def existing_activities(conn: Any, keys: Sequence[str]) -> set[str]:
    if not keys:
        return set()
    rows = await conn.fetch(
        "SELECT activity_key FROM behaviour_events WHERE activity_key = ANY($1::text[]) "
        "AND status = 'accepted'",
        list(keys),
    )
    return {r[0] for r in rows}


async def steps_credited(
    conn: Any, residents: Sequence[str], days: Sequence[datetime]
) -> dict[tuple[str, datetime], int]:
    """The highest step count already credited per (resident, programme day start), any
    source: the base a new cumulative report of that day builds on."""
    rows = await conn.fetch(
        """
        SELECT e.resident_id::text, e.started_at, max(e.quantity)::bigint
        FROM behaviour_events e
        JOIN (SELECT DISTINCT * FROM unnest($1::uuid[], $2::timestamptz[])) AS q(r, s)
          ON e.resident_id = q.r AND e.started_at = q.s
        WHERE e.kind = 'daily_steps' AND e.status = 'accepted'
        GROUP BY 1, 2
        """,
        list(residents),
        list(days),
    )
    return {(r[0], r[1]): int(r[2]) for r in rows}


async def meter_history(
    conn: Any,
    operator_id: str,
    modes: Sequence[str],
    accounts: Sequence[str],
    since: datetime,
    until: datetime,
) -> list[Any]:
    """Earlier readings of the batch's utility accounts (any status), for baselines."""
    return list(
        await conn.fetch(
            """
            SELECT mode, account, started_at, ended_at, quantity FROM behaviour_events
            WHERE kind = 'meter_reading' AND operator_id = $1
              AND (mode, account) IN (SELECT * FROM unnest($2::text[], $3::text[]))
              AND started_at >= $4 AND started_at < $5
            """,
            operator_id,
            list(modes),
            list(accounts),
            since,
            until,
        )
    )


EVENT_COLUMNS = (
    "id",
    "operator_id",
    "record_id",
    "subject_ref",
    "resident_id",
    "kind",
    "mode",
    "behaviour",
    "started_at",
    "ended_at",
    "received_at",
    "status",
    "reason_code",
    "reason_message",
    "distance_m",
    "distance_source",
    "quantity",
    "account",
    "district_code",
    "methodology_code",
    "methodology_version",
    "factor_g",
    "reduction_g",
    "points",
    "trip_key",
    "activity_key",
    "content_digest",
    "claim_g",
)
_TYPES = (
    "uuid",
    "text",
    "text",
    "text",
    "uuid",
    "text",
    "text",
    "text",
    "timestamptz",
    "timestamptz",
    "timestamptz",
    "text",
    "text",
    "text",
    "int4",
    "text",
    "float8",
    "text",
    "text",
    "text",
    "int4",
    "float8",
    "int8",
    "int8",
    "text",
    "text",
    "bytea",
    "int8",
)
_TRIP_KEY = EVENT_COLUMNS.index("trip_key")
_SELECT = ", ".join(
    f"${i + 1}::{t}[]" if c != "trip_key" else f"${i + 1}::box[]"
    for i, (c, t) in enumerate(zip(EVENT_COLUMNS, _TYPES, strict=True))
)
_INSERT_EVENTS = f"""
    INSERT INTO behaviour_events ({", ".join(EVENT_COLUMNS)})
    SELECT {", ".join(EVENT_COLUMNS)}
    FROM unnest({_SELECT}) AS v({", ".join(EVENT_COLUMNS)})
    ON CONFLICT DO NOTHING
    RETURNING id::text
"""


def trip_box(key: tuple[float, float, float, float] | None) -> Any:
    """``rules.trip_key`` (x1, y1, x2, y2) as the ``box`` the exclusion constraint compares."""
    # asyncpg's box codec takes any pair of (x, y) pairs; a plain tuple avoids its Box type.
    return None if key is None else ((key[2], key[3]), (key[0], key[1]))


async def insert_events(conn: Any, rows: Sequence[Sequence[Any]]) -> set[str] | None:
    """Insert events given row-wise (``EVENT_COLUMNS`` order, ``trip_key`` as (x1, y1, x2, y2)).

    Returns None when every row went in, else the ids actually inserted. The normal path is
    one binary ``COPY`` inside a savepoint: no speculative insertion, so each index (and the
    GiST exclusion check) is visited once per row. Only when a concurrent transaction got a
    row in first (same record, overlapping accepted trip, same activity: a unique or
    exclusion violation) is the batch re-sent as ``INSERT … ON CONFLICT DO NOTHING``, which
    arbitrates every unique index and the exclusion constraint; the caller decides what a
    missing row means.
    """
    if not rows:
        return None
    records = [(*r[:_TRIP_KEY], trip_box(r[_TRIP_KEY]), *r[_TRIP_KEY + 1 :]) for r in rows]
    try:
        async with conn.transaction():
            await conn.copy_records_to_table(
                "behaviour_events", records=records, columns=EVENT_COLUMNS
            )
        return None
    except (asyncpg.UniqueViolationError, asyncpg.ExclusionViolationError):
        pass
    cols = [list(c) for c in zip(*records, strict=True)]
    return {r[0] for r in await conn.fetch(_INSERT_EVENTS, *cols)}


async def resident_events(
    conn: Any, resident_id: str, before: datetime | None, limit: int
) -> list[Any]:
    return list(
        await conn.fetch(
            """
            SELECT id::text, operator_id, record_id, kind, mode, behaviour, started_at, ended_at,
                   status, reason_code, reason_message, distance_m, district_code,
                   methodology_code, methodology_version, factor_g, reduction_g, points
            FROM behaviour_events
            WHERE resident_id = $1 AND ($2::timestamptz IS NULL OR started_at < $2)
            ORDER BY started_at DESC LIMIT $3
            """,
            resident_id,
            before,
            limit,
        )
    )


# =============================================================================================
# Published reads of a resident's events (behaviours/reads.py): a keyset page, one event by
# id, monthly figures by mode. Read-only, each scoped to the resident; keep this section last.
# =============================================================================================

# A superseded event (its credit displaced by a better overlapping claim, migration 0026) reads
# as rejected, with its reason `superseded_by_source`: the published status stays one of the
# two the mobile contract knows.
VIEW_STATUS = "CASE WHEN status = 'superseded' THEN 'rejected' ELSE status END"
_EVENT_VIEW_COLUMNS = f"""
    id::text AS event_id, kind, mode, {VIEW_STATUS} AS status, started_at AS occurred_at,
    received_at AS recorded_at, operator_id, distance_m, reduction_g, points,
    CASE WHEN methodology_code IS NULL THEN NULL
         ELSE methodology_code || '@' || methodology_version END AS methodology_version,
    reason_code, reason_message AS reason
"""

# The history time: the reported start, but never later than the receipt. An activity cannot
# have happened after it was received; a record claiming a time in the future (rejected
# `in_future`, e.g. years ahead) is kept with its claim but placed at its receipt, instead of
# staying at the top of the history forever. Pages key on (history_at, id): ties between
# events of the same instant are never skipped.
HISTORY_AT = "least(started_at, received_at)"
EVENTS_PAGE_SQL = f"""
SELECT {_EVENT_VIEW_COLUMNS}, {HISTORY_AT} AS history_at
FROM behaviour_events
WHERE resident_id = $1::uuid
  AND ($2::text IS NULL OR kind = $2)
  AND ($3::text IS NULL OR {VIEW_STATUS} = $3)
  AND ($4::timestamptz IS NULL OR ({HISTORY_AT}, id) < ($4, $5::uuid))
ORDER BY {HISTORY_AT} DESC, id DESC
LIMIT $6
"""


async def events_page(
    conn: Any,
    resident_id: str,
    *,
    kind: str | None,
    status: str | None,
    before: tuple[datetime, str] | None,
    limit: int,
) -> list[Any]:
    """The resident's events, newest first, after ``before`` = (history_at, id)."""
    return list(
        await conn.fetch(
            EVENTS_PAGE_SQL,
            resident_id,
            kind,
            status,
            before[0] if before else None,
            before[1] if before else None,
            limit,
        )
    )


async def event_view(conn: Any, resident_id: str, event_id: str) -> Any:
    """One event of this resident (another resident's id finds nothing)."""
    return await conn.fetchrow(
        f"SELECT {_EVENT_VIEW_COLUMNS} FROM behaviour_events "
        "WHERE id = $1::uuid AND resident_id = $2::uuid",
        event_id,
        resident_id,
    )


async def events_monthly(
    conn: Any, resident_id: str, since: datetime, until: datetime, zone: str
) -> list[Any]:
    """Accepted events started in [since, until) per month of the programme's time zone
    ``zone`` (an IANA name) and mode: one GROUP BY."""
    return list(
        await conn.fetch(
            """
            SELECT to_char(started_at AT TIME ZONE $4::text, 'YYYY-MM') AS month, mode,
                   count(*) AS trips, coalesce(sum(distance_m), 0) AS distance_m,
                   sum(reduction_g) AS reduction_g, sum(points) AS points
            FROM behaviour_events
            WHERE resident_id = $1::uuid AND status = 'accepted'
              AND started_at >= $2 AND started_at < $3
            GROUP BY 1, 2 ORDER BY 1 DESC, 2
            """,
            resident_id,
            since,
            until,
            zone,
        )
    )


# The government reports' rollup (reporting.rollups): accepted events started in [since, until)
# per period of the programme's calendar (``date_trunc`` unit in the time zone $4) with every
# margin of district x mode x methodology, in one GROUPING SETS statement, so the distinct
# participants are exact at each level (a margin's flag is 1 where the level is "all").
TRAVEL_CUBE_SQL = """
SELECT period, district, mode, methodology,
       GROUPING(district) AS all_districts, GROUPING(mode) AS all_modes,
       GROUPING(methodology) AS all_methodologies,
       count(*) FILTER (WHERE kind = ANY($5::text[]))::bigint AS trips,
       count(DISTINCT resident_id)::bigint AS participants,
       coalesce(sum(reduction_g), 0)::bigint AS grams,
       coalesce(sum(points), 0)::bigint AS points
FROM (
    SELECT date_trunc($1, started_at AT TIME ZONE $4::text)::date AS period,
           coalesce(district_code, 'unknown') AS district, mode,
           coalesce(methodology_code || '@' || methodology_version, 'none') AS methodology,
           kind, resident_id, reduction_g, points
    FROM behaviour_events
    WHERE status = 'accepted' AND started_at >= $2 AND started_at < $3
) e
GROUP BY GROUPING SETS (
    (period, district, mode, methodology), (period, district, mode), (period, district),
    (period, mode), (period)
)
"""


async def travel_cube(
    conn: Any, unit: str, since: datetime, until: datetime, zone: str, trip_kinds: Sequence[str]
) -> list[Any]:
    return list(await conn.fetch(TRAVEL_CUBE_SQL, unit, since, until, zone, list(trip_kinds)))


# --- administration (reporting.admin through the service): operators, keys, methodologies ----


async def operator_rows(conn: Any) -> list[Any]:
    """Every operator, suspended ones and the app's pseudo-operator included."""
    return list(
        await conn.fetch(
            "SELECT id, name, kind, region_code, gtfs_feed, scopes, created_at, disabled_at "
            "FROM operators ORDER BY id"
        )
    )


async def set_operator_disabled(conn: Any, operator_id: str, disabled: bool) -> bool:
    done = await conn.fetchval(
        """
        UPDATE operators
        SET disabled_at = CASE WHEN $2 THEN coalesce(disabled_at, now()) ELSE NULL END
        WHERE id = $1 RETURNING true
        """,
        operator_id,
        disabled,
    )
    return bool(done)


async def key_rows(conn: Any, operator_id: str) -> list[Any]:
    """An operator's keys (never their secrets), oldest first."""
    return list(
        await conn.fetch(
            "SELECT key_id, created_at, revoked_at FROM operator_keys WHERE operator_id = $1 "
            "ORDER BY created_at, key_id",
            operator_id,
        )
    )


async def retire_key_at(conn: Any, operator_id: str, key_id: str, at: datetime) -> bool:
    """Schedule a key's revocation at ``at`` (a rotation's overlap); never later than a
    revocation already scheduled, never for a key already revoked."""
    done = await conn.fetchval(
        """
        UPDATE operator_keys SET revoked_at = $3
        WHERE operator_id = $1 AND key_id = $2 AND (revoked_at IS NULL OR revoked_at > $3)
          AND (revoked_at IS NULL OR revoked_at > now())
        RETURNING true
        """,
        operator_id,
        key_id,
        at,
    )
    return bool(done)


async def methodology_versions(conn: Any, code: str) -> list[int]:
    rows = await conn.fetch(
        "SELECT version FROM methodologies WHERE code = $1 ORDER BY version", code
    )
    return [int(r["version"]) for r in rows]


async def methodology_factor_rows(conn: Any, code: str, version: int) -> list[Any]:
    return list(
        await conn.fetch(
            "SELECT mode, behaviour, unit, factor_g, project_g_per_kwh, min_distance_m, "
            "max_distance_m, max_speed_kmh, source, typical_trip_m FROM methodology_factors "
            "WHERE code = $1 AND version = $2 ORDER BY mode",
            code,
            version,
        )
    )


async def methodology_caps_rows(conn: Any, code: str, version: int) -> list[Any]:
    return list(
        await conn.fetch(
            "SELECT behaviour, daily_cap_g, yearly_cap_g, daily_max_events, source "
            "FROM methodology_caps WHERE code = $1 AND version = $2 ORDER BY behaviour",
            code,
            version,
        )
    )


async def factor_effect(
    conn: Any, since: datetime, until: datetime, modes: Sequence[str], factors: Sequence[float]
) -> list[Any]:
    """Accepted events started in [since, until) by mode and district: how many, the grams
    credited, and the grams the same events would have with ``factors`` (by mode; each event's
    grams scaled by new factor / its factor, so its distance rules stay as they were)."""
    return list(
        await conn.fetch(
            """
            WITH draft AS (
                SELECT * FROM unnest($3::text[], $4::float8[]) AS d (mode, factor_g)
            )
            SELECT e.mode, coalesce(e.district_code, 'unknown') AS district,
                   count(*)::bigint AS events,
                   coalesce(sum(e.reduction_g), 0)::bigint AS current_g,
                   coalesce(sum(CASE
                       WHEN d.mode IS NULL THEN e.reduction_g
                       WHEN e.factor_g > 0 THEN e.reduction_g * d.factor_g / e.factor_g
                       ELSE 0 END), 0)::float8 AS draft_g
            FROM behaviour_events e LEFT JOIN draft d ON d.mode = e.mode
            WHERE e.status = 'accepted' AND e.started_at >= $1 AND e.started_at < $2
            GROUP BY 1, 2 ORDER BY 1, 2
            """,
            since,
            until,
            list(modes),
            list(factors),
        )
    )


async def verified_grams_of_year(
    conn: Any, year: int, zone: str, methodology: str
) -> tuple[int, int]:
    """Residents' verified grams of ``year`` (in ``zone``): ``methodology``'s, and all of them
    (enterprises.pooling reads them under its lock)."""
    r = await conn.fetchrow(
        """
        SELECT coalesce(sum(reduction_g) FILTER (WHERE methodology_code = $3), 0)::bigint AS of_m,
               coalesce(sum(reduction_g), 0)::bigint AS all_m
        FROM behaviour_events
        WHERE status = 'accepted' AND resident_id IS NOT NULL AND reduction_g > 0
          AND started_at >= make_timestamptz($1, 1, 1, 0, 0, 0, $2)
          AND started_at < make_timestamptz($1 + 1, 1, 1, 0, 0, 0, $2)
        """,
        year,
        zone,
        methodology,
    )
    return int(r["of_m"]), int(r["all_m"])


# --- members' commuting trips (enterprises.commuting): set-wise over a programme's members ---

# The accepted trips of members ($1 resident ids, each from $2 its joining time) of the modes
# $4 that start on an ISO weekday of $5 inside one of the daily windows [$6, $7) of the time
# zone $3's local time. One join on the (resident_id, started_at) index, no loop per resident.
_MEMBERS_TRIPS = """
FROM unnest($1::uuid[], $2::timestamptz[]) AS m(resident_id, since)
JOIN behaviour_events e ON e.resident_id = m.resident_id AND e.started_at >= m.since
CROSS JOIN LATERAL (SELECT e.started_at AT TIME ZONE $3::text AS local) l
WHERE e.status = 'accepted' AND e.mode = ANY($4::text[])
  AND extract(isodow FROM l.local)::int = ANY($5::int[])
  AND EXISTS (SELECT 1 FROM unnest($6::time[], $7::time[]) AS w(f, t)
              WHERE l.local::time >= w.f AND l.local::time < w.t)
"""


class CommutingFilter(NamedTuple):
    """Which trips of which members a commuting read takes (``since``: each member's joining
    time; windows as (start, end) local times)."""

    resident_ids: Sequence[str]
    since: Sequence[datetime]
    zone: str
    modes: Sequence[str]
    weekdays: Sequence[int]
    windows: Sequence[tuple[Any, Any]]  # datetime.time pairs

    def args(self) -> list[Any]:
        return [
            [uuid.UUID(r) for r in self.resident_ids],
            list(self.since),
            self.zone,
            list(self.modes),
            list(self.weekdays),
            [w[0] for w in self.windows],
            [w[1] for w in self.windows],
        ]


async def commuting_totals(
    conn: Any, f: CommutingFilter, start: datetime, end: datetime
) -> list[Any]:
    """Totals of the members' commuting trips started in [start, end) by local month and mode
    with every margin (GROUPING SETS, so each level's distinct residents are exact): trips,
    residents, metres, grams, points. Never an individual's row."""
    return list(
        await conn.fetch(
            f"""
            SELECT month, mode, GROUPING(month) AS all_months, GROUPING(mode) AS all_modes,
                   count(*)::bigint AS trips, count(DISTINCT resident_id)::bigint AS people,
                   coalesce(sum(distance_m), 0)::bigint AS distance_m,
                   coalesce(sum(reduction_g), 0)::bigint AS reduction_g,
                   coalesce(sum(points), 0)::bigint AS points
            FROM (
                SELECT to_char(l.local, 'YYYY-MM') AS month, e.mode, e.resident_id,
                       coalesce(e.distance_m, 0) AS distance_m, e.reduction_g, e.points
                {_MEMBERS_TRIPS}
                  AND e.started_at >= $8 AND e.started_at < $9
            ) x
            GROUP BY GROUPING SETS ((month, mode), (month), (mode), ())
            """,
            *f.args(),
            start,
            end,
        )
    )


async def commuting_trips(
    conn: Any, f: CommutingFilter, received_after: datetime, received_until: datetime
) -> list[Any]:
    """The members' commuting trips with points received in (received_after, received_until]:
    event id, resident id, points (the bonus run's input), oldest receipt first."""
    return list(
        await conn.fetch(
            f"""
            SELECT e.id AS event_id, e.resident_id::text AS resident_id, e.points
            {_MEMBERS_TRIPS}
              AND e.points > 0 AND e.received_at > $8 AND e.received_at <= $9
            ORDER BY e.received_at, e.id
            """,
            *f.args(),
            received_after,
            received_until,
        )
    )
