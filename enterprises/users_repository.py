"""All SQL of the enterprise API's tables (enterprise_users, enterprise_reports); the sign-in
attempt budgets in Redis are kit/passwords.py's. Callers go through ``enterprises.users`` and
``enterprises.report``; nothing else names these tables."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import asyncpg

from enterprises.schemas import Enterprise

_USER = "id, enterprise_id, login, display_name, created_by, created_at, disabled_at"


class LoginExists(Exception):
    """The login is someone's already (the unique index decided)."""


async def insert_user(
    tx: Any,
    *,
    enterprise_id: uuid.UUID,
    login: str,
    display_name: str,
    password_hash: str,
    created_by: uuid.UUID | None,
) -> Any:
    try:
        return await tx.conn.fetchrow(
            f"""
            INSERT INTO enterprise_users (enterprise_id, login, display_name, password_hash,
                                          created_by)
            VALUES ($1, $2, $3, $4, $5)
            RETURNING {_USER}
            """,
            enterprise_id,
            login,
            display_name,
            password_hash,
            created_by,
        )
    except asyncpg.UniqueViolationError:
        raise LoginExists(login) from None


async def user_for_sign_in(conn: Any, login: str) -> Any:
    """The user of ``login`` with its password hash (None: no such login)."""
    return await conn.fetchrow(
        f"SELECT {_USER}, password_hash FROM enterprise_users WHERE login = $1", login
    )


async def user_scope(conn: Any, user_id: str) -> Any:
    """(enterprise_id, disabled_at) of a user, for the guard of every enterprise request."""
    return await conn.fetchrow(
        "SELECT enterprise_id, disabled_at FROM enterprise_users WHERE id = $1::uuid", user_id
    )


async def user_by_id(conn: Any, enterprise_id: uuid.UUID, user_id: uuid.UUID) -> Any:
    return await conn.fetchrow(
        f"SELECT {_USER} FROM enterprise_users WHERE id = $1 AND enterprise_id = $2",
        user_id,
        enterprise_id,
    )


async def users_of(conn: Any, enterprise_id: uuid.UUID) -> list[Any]:
    rows: list[Any] = await conn.fetch(
        f"""
        SELECT {_USER} FROM enterprise_users WHERE enterprise_id = $1
        ORDER BY created_at, id
        """,
        enterprise_id,
    )
    return rows


async def disable_user(tx: Any, enterprise_id: uuid.UUID, user_id: uuid.UUID) -> Any:
    """Disable the user (once: a disabled user keeps its first disabled_at); None when the
    enterprise has no such user."""
    return await tx.conn.fetchrow(
        f"""
        UPDATE enterprise_users SET disabled_at = coalesce(disabled_at, now())
        WHERE id = $1 AND enterprise_id = $2
        RETURNING {_USER}
        """,
        user_id,
        enterprise_id,
    )


async def enterprise(conn: Any, enterprise_id: uuid.UUID) -> Enterprise | None:
    """The registry's row of an enterprise (the profile the API shows)."""
    row = await conn.fetchrow(
        """
        SELECT id, credit_code, name, industry, district_code, size_class, registered_at
        FROM enterprises WHERE id = $1
        """,
        enterprise_id,
    )
    if row is None:
        return None
    return Enterprise(
        id=row["id"],
        credit_code=row["credit_code"],
        name=row["name"],
        industry=row["industry"],
        district=row["district_code"],
        size_class=row["size_class"],
        registered_at=row["registered_at"],
    )


# --- reports -----------------------------------------------------------------------------------

_REPORT = (
    "id, sha256, enterprise_id, period, issued_at, issued_by, media_type, length(content) AS size"
)


async def insert_report(
    tx: Any,
    *,
    report_id: uuid.UUID,
    sha256: str,
    enterprise_id: uuid.UUID,
    period: str,
    issued_at: datetime,
    issued_by: uuid.UUID | None,
    media_type: str,
    content: bytes,
) -> Any:
    return await tx.conn.fetchrow(
        f"""
        INSERT INTO enterprise_reports (id, sha256, enterprise_id, period, issued_at, issued_by,
                                        media_type, content)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
        RETURNING {_REPORT}
        """,
        report_id,
        sha256,
        enterprise_id,
        period,
        issued_at,
        issued_by,
        media_type,
        content,
    )


async def reports_of(conn: Any, enterprise_id: uuid.UUID, limit: int) -> list[Any]:
    rows: list[Any] = await conn.fetch(
        f"""
        SELECT {_REPORT} FROM enterprise_reports WHERE enterprise_id = $1
        ORDER BY issued_at DESC, id DESC LIMIT $2
        """,
        enterprise_id,
        limit,
    )
    return rows


async def report_content(conn: Any, enterprise_id: uuid.UUID, report_id: uuid.UUID) -> Any:
    return await conn.fetchrow(
        f"""
        SELECT {_REPORT}, content FROM enterprise_reports
        WHERE id = $1 AND enterprise_id = $2
        """,
        report_id,
        enterprise_id,
    )


async def report_by_hash(conn: Any, sha256: str) -> Any:
    """What the public may know of a report: whose, which period, when issued."""
    return await conn.fetchrow(
        """
        SELECT r.sha256, r.period, r.issued_at, e.credit_code, e.name
        FROM enterprise_reports r JOIN enterprises e ON e.id = r.enterprise_id
        WHERE r.sha256 = $1
        """,
        sha256,
    )
