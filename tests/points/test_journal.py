"""The hash-chained journal: sealing, inclusion proofs, and `tanpuhui audit`."""

import os
import subprocess
import sys

import msgspec
import pytest

from kit.db import transaction
from points import journal, merkle, service
from points.audit import audit, run_audit_cli
from points.errors import BlockNotSealed
from points.schemas import InclusionProof
from tests.points.factories import POLICY, issuance, resident, spend


async def ledger_with_blocks(pool, batches=4):
    r = resident()
    for i in range(batches):
        async with transaction(pool) as tx:
            await service.issue_reductions(tx, [issuance(r, 10 + i) for _ in range(3)], POLICY)
    async with transaction(pool) as tx:
        await service.transfer(tx, [spend(r, 2)], POLICY)
    async with transaction(pool) as tx:
        sealed = await journal.seal(tx)
    return r, sealed


class TestMerkle:
    @pytest.mark.parametrize("n", [1, 2, 3, 5, 8, 13])
    def test_every_leaf_proves_into_the_root(self, n):
        leaves = [bytes([i]) * 32 for i in range(n)]
        root = merkle.merkle_root(leaves)
        for i, leaf in enumerate(leaves):
            assert merkle.root_from_path(leaf, merkle.merkle_path(leaves, i)) == root
        assert merkle.root_from_path(b"\xff" * 32, merkle.merkle_path(leaves, 0)) != root


class TestJournal:
    async def test_blocks_chain_and_a_proof_verifies_without_the_database(self, pool):
        _, sealed = await ledger_with_blocks(pool)
        assert sealed == 5
        async with transaction(pool) as tx:
            assert await journal.seal(tx) == 0
        async with pool.acquire() as conn:
            tid = await conn.fetchval(
                "SELECT id FROM ledger_transfers ORDER BY id LIMIT 1 OFFSET 4"
            )
            proof = await journal.inclusion_proof(conn, str(tid))
        # Round-trip through JSON, as a verifier elsewhere would receive it.
        decoded = msgspec.json.decode(msgspec.json.encode(proof), type=InclusionProof)
        assert merkle.verify_proof(decoded)
        forged = msgspec.structs.replace(
            decoded, transfer=msgspec.structs.replace(decoded.transfer, amount=999)
        )
        assert not merkle.verify_proof(forged)

    async def test_unsealed_transfer_has_no_proof_yet(self, pool):
        async with transaction(pool) as tx:
            await service.issue_reductions(tx, [issuance(resident(), 10)], POLICY)
        async with pool.acquire() as conn:
            tid = await conn.fetchval("SELECT min(id) FROM ledger_transfers")
            with pytest.raises(BlockNotSealed):
                await journal.inclusion_proof(conn, str(tid))


async def _bypassing_triggers(conn, sql, *args, table="ledger_transfers"):
    """Tamper as the schema's owner (or a careless restore) could: the table's triggers off."""
    async with conn.transaction():
        await conn.execute(f"ALTER TABLE {table} DISABLE TRIGGER USER")
        await conn.execute(sql, *args)
        await conn.execute(f"ALTER TABLE {table} ENABLE TRIGGER USER")


class TestAudit:
    async def test_clean_ledger_passes(self, pool, settings):
        await ledger_with_blocks(pool)
        assert settings.database.url
        assert await run_audit_cli(settings.database.url) == 0

    @pytest.mark.tampers_ledger
    async def test_edited_transfer_row_fails_the_cli(self, pool, owner_pool, settings):
        await ledger_with_blocks(pool)
        async with owner_pool.acquire() as conn:
            await _bypassing_triggers(
                conn,
                "UPDATE ledger_transfers SET amount = amount + 1 "
                "WHERE id = (SELECT min(id) FROM ledger_transfers)",
            )
        env = {**os.environ, "DATABASE_URL": settings.database.url}
        done = subprocess.run(
            [sys.executable, "-m", "server.cli", "audit"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 1, done.stdout + done.stderr
        assert "content does not match its hash" in done.stderr
        assert "re-derived posted" in done.stderr

    @pytest.mark.tampers_ledger
    async def test_edit_with_a_recomputed_hash_breaks_the_merkle_root(self, pool, owner_pool):
        await ledger_with_blocks(pool)
        async with owner_pool.acquire() as conn:
            tid = await conn.fetchval("SELECT min(id) FROM ledger_transfers")
            t = await service.get_transfer(conn, str(tid))
            forged = merkle.transfer_leaf(msgspec.structs.replace(t, amount=t.amount + 1))
            await _bypassing_triggers(
                conn,
                "UPDATE ledger_transfers SET amount = amount + 1, hash = $2 WHERE id = $1",
                tid,
                forged,
            )
            report = await audit(conn)
        assert not report.ok
        assert not any("content does not match" in p for p in report.problems)
        assert any("Merkle root" in p for p in report.problems)

    @pytest.mark.tampers_ledger
    async def test_broken_chain_link_is_reported(self, pool, owner_pool):
        await ledger_with_blocks(pool)
        async with owner_pool.acquire() as conn:
            await _bypassing_triggers(
                conn,
                "UPDATE ledger_batches SET prev_hash = sha256(prev_hash) WHERE seq = 3",
                table="ledger_batches",
            )
            report = await audit(conn)
        assert any("prev_hash" in p for p in report.problems)

    @pytest.mark.tampers_ledger
    async def test_deleted_transfer_is_reported(self, pool, owner_pool):
        await ledger_with_blocks(pool)
        async with owner_pool.acquire() as conn:
            await conn.execute("DELETE FROM point_lots")
            await _bypassing_triggers(
                conn,
                "DELETE FROM ledger_transfers WHERE id = (SELECT max(id) FROM ledger_transfers)",
            )
            report = await audit(conn)
        assert any("transfers, sealed with" in p or "are gone" in p for p in report.problems)
