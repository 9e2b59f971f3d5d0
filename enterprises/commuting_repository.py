"""SQL of employee commuting programmes (enterprises.commuting): programmes, employee codes,
members, consents, bonus runs and bonuses. Set-wise; functions take an asyncpg connection."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg

from enterprises.commuting_errors import AlreadyMember, ProgrammeExists

_PROGRAMME = """
SELECT p.id, p.enterprise_id, p.name, p.rule, p.created_at, p.bonus_watermark,
       p.invitation_hash IS NOT NULL AS invitation,
       (SELECT count(*) FROM commuting_employee_codes c WHERE c.programme_id = p.id) AS codes,
       e.name AS enterprise_name
FROM commuting_programmes p JOIN enterprises e ON e.id = p.enterprise_id
"""


async def insert_programme(
    conn: Any,
    *,
    programme_id: uuid.UUID,
    enterprise_id: uuid.UUID,
    name: str,
    rule: dict[str, Any],
    invitation_hash: bytes | None,
    created_by: uuid.UUID,
) -> None:
    try:
        async with conn.transaction():
            await conn.execute(
                """
                INSERT INTO commuting_programmes
                    (id, enterprise_id, name, rule, invitation_hash, created_by)
                VALUES ($1, $2, $3, $4, $5, $6)
                """,
                programme_id,
                enterprise_id,
                name,
                rule,
                invitation_hash,
                created_by,
            )
    except asyncpg.UniqueViolationError:
        raise ProgrammeExists("The enterprise already has a programme of that name.") from None


async def add_codes(conn: Any, programme_id: uuid.UUID, hashes: Sequence[bytes]) -> int:
    """Add the codes not there yet; how many were added."""
    if not hashes:
        return 0
    done = await conn.fetchval(
        """
        WITH ins AS (
            INSERT INTO commuting_employee_codes (programme_id, code_hash)
            SELECT $1, h FROM unnest($2::bytea[]) AS u(h)
            ON CONFLICT DO NOTHING RETURNING 1
        )
        SELECT count(*) FROM ins
        """,
        programme_id,
        list(hashes),
    )
    return int(done)


async def programme(conn: Any, enterprise_id: uuid.UUID, programme_id: uuid.UUID) -> Any:
    return await conn.fetchrow(
        _PROGRAMME + "WHERE p.id = $1 AND p.enterprise_id = $2", programme_id, enterprise_id
    )


async def programme_by_id(conn: Any, programme_id: uuid.UUID) -> Any:
    return await conn.fetchrow(_PROGRAMME + "WHERE p.id = $1", programme_id)


async def programme_by_invitation(conn: Any, sha256: bytes) -> Any:
    return await conn.fetchrow(_PROGRAMME + "WHERE p.invitation_hash = $1", sha256)


async def programmes(conn: Any, enterprise_id: uuid.UUID) -> list[Any]:
    return list(
        await conn.fetch(
            _PROGRAMME + "WHERE p.enterprise_id = $1 ORDER BY p.created_at, p.id", enterprise_id
        )
    )


async def programme_ids(conn: Any) -> list[uuid.UUID]:
    return [r["id"] for r in await conn.fetch("SELECT id FROM commuting_programmes ORDER BY id")]


async def set_invitation(conn: Any, programme_id: uuid.UUID, sha256: bytes) -> None:
    await conn.execute(
        "UPDATE commuting_programmes SET invitation_hash = $2 WHERE id = $1",
        programme_id,
        sha256,
    )


async def claim_code(
    conn: Any, programme_id: uuid.UUID, sha256: bytes, resident_id: str, at: datetime
) -> bool:
    """Bind the code to the resident (once: a code someone else used is refused)."""
    done = await conn.fetchval(
        """
        UPDATE commuting_employee_codes
        SET resident_id = $3, claimed_at = coalesce(claimed_at, $4)
        WHERE programme_id = $1 AND code_hash = $2
          AND (resident_id IS NULL OR resident_id = $3)
        RETURNING true
        """,
        programme_id,
        sha256,
        uuid.UUID(resident_id),
        at,
    )
    return bool(done)


_MEMBERSHIP = """
SELECT m.programme_id, m.resident_id, m.joined_at, m.left_at, m.via, m.consent_version,
       p.name AS programme_name, e.name AS enterprise_name
