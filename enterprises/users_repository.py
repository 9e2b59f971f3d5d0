"""All SQL of the enterprise API's tables (enterprise_users, enterprise_reports) and its Redis
keys (the sign-in attempt budgets). Callers go through ``enterprises.users`` and
``enterprises.report``; nothing else names these tables."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
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


# --- Redis: the sign-in attempt budgets --------------------------------------------------------

# One script, so that concurrent attempts cannot overshoot a budget: KEYS = the budgets,
# ARGV = window (s), then one limit per budget. Each admitted attempt is counted up front in
# every budget (0 returned); a spent budget refuses and counts nothing ({i, seconds left}).
# A successful sign-in gives its count back (``refund_attempt``), so only failures stay.
_TAKE_ATTEMPT = """
for i = 1, #KEYS do
  local used = tonumber(redis.call('GET', KEYS[i]) or '0')
  if used >= tonumber(ARGV[i + 1]) then
    return {i, math.max(redis.call('TTL', KEYS[i]), 1)}
  end
end
for i = 1, #KEYS do
  if redis.call('INCR', KEYS[i]) == 1 then redis.call('EXPIRE', KEYS[i], ARGV[1]) end
end
return {0, 0}
"""

_REFUND_ATTEMPT = """
for i = 1, #KEYS do
  if tonumber(redis.call('GET', KEYS[i]) or '0') > 0 then redis.call('DECR', KEYS[i]) end
end
return 0
"""


def attempt_keys(login_hash: str, client_hash: str) -> list[str]:
    """The budgets of one attempt: this login from this client, this login, this client."""
    return [
        f"enterprise:sign-in:login-client:{login_hash}:{client_hash}",
        f"enterprise:sign-in:login:{login_hash}",
        f"enterprise:sign-in:client:{client_hash}",
    ]


async def take_attempt(
    redis: Any, keys: Sequence[str], window_s: int, limits: Sequence[int]
) -> tuple[int, int]:
    """(0, 0) when the attempt may proceed (counted); else (1-based budget spent, seconds)."""
    assert len(keys) == len(limits)
    out = await redis.eval(_TAKE_ATTEMPT, len(keys), *keys, window_s, *limits)
    return int(out[0]), int(out[1])


async def refund_attempt(redis: Any, keys: Sequence[str]) -> None:
    await redis.eval(_REFUND_ATTEMPT, len(keys), *keys)
