"""Least privilege: the application's role (the one ``pool``, the API and the workers connect as)
may insert and read the ledger but never rewrite, delete or truncate it, nor switch off the
triggers that guard it (docs/ledger.md, "Who may write the ledger")."""

import asyncpg
import pytest

from kit.db import transaction
from tests.points.test_journal import ledger_with_blocks

REFUSED = asyncpg.InsufficientPrivilegeError


async def _refused(conn, sql, error=REFUSED):
    with pytest.raises(error):
        async with conn.transaction():
            await conn.execute(sql)


class TestTheApplicationRole:
    async def test_is_not_the_owner_nor_a_superuser_and_owns_nothing(self, pool, owner_pool):
        async with pool.acquire() as conn:
            me = await conn.fetchrow(
                "SELECT current_user AS name, rolsuper FROM pg_roles WHERE rolname = current_user"
            )
            owned = await conn.fetchval(
                "SELECT count(*) FROM pg_class WHERE relowner = "
                "(SELECT oid FROM pg_roles WHERE rolname = current_user)"
            )
        async with owner_pool.acquire() as conn:
            owner = await conn.fetchval(
                "SELECT tableowner FROM pg_tables WHERE tablename = 'ledger_transfers'"
            )
        assert not me["rolsuper"]
        assert owned == 0
        assert owner != me["name"]

    async def test_cannot_update_delete_or_truncate_transfers(self, pool):
        await ledger_with_blocks(pool, batches=2)
        async with pool.acquire() as conn:
            await _refused(conn, "UPDATE ledger_transfers SET amount = amount + 1")
            await _refused(conn, "UPDATE ledger_transfers SET hash = sha256(hash)")
            await _refused(conn, "DELETE FROM ledger_transfers")
            await _refused(conn, "TRUNCATE ledger_transfers CASCADE")
            await _refused(
                conn, "TRUNCATE ledger_transfers, ledger_batches, ledger_accounts, point_lots"
            )
            assert await conn.fetchval("SELECT count(*) FROM ledger_transfers") > 0

    async def test_cannot_rewrite_delete_or_truncate_journal_blocks(self, pool):
        await ledger_with_blocks(pool, batches=2)
        async with pool.acquire() as conn:
            # Sealing needs UPDATE of the chain columns: a sealed block refuses it all the same.
            await _refused(
                conn,
                "UPDATE ledger_batches SET merkle_root = sha256(merkle_root) WHERE seq = 1",
                asyncpg.RestrictViolationError,
            )
            await _refused(conn, "UPDATE ledger_batches SET created_at = now()")
            await _refused(conn, "DELETE FROM ledger_batches")
            await _refused(conn, "TRUNCATE ledger_batches CASCADE")

    async def test_cannot_switch_off_the_triggers_or_change_the_schema(self, pool):
        async with pool.acquire() as conn:
            for table in ("ledger_transfers", "ledger_batches", "ledger_accounts", "point_lots"):
                await _refused(conn, f"ALTER TABLE {table} DISABLE TRIGGER ALL")
                await _refused(conn, f"ALTER TABLE {table} DISABLE TRIGGER USER")
            await _refused(
                conn, "ALTER TABLE ledger_transfers DISABLE TRIGGER ledger_transfers_immutable"
            )
            await _refused(conn, "SET session_replication_role = replica")
            await _refused(conn, "DROP TABLE ledger_transfers CASCADE")
            await _refused(conn, "DROP FUNCTION ledger_transfers_immutable() CASCADE")
            await _refused(conn, "CREATE TABLE public.mine (x int)")
            await _refused(conn, "UPDATE app_grants SET privileges = 'ALL'")
            await _refused(conn, "DELETE FROM schema_migrations")

    async def test_cannot_move_balances_by_rekeying_or_deleting_accounts_and_lots(self, pool):
        await ledger_with_blocks(pool, batches=1)
        async with pool.acquire() as conn:
            await _refused(conn, "UPDATE ledger_accounts SET owner_id = 'someone-else'")
            await _refused(conn, "DELETE FROM ledger_accounts")
            await _refused(conn, "UPDATE point_lots SET amount = amount + 1")
            await _refused(conn, "DELETE FROM point_lots")

    async def test_still_does_its_work_through_the_ledger(self, pool):
        """Insert, lock accounts, move balances, consume lots, seal: the whole suite runs as this
        role; here once more in one place."""
        _, sealed = await ledger_with_blocks(pool, batches=2)
        assert sealed == 3
        async with transaction(pool) as tx:
            n = await tx.conn.fetchval("SELECT count(*) FROM ledger_batches WHERE seq IS NULL")
        assert n == 0
