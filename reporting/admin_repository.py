"""All SQL of the administrators' methodology drafts (gov_methodology_drafts). Callers go
through ``reporting.admin``; nothing else names the table."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

_DRAFT = (
    "id, code, title, source, effective_from, factors, caps, created_by, created_at, "
    "updated_at, published_version, published_at"
)


async def insert_draft(
    tx: Any,
    *,
    draft_id: uuid.UUID,
    code: str,
    title: str,
    source: str,
    effective_from: datetime,
    factors: list[Any],
    caps: list[Any],
    created_by: str,
) -> Any:
    return await tx.conn.fetchrow(
        f"""
        INSERT INTO gov_methodology_drafts (id, code, title, source, effective_from, factors,
                                            caps, created_by)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
        RETURNING {_DRAFT}
        """,
        draft_id,
        code,
        title,
        source,
        effective_from,
        factors,
        caps,
        created_by,
    )


async def draft(conn: Any, draft_id: uuid.UUID, *, lock: bool = False) -> Any:
    return await conn.fetchrow(
        f"SELECT {_DRAFT} FROM gov_methodology_drafts WHERE id = $1"
        + (" FOR UPDATE" if lock else ""),
        draft_id,
    )


async def drafts(conn: Any) -> list[Any]:
    rows: list[Any] = await conn.fetch(
        f"SELECT {_DRAFT} FROM gov_methodology_drafts ORDER BY created_at DESC, id"
    )
    return rows


async def update_draft(
    tx: Any,
    draft_id: uuid.UUID,
    *,
    title: str,
    source: str,
    effective_from: datetime,
    factors: list[Any],
    caps: list[Any],
) -> Any:
    return await tx.conn.fetchrow(
        f"""
        UPDATE gov_methodology_drafts
        SET title = $2, source = $3, effective_from = $4, factors = $5, caps = $6,
            updated_at = now()
        WHERE id = $1 AND published_at IS NULL
        RETURNING {_DRAFT}
        """,
        draft_id,
        title,
        source,
        effective_from,
        factors,
        caps,
    )


async def mark_published(
    tx: Any, draft_id: uuid.UUID, version: int, effective_from: datetime
) -> Any:
    return await tx.conn.fetchrow(
        f"""
        UPDATE gov_methodology_drafts
        SET published_version = $2, published_at = now(), effective_from = $3
        WHERE id = $1 AND published_at IS NULL
        RETURNING {_DRAFT}
        """,
        draft_id,
        version,
        effective_from,
    )


async def delete_draft(tx: Any, draft_id: uuid.UUID) -> bool:
    done = await tx.conn.fetchval(
        "DELETE FROM gov_methodology_drafts WHERE id = $1 AND published_at IS NULL RETURNING true",
        draft_id,
    )
    return bool(done)
