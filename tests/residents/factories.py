"""Residents for tests, made through the residents package (never raw SQL)."""

from __future__ import annotations

from typing import Any

from kit.db import transaction
from residents import service


async def resident(pool: Any, district: str | None = "440305") -> str:
    """A resident without a sign-in identity (as operators' records name them); their id."""
    async with transaction(pool) as tx:
        [rid] = await service.create_residents(tx.conn, [district])
    return rid


async def residents(pool: Any, n: int, district: str | None = "440305") -> list[str]:
    """``n`` residents in one statement."""
    async with transaction(pool) as tx:
        return await service.create_residents(tx.conn, [district] * n)


async def resident_with_id(conn: Any, rid: str, district: str | None = "440305") -> str:
    """The resident ``rid`` (a test that chose the id), on an open connection."""
    [made] = await service.create_residents(conn, [district], ids=[rid])
    return made
