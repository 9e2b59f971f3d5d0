"""The administrative audit log: entries in the acting transaction (rolled back with it), read
newest first with filters, and append-only in the database: the application role has no UPDATE
or DELETE on it and a trigger refuses both to every role, the owner included."""

from __future__ import annotations

import uuid
from datetime import date

import asyncpg
import pytest
from msgspec import Struct

from kit.db import transaction
from reporting import audit


class Thing(Struct, frozen=True):
    name: str
    day: date


async def test_entries_carry_who_what_when_before_and_after(pool):
    actor = str(uuid.uuid4())
    async with transaction(pool) as tx:
        await audit.record(
            tx, actor=actor, action="thing.add", target="t1", after=Thing("a", date(2026, 3, 1))
        )
        await audit.record(
            tx,
            actor="cli:root",
            action="thing.rename",
            target="t1",
            before=Thing("a", date(2026, 3, 1)),
            after={"name": "b", "id": uuid.UUID(int=7)},
        )
    async with pool.acquire() as conn:
        got = await audit.entries(conn)
        assert [e.action for e in got] == ["thing.rename", "thing.add"]
        assert got[1].actor == actor and got[1].before is None
        assert got[1].after == {"name": "a", "day": "2026-03-01"}
        assert got[0].before == {"name": "a", "day": "2026-03-01"}
        assert got[0].after == {"name": "b", "id": str(uuid.UUID(int=7))}
        assert got[0].at >= got[1].at
        assert [e.action for e in await audit.entries(conn, actor="cli:root")] == ["thing.rename"]
        assert len(await audit.entries(conn, action="thing")) == 2  # an action family
        assert await audit.entries(conn, action="thin") == []
        assert len(await audit.entries(conn, target="t1", limit=1)) == 1
        page = await audit.entries(conn, before_id=got[0].id)
        assert [e.id for e in page] == [got[1].id]


async def test_an_entry_rolls_back_with_its_action(pool):
    async def failing() -> None:
        async with transaction(pool) as tx:
            await audit.record(tx, actor="cli:x", action="thing.add", target="t")
            raise RuntimeError("the action failed")

    with pytest.raises(RuntimeError):
        await failing()
    async with pool.acquire() as conn:
        assert await audit.entries(conn) == []


@pytest.mark.parametrize(
    ("actor", "action", "target"),
    [("root", "a.b", "t"), ("cli:", "a.b", "t"), ("cli:x", "A b", "t"), ("cli:x", "a.b", "")],
)
async def test_malformed_entries_are_programming_errors(pool, actor, action, target):
    async with transaction(pool) as tx:
        with pytest.raises(ValueError, match="audit entry refused"):
            await audit.record(tx, actor=actor, action=action, target=target)


async def test_the_application_role_cannot_change_or_delete_entries(pool):
    async with transaction(pool) as tx:
        await audit.record(tx, actor="cli:x", action="thing.add", target="t", after={"n": 1})
    async with pool.acquire() as conn:
        for sql in (
            "UPDATE gov_audit_log SET after = '{}'::jsonb",
            "DELETE FROM gov_audit_log",
            "TRUNCATE gov_audit_log",
        ):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute(sql)
        assert len(await audit.entries(conn)) == 1


async def test_the_trigger_refuses_even_the_owner(pool, owner_pool):
    async with transaction(pool) as tx:
        await audit.record(tx, actor="cli:x", action="thing.add", target="t", after={"n": 1})
    async with owner_pool.acquire() as conn:
        for sql in ("UPDATE gov_audit_log SET target = 'other'", "DELETE FROM gov_audit_log"):
            with pytest.raises(asyncpg.RestrictViolationError, match="append-only"):
                await conn.execute(sql)
    async with pool.acquire() as conn:
        (entry,) = await audit.entries(conn)
        assert entry.target == "t" and entry.after == {"n": 1}
