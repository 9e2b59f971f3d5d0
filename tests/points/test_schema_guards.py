"""What the per-row foreign keys used to guarantee, now held set-wise by the schema's triggers
(server/migrations/0010_ledger.sql), and the one-statement hold."""

import asyncpg
import pytest

from kit.db import Tx, transaction
from points import service
from points.audit import audit
from points.schemas import Balance
from tests.points.factories import POLICY, invariants, issuance, resident, spend
from tests.statements import CountingConnection


async def one_issuance(pool):
    r = resident()
    async with transaction(pool) as tx:
        await service.issue_reductions(tx, [issuance(r, 100)], POLICY)
    async with pool.acquire() as conn:
        row = await conn.fetchrow(
            "SELECT id, batch_id, debit_account_id, credit_account_id FROM ledger_transfers "
            "WHERE asset = 'POINT' ORDER BY id DESC LIMIT 1"
        )
        g_account = await conn.fetchval(
            "SELECT id FROM ledger_accounts WHERE owner_id = $1 AND asset = 'CO2E_G'", r
        )
    return r, row, g_account


_INSERT = """
INSERT INTO ledger_transfers (batch_id, idempotency_key, phase, kind, reason_code, asset,
    debit_account_id, credit_account_id, amount, region_code, occurred_at, hash)
VALUES ($1, $2, 'posted', 'gift', 'gift', 'POINT', $3, $4, 1, '440305', now(),
        sha256('x'::bytea))
"""


class TestReferences:
    async def test_a_transfer_to_an_account_of_another_asset_is_refused(self, pool):
        _, row, g_account = await one_issuance(pool)
        async with pool.acquire() as conn:
            with pytest.raises(asyncpg.ForeignKeyViolationError):
                await conn.execute(
                    _INSERT, row["batch_id"], "k1", row["debit_account_id"], g_account
                )

    async def test_a_transfer_to_a_missing_account_or_batch_is_refused(self, pool, owner_pool):
        """The triggers hold for the owner too (the application may not even try an UPDATE)."""
        _, row, _ = await one_issuance(pool)
        async with owner_pool.acquire() as conn:
            with pytest.raises(asyncpg.ForeignKeyViolationError):
                await conn.execute(_INSERT, row["batch_id"], "k2", row["debit_account_id"], 10**9)
            with pytest.raises(asyncpg.ForeignKeyViolationError):
                await conn.execute(
                    _INSERT, 10**9, "k3", row["debit_account_id"], row["credit_account_id"]
                )
            with pytest.raises(asyncpg.RestrictViolationError, match="immutable"):
                await conn.execute(
                    "UPDATE ledger_transfers SET credit_account_id = $2 WHERE id = $1",
                    row["id"],
                    10**9,
                )

    async def test_a_lot_must_belong_to_the_point_transfer_that_formed_it(self, pool, owner_pool):
        _, row, g_account = await one_issuance(pool)
        async with owner_pool.acquire() as conn:
            with pytest.raises(asyncpg.ForeignKeyViolationError):
                await conn.execute(
                    "UPDATE point_lots SET account_id = $2 WHERE transfer_id = $1",
                    row["id"],
                    g_account,
                )
            with pytest.raises(asyncpg.RestrictViolationError, match="immutable"):
                await conn.execute("DELETE FROM ledger_transfers WHERE id = $1", row["id"])

    async def test_transfers_are_never_edited_or_deleted(self, pool, owner_pool):
        _, row, _ = await one_issuance(pool)
        async with owner_pool.acquire() as conn:
            with pytest.raises(asyncpg.RestrictViolationError, match="immutable"):
                await conn.execute(
                    "UPDATE ledger_transfers SET amount = amount + 1 WHERE id = $1", row["id"]
                )
            with pytest.raises(asyncpg.RestrictViolationError, match="immutable"):
                await conn.execute("DELETE FROM ledger_transfers")
            assert await conn.fetchval("SELECT count(*) FROM ledger_transfers") > 0
            await invariants(conn)

    async def test_accounts_and_batches_are_never_deleted_or_rekeyed(self, pool, owner_pool):
        r, row, _ = await one_issuance(pool)
        async with owner_pool.acquire() as conn:
            with pytest.raises(asyncpg.RestrictViolationError):
                await conn.execute("DELETE FROM ledger_accounts WHERE owner_id = $1", r)
            with pytest.raises(asyncpg.RestrictViolationError):
                await conn.execute(
                    "UPDATE ledger_accounts SET asset = 'CO2E_G' WHERE id = $1",
                    row["credit_account_id"],
                )
            with pytest.raises(asyncpg.RestrictViolationError):
                await conn.execute("DELETE FROM ledger_batches WHERE id = $1", row["batch_id"])
            await invariants(conn)

    @pytest.mark.tampers_ledger
    async def test_audit_reports_a_dangling_reference(self, pool, owner_pool):
        """With the triggers bypassed (as a restore or the owner could), the audit catches it."""
        _, row, _ = await one_issuance(pool)
        async with owner_pool.acquire() as conn:
            async with conn.transaction():
                await conn.execute("ALTER TABLE point_lots DISABLE TRIGGER USER")
                await conn.execute(
                    "UPDATE point_lots SET transfer_id = 10^9::bigint WHERE transfer_id = $1",
                    row["id"],
                )
                await conn.execute("ALTER TABLE point_lots ENABLE TRIGGER USER")
            report = await audit(conn)
        assert any("no POINT transfer crediting its account" in p for p in report.problems)


class TestOneStatementHold:
    async def test_a_hold_on_existing_accounts_is_one_statement(self, pool):
        r = resident()
        async with transaction(pool) as tx:
            await service.issue_reductions(tx, [issuance(r, 100)], POLICY)
        async with transaction(pool) as tx:
            await service.transfer(tx, [spend(r, 1)], POLICY)  # the merchant exists too
        async with transaction(pool) as tx:
            counter = CountingConnection(tx.conn)
            hold = await service.place_hold(Tx(counter), spend(r, 4, key="h1"), POLICY)
        assert counter.calls == 1
        async with transaction(pool) as tx:  # a replay takes the general path, same answer
            again = await service.place_hold(tx, spend(r, 4, key="h1"), POLICY)
        assert again.id == hold.id and again.timeout_at == hold.timeout_at
        assert (await service.balances(pool, "resident", r))[1] == Balance("POINT", 9, 4, 5)
        async with pool.acquire() as conn:
            await invariants(conn)
