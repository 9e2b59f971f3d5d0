"""All SQL of the government users' table (gov_users). Callers go through ``reporting.users``;
nothing else names the table. (The sign-in attempt budgets in Redis are kit/passwords.py's.)"""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

_USER = "id, login, display_name, role, created_by, created_at, disabled_at"


class LoginExists(Exception):
    """The login is someone's already (the unique index decided)."""


async def insert_user(
    tx: Any,
    *,
    user_id: uuid.UUID,
    login: str,
    display_name: str,
    role: str,
    password_hash: str,
    totp_secret: str,
    created_by: uuid.UUID | None,
) -> Any:
    try:
        return await tx.conn.fetchrow(
            f"""
            INSERT INTO gov_users (id, login, display_name, role, password_hash, totp_secret,
                                   created_by)
            VALUES ($1, $2, $3, $4, $5, $6, $7)
            RETURNING {_USER}
            """,
            user_id,
            login,
            display_name,
            role,
            password_hash,
            totp_secret,
            created_by,
        )
    except asyncpg.UniqueViolationError:
        raise LoginExists(login) from None


async def user_for_sign_in(conn: Any, login: str) -> Any:
    """The user of ``login`` with its password hash and sealed TOTP secret (None: no such
    login)."""
    return await conn.fetchrow(
        f"""
        SELECT {_USER}, password_hash, totp_secret, totp_last_step FROM gov_users
        WHERE login = $1
        """,
        login,
    )


async def take_totp_step(conn: Any, user_id: uuid.UUID, step: int) -> bool:
    """Record ``step`` as the user's last accepted TOTP step, only if it is later than the one
    recorded (one statement: two concurrent sign-ins with one code cannot both win)."""
    done = await conn.fetchval(
        """
        UPDATE gov_users SET totp_last_step = $2
        WHERE id = $1 AND totp_last_step < $2
        RETURNING true
        """,
        user_id,
        step,
    )
    return bool(done)


async def user_state(conn: Any, user_id: str) -> Any:
    """(role, disabled_at) of a user, for the guard of every government request."""
    return await conn.fetchrow(
        "SELECT role, disabled_at FROM gov_users WHERE id = $1::uuid", user_id
    )


async def user_by_id(conn: Any, user_id: uuid.UUID) -> Any:
    return await conn.fetchrow(f"SELECT {_USER} FROM gov_users WHERE id = $1", user_id)


async def all_users(conn: Any) -> list[Any]:
    rows: list[Any] = await conn.fetch(f"SELECT {_USER} FROM gov_users ORDER BY created_at, id")
    return rows


async def count_active_admins(conn: Any) -> int:
    n: int = await conn.fetchval(
        "SELECT count(*) FROM gov_users WHERE role = 'gov_admin' AND disabled_at IS NULL"
    )
    return n


async def lock_user(tx: Any, user_id: uuid.UUID) -> Any:
    """The user's row, locked for the rest of the transaction (None: no such user)."""
    return await tx.conn.fetchrow(
        f"SELECT {_USER} FROM gov_users WHERE id = $1 FOR UPDATE", user_id
    )


async def lock_admins(tx: Any) -> None:
    """Serialise changes that could leave the programme without an active administrator."""
    await tx.conn.execute("SELECT pg_advisory_xact_lock(hashtext('gov_users:admins'))")


async def set_disabled(tx: Any, user_id: uuid.UUID, disabled: bool) -> Any:
    return await tx.conn.fetchrow(
        f"""
        UPDATE gov_users
        SET disabled_at = CASE WHEN $2 THEN coalesce(disabled_at, now()) ELSE NULL END
        WHERE id = $1
        RETURNING {_USER}
        """,
        user_id,
        disabled,
    )


async def set_role(tx: Any, user_id: uuid.UUID, role: str) -> Any:
    return await tx.conn.fetchrow(
        f"UPDATE gov_users SET role = $2 WHERE id = $1 RETURNING {_USER}", user_id, role
    )


async def set_password(tx: Any, user_id: uuid.UUID, password_hash: str) -> Any:
    return await tx.conn.fetchrow(
        f"UPDATE gov_users SET password_hash = $2 WHERE id = $1 RETURNING {_USER}",
        user_id,
        password_hash,
    )


async def set_totp_secret(tx: Any, user_id: uuid.UUID, totp_secret: str) -> Any:
    return await tx.conn.fetchrow(
        f"""
        UPDATE gov_users SET totp_secret = $2, totp_last_step = 0 WHERE id = $1
        RETURNING {_USER}
        """,
        user_id,
        totp_secret,
    )
