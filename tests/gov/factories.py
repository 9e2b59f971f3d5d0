"""Government users for tests, made through reporting.users (never raw SQL): a real user in
the database and a valid access token for it, as a sign-in would issue."""

from __future__ import annotations

import itertools
from typing import Any

from kit.auth import JwtKeys
from kit.db import transaction
from reporting import users
from reporting.users import GOV_ROLES, GovUser, NewGovUser

PASSWORD = "correct horse battery staple"
_serial = itertools.count(1)


async def new_gov_user(
    pool: Any,
    settings: Any,
    *,
    role: str = "gov_analyst",
    login: str | None = None,
    password: str = PASSWORD,
    actor: str = "cli:test",
) -> NewGovUser:
    """A user created as the CLI (or ``actor``, an administrator's id) would, with its TOTP
    secret."""
    async with transaction(pool) as tx:
        return await users.add_user(
            tx,
            settings.gov_users,
            settings.privacy,
            login=login or f"{role.replace('_', '.')}{next(_serial)}",
            display_name=f"Test {role}",
            role=role,
            password=password,
            actor=actor,
        )


def token_for(settings: Any, user: GovUser, *, ttl_s: int | None = None) -> str:
    """An access token for ``user``, as ``POST /api/gov/v1/sessions`` issues them."""
    jwt = JwtKeys.from_settings(settings.auth)
    ttl = settings.gov_users.token_ttl_s if ttl_s is None else ttl_s
    return jwt.issue(str(user.id), GOV_ROLES[user.role], ttl, extra={"typ": "access"})


async def gov_user(
    pool: Any, settings: Any, *, role: str = "gov_analyst", login: str | None = None
) -> tuple[GovUser, str]:
    """A real government user of ``role`` and a valid access token for it."""
    made = await new_gov_user(pool, settings, role=role, login=login)
    return made.user, token_for(settings, made.user)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
