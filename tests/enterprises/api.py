"""The enterprise API's test helpers: an enterprise with its first administrator (made as the
CLI makes it, through ``enterprises.users``), and signing in through the API."""

from __future__ import annotations

from typing import Any

from enterprises import users
from enterprises.schemas import Enterprise
from kit.db import transaction
from tests.enterprises.factories import districts, enterprise, registered

API = "/api/enterprise/v1"
PASSWORD = "correct horse battery staple"


class Admin:
    """An enterprise, its administrator and (once signed in) the headers of its token."""

    def __init__(self, enterprise: Enterprise, user: users.User) -> None:
        self.enterprise = enterprise
        self.user = user
        self.headers: dict[str, str] = {}

    @property
    def base(self) -> str:
        return f"{API}/enterprises/{self.enterprise.id}"


async def admin(
    pool: Any, n: int = 1, *, login: str | None = None, industry: str = "C2611"
) -> Admin:
    """Enterprise ``n`` (registered, districts imported) and its first administrator."""
    await districts(pool)
    e = (await registered(pool, enterprise(n, industry=industry))).enterprise
    async with transaction(pool) as tx:
        u = await users.add_first_admin(
            tx,
            e.credit_code,
            login=login or f"admin{n}",
            display_name=f"管理员 {n}",
            password=PASSWORD,
        )
    return Admin(e, u)


async def signed_in(client: Any, a: Admin, password: str = PASSWORD) -> Admin:
    r = await client.post(f"{API}/sessions", json={"login": a.user.login, "password": password})
    assert r.status_code == 200, r.text
    a.headers = {"Authorization": f"Bearer {r.json()['access_token']}"}
    return a