FROM commuting_members m
JOIN commuting_programmes p ON p.id = m.programme_id
JOIN enterprises e ON e.id = p.enterprise_id
"""


async def membership(conn: Any, programme_id: uuid.UUID, resident_id: str) -> Any:
    return await conn.fetchrow(
        _MEMBERSHIP + "WHERE m.programme_id = $1 AND m.resident_id = $2",
        programme_id,
        uuid.UUID(resident_id),
    )


async def memberships(conn: Any, resident_id: str) -> list[Any]:
    return list(
        await conn.fetch(
            _MEMBERSHIP + "WHERE m.resident_id = $1 ORDER BY m.left_at IS NULL DESC, "
            "m.joined_at DESC",
            uuid.UUID(resident_id),
        )
    )


async def lock_resident(conn: Any, resident_id: str) -> None:
    """Serialise one resident's joins and leaves (in the caller's transaction)."""
    await conn.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended('tanpuhui:commuting:' || $1, 0))",
        resident_id,
    )


async def join(
    conn: Any,
    programme_id: uuid.UUID,
    resident_id: str,
    *,
    via: str,
    consent_version: str,
    at: datetime,
) -> bool:
    """A new membership (or a former member's new one); False when already an active member.
    An active membership of another programme is refused (``commuting_already_member``)."""
    try:
        async with conn.transaction():
            done = await conn.fetchval(
                """
                INSERT INTO commuting_members
                    (programme_id, resident_id, joined_at, via, consent_version)
                VALUES ($1, $2, $3, $4, $5)
                ON CONFLICT (programme_id, resident_id) DO UPDATE
                SET joined_at = EXCLUDED.joined_at, left_at = NULL, via = EXCLUDED.via,
                    consent_version = EXCLUDED.consent_version
                WHERE commuting_members.left_at IS NOT NULL
                RETURNING true
                """,
                programme_id,
                uuid.UUID(resident_id),
                at,
                via,
                consent_version,
            )
    except asyncpg.UniqueViolationError:
        raise AlreadyMember(
            "You are a member of another commuting programme: leave it first."
        ) from None
    return bool(done)


async def leave(conn: Any, programme_id: uuid.UUID, resident_id: str, at: datetime) -> bool:
    done = await conn.fetchval(
        """
        UPDATE commuting_members SET left_at = greatest($3, joined_at)
        WHERE programme_id = $1 AND resident_id = $2 AND left_at IS NULL
        RETURNING true
        """,
        programme_id,
        uuid.UUID(resident_id),
        at,
    )
    return bool(done)


async def log_consent(
    conn: Any,
    programme_id: uuid.UUID,
    resident_id: str,
    action: str,
    consent_version: str | None,
    at: datetime,
) -> None:
    await conn.execute(
        """
        INSERT INTO commuting_consents (programme_id, resident_id, action, consent_version, at)
        VALUES ($1, $2, $3, $4, $5)
        """,
        programme_id,
        uuid.UUID(resident_id),
        action,
        consent_version,
        at,
    )


async def active_members(conn: Any, programme_id: uuid.UUID) -> list[Any]:
    """The current members (resident id text, joining time), read at the statement's time."""
    return list(
        await conn.fetch(
            """
            SELECT resident_id::text AS resident_id, joined_at FROM commuting_members
            WHERE programme_id = $1 AND left_at IS NULL ORDER BY resident_id
            """,
            programme_id,
        )
    )


async def lock_programme(conn: Any, programme_id: uuid.UUID) -> Any:
    """The programme's row, locked for a bonus run (one run of a programme at a time)."""
    return await conn.fetchrow(
        "SELECT id, enterprise_id, rule, created_at, bonus_watermark FROM commuting_programmes "
        "WHERE id = $1 FOR UPDATE",
        programme_id,
    )


async def paid_events(
    conn: Any, programme_id: uuid.UUID, event_ids: Sequence[uuid.UUID]
) -> set[uuid.UUID]:
    if not event_ids:
        return set()
    rows = await conn.fetch(
        "SELECT event_id FROM commuting_bonuses WHERE programme_id = $1 "
        "AND event_id = ANY($2::uuid[])",
        programme_id,
        list(event_ids),
    )
    return {r["event_id"] for r in rows}


async def insert_run(
    conn: Any,
    programme_id: uuid.UUID,
    *,
    ran_at: datetime,
    status: str,
    trips: int,
    points: int,
    available: int,
    reason: str | None,
) -> int:
    run_id = await conn.fetchval(
        """
        INSERT INTO commuting_bonus_runs
            (programme_id, ran_at, status, trips, points, available, reason)
        VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id
        """,
        programme_id,
        ran_at,
        status,
        trips,
        points,
        available,
        reason,
    )
    return int(run_id)


async def insert_bonuses(
    conn: Any,
    programme_id: uuid.UUID,
    run_id: int,
    rows: Sequence[tuple[uuid.UUID, str, int, int]],
) -> None:
    """(event id, resident id, points, transfer id) rows of one run."""
    await conn.execute(
        """
        INSERT INTO commuting_bonuses
            (programme_id, event_id, resident_id, points, run_id, transfer_id)
        SELECT $1, u.e, u.r, u.p, $2, u.t
        FROM unnest($3::uuid[], $4::uuid[], $5::bigint[], $6::bigint[]) AS u(e, r, p, t)
        """,
        programme_id,
        run_id,
        [r[0] for r in rows],
        [uuid.UUID(r[1]) for r in rows],
        [r[2] for r in rows],
        [r[3] for r in rows],
    )


async def set_watermark(conn: Any, programme_id: uuid.UUID, at: datetime) -> None:
    await conn.execute(
        "UPDATE commuting_programmes SET bonus_watermark = $2 WHERE id = $1", programme_id, at
    )


async def runs(conn: Any, programme_id: uuid.UUID, limit: int) -> list[Any]:
    return list(
        await conn.fetch(
            """
            SELECT id, ran_at, status, trips, points, available, reason
            FROM commuting_bonus_runs WHERE programme_id = $1 ORDER BY ran_at DESC, id DESC
            LIMIT $2
            """,
            programme_id,
            limit,
        )
    )
