"""All SQL of the government audit log (gov_audit_log). Callers go through
``reporting.audit``; nothing else names the table. The table is append-only: this module has
an INSERT and reads, and the database refuses anything else (migration 0060)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

_ENTRY = "id, at, actor, action, target, before, after"


async def insert(tx: Any, *, actor: str, action: str, target: str, before: Any, after: Any) -> None:
    await tx.conn.execute(
        """
        INSERT INTO gov_audit_log (actor, action, target, before, after)
        VALUES ($1, $2, $3, $4, $5)
        """,
        actor,
        action,
        target,
        before,
        after,
    )


async def entries(
    conn: Any,
    *,
    limit: int,
    before_id: int | None = None,
    actor: str | None = None,
    action: str | None = None,
    target: str | None = None,
    since: datetime | None = None,
) -> list[Any]:
    """Newest first, at most ``limit``, below ``before_id`` when given (the next page)."""
    rows: list[Any] = await conn.fetch(
        f"""
        SELECT {_ENTRY} FROM gov_audit_log
        WHERE ($2::bigint IS NULL OR id < $2)
          AND ($3::text IS NULL OR actor = $3)
          AND ($4::text IS NULL OR action = $4 OR starts_with(action, $4 || '.'))
          AND ($5::text IS NULL OR target = $5)
          AND ($6::timestamptz IS NULL OR at >= $6)
        ORDER BY id DESC
        LIMIT $1
        """,
        limit,
        before_id,
        actor,
        action,
        target,
        since,
    )
    return rows
