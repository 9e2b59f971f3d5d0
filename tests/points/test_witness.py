"""The witness outside the database: signed checkpoints (points/witness.py), published at
``/api/public/v1/journal/*`` and kept by ``tanpuhui audit --witness FILE``, which then detects a
rewrite or a truncation of anything witnessed, even one that leaves every hash consistent."""

import base64
import json
import os
import subprocess
import sys
from datetime import UTC, datetime

import msgspec
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kit.db import transaction
from points import journal, merkle, service, witness
from points import repository as repo
from points.audit import audit, run_audit_cli
from tests.conftest import WITNESS_KEY
from tests.points.factories import POLICY, issuance, resident, spend
from tests.points.test_journal import ledger_with_blocks

ORIGIN = witness.origin_of("440300")
KEY = witness.signing_key(WITNESS_KEY, "unused")


async def grow(pool, r, n=2):
    for i in range(n):
        async with transaction(pool) as tx:
            await service.issue_reductions(tx, [issuance(r, 20 + i)], POLICY)
    async with transaction(pool) as tx:
        await journal.seal(tx)


async def cli(settings, path):
    """`tanpuhui audit --witness FILE`, as a process of its own (the real command line)."""
    env = {
        **os.environ,
        "DATABASE_URL": settings.database.url,
        "TANPUHUI_POINTS_WITNESS_KEY": WITNESS_KEY,
        "TANPUHUI_REGION_CODE": "440300",
    }
    return subprocess.run(
        [sys.executable, "-m", "server.cli", "audit", "--witness", str(path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def audit_with_witness(settings, path):
    return await run_audit_cli(settings.database.url, path, key=KEY, origin=ORIGIN)


async def rewrite_consistently(owner_pool):
    """What the schema's owner (or a superuser) can do: move one point from a resident to the
    merchant they paid, with the balances and lots to match, then recompute every transfer hash,
    Merkle root and block hash with the project's own functions. The audit alone cannot tell."""
    async with owner_pool.acquire() as conn, conn.transaction():
        for table in ("ledger_transfers", "ledger_batches", "point_lots", "ledger_accounts"):
            await conn.execute(f"ALTER TABLE {table} DISABLE TRIGGER USER")
        t = await conn.fetchrow(
            "SELECT id, debit_account_id, credit_account_id FROM ledger_transfers "
            "WHERE kind = 'redemption' ORDER BY id LIMIT 1"
        )
        await conn.execute("UPDATE ledger_transfers SET amount = amount + 1 WHERE id = $1", t["id"])
        await conn.execute(
            "UPDATE ledger_accounts SET posted = posted - 1 WHERE id = $1", t["debit_account_id"]
        )
        await conn.execute(
            "UPDATE ledger_accounts SET posted = posted + 1 WHERE id = $1", t["credit_account_id"]
        )
        await conn.execute(
            "UPDATE point_lots SET remaining = remaining - 1 WHERE id = (SELECT min(id) "
            "FROM point_lots WHERE account_id = $1 AND remaining > 0)",
            t["debit_account_id"],
        )
        leaves: dict[int, list[bytes]] = {}
        async for r in repo.all_transfers(conn):
            row = repo.transfer_of(r)
            leaf = merkle.transfer_leaf(row.transfer)
            leaves.setdefault(row.batch_id, []).append(leaf)
            await conn.execute(
                "UPDATE ledger_transfers SET hash = $2 WHERE id = $1", int(row.transfer.id), leaf
            )
        prev = merkle.GENESIS
        for b in await conn.fetch(
            "SELECT id, seq FROM ledger_batches WHERE seq IS NOT NULL ORDER BY seq"
        ):
            batch = leaves.get(b["id"], [])
            root = merkle.merkle_root(batch)
            digest = merkle.block_hash(
                seq=b["seq"],
                prev_hash=prev,
                merkle_root=root,
                batch_id=b["id"],
                transfer_count=len(batch),
            )
            await conn.execute(
                "UPDATE ledger_batches SET prev_hash = $2, merkle_root = $3, block_hash = $4, "
                "transfer_count = $5 WHERE id = $1",
                b["id"],
                prev,
                root,
                digest,
                len(batch),
            )
            prev = digest
        for table in ("ledger_transfers", "ledger_batches", "point_lots", "ledger_accounts"):
            await conn.execute(f"ALTER TABLE {table} ENABLE TRIGGER USER")


class TestCheckpoints:
    def test_a_checkpoint_verifies_and_any_change_breaks_it(self):
        cp = witness.sign(
            KEY, origin=ORIGIN, seq=7, block_hash=b"\x11" * 32, at=datetime(2025, 1, 2, tzinfo=UTC)
        )
        assert cp.timestamp == "2025-01-02T00:00:00Z"
        assert witness.verify(cp)
        assert witness.verify(cp, witness.public_key_b64(KEY))
        for change in (
            {"seq": 8},
            {"block_hash": "22" * 32},
            {"timestamp": "2025-01-03T00:00:00Z"},
            {"origin": "tanpuhui/110000"},
            {"signature": base64.b64encode(b"\0" * 64).decode()},
            {"signature": "not base64!"},
        ):
            assert not witness.verify(msgspec.structs.replace(cp, **change)), change
        other = Ed25519PrivateKey.generate()
        assert not witness.verify(cp, witness.public_key_b64(other))
        # A forger signing with their own key and naming it is caught by the pinned key.
        forged = witness.sign(
            other, origin=ORIGIN, seq=7, block_hash=b"\x11" * 32, at=datetime.now(UTC)
        )
        assert witness.verify(forged)
        assert not witness.verify(forged, witness.public_key_b64(KEY))

    async def test_the_public_endpoint_signs_the_journal_head(self, client, pool):
        await ledger_with_blocks(pool, batches=3)
        r = await client.get("/api/public/v1/journal/checkpoint")
        assert r.status_code == 200, r.text
        cp = msgspec.json.decode(r.content, type=witness.Checkpoint)
        assert witness.verify(cp, witness.public_key_b64(KEY))
        async with pool.acquire() as conn:
            head = await repo.journal_head(conn)
        assert head is not None
        seq, digest = head
        assert (cp.seq, cp.block_hash, cp.origin) == (seq, digest.hex(), ORIGIN)

        b = (await client.get(f"/api/public/v1/journal/blocks/{seq}")).json()
        prev = (await client.get(f"/api/public/v1/journal/blocks/{seq - 1}")).json()
        assert b["block_hash"] == cp.block_hash and b["prev_hash"] == prev["block_hash"]
        recomputed = merkle.block_hash(
            seq=b["seq"],
            prev_hash=bytes.fromhex(b["prev_hash"]),
            merkle_root=bytes.fromhex(b["merkle_root"]),
            batch_id=int(b["batch_id"]),
            transfer_count=b["transfer_count"],
        )
        assert recomputed.hex() == b["block_hash"]
        missing = await client.get(f"/api/public/v1/journal/blocks/{seq + 1}")
        assert (missing.status_code, missing.json()["code"]) == (404, "block_not_found")
        for bad in ("0", "-1", str(2**64), "x"):
            r = await client.get(f"/api/public/v1/journal/blocks/{bad}")
            assert 400 <= r.status_code < 500, (bad, r.status_code)

    async def test_an_empty_journal_has_a_checkpoint_of_seq_0(self, client):
        cp = msgspec.json.decode(
            (await client.get("/api/public/v1/journal/checkpoint")).content,
            type=witness.Checkpoint,
        )
        assert (cp.seq, cp.block_hash) == (0, "00" * 32)
        assert witness.verify(cp)


class TestAuditWithAWitness:
    async def test_a_journal_that_grew_passes_and_each_audit_adds_a_checkpoint(
        self, pool, settings, tmp_path
    ):
        path = tmp_path / "witness.json"
        r, _ = await ledger_with_blocks(pool)
        done = await cli(settings, path)
        assert done.returncode == 0, done.stdout + done.stderr
        first = witness.load(path)
        assert first is not None and len(first.checkpoints) == 1
        assert first.public_keys == [witness.public_key_b64(KEY)]
        await grow(pool, r)
        assert await audit_with_witness(settings, path) == 0
        assert await audit_with_witness(settings, path) == 0  # same head: replaced, not added
        kept = witness.load(path)
        assert kept is not None
        assert [c.seq for c in kept.checkpoints] == [
            first.checkpoints[0].seq,
            first.checkpoints[0].seq + 2,
        ]
        assert all(witness.verify(c, kept.public_keys[0]) for c in kept.checkpoints)

    @pytest.mark.tampers_ledger
    async def test_a_consistent_rewrite_passes_the_audit_but_fails_the_witness(
        self, pool, owner_pool, settings, tmp_path
    ):
        path = tmp_path / "witness.json"
        r, _ = await ledger_with_blocks(pool)
        assert (await cli(settings, path)).returncode == 0
        await grow(pool, r)
        before = path.read_bytes()
        await rewrite_consistently(owner_pool)
        async with pool.acquire() as conn:
            plain = await audit(conn)
        assert plain.ok, plain.problems  # what `tanpuhui audit` alone says: nothing wrong

        done = await cli(settings, path)
        assert done.returncode == 1, done.stdout + done.stderr
        assert "the journal was rewritten" in done.stderr
        assert path.read_bytes() == before  # a failed audit witnesses nothing

    @pytest.mark.tampers_ledger
    async def test_a_truncation_fails_the_witness_even_once_the_journal_regrew(
        self, pool, owner_pool, settings, tmp_path
    ):
        path = tmp_path / "witness.json"
        await ledger_with_blocks(pool, batches=2)
        assert await audit_with_witness(settings, path) == 0
        async with owner_pool.acquire() as conn:
            await conn.execute(
                "TRUNCATE point_lots, ledger_transfers, ledger_batches, ledger_accounts "
                "RESTART IDENTITY CASCADE"
            )
        async with pool.acquire() as conn:
            plain = await audit(conn)
        assert plain.ok and plain.blocks == 0  # "OK: 0 blocks"

        done = await cli(settings, path)
        assert done.returncode == 1, done.stdout + done.stderr
        assert "it was truncated" in done.stderr

        await ledger_with_blocks(pool, batches=4)  # new history, longer than the witnessed one
        async with pool.acquire() as conn:
            assert (await audit(conn)).ok
        assert await audit_with_witness(settings, path) == 1

    async def test_an_edited_witness_file_or_another_key_is_refused(
        self, pool, settings, tmp_path, capsys
    ):
        path = tmp_path / "witness.json"
        await ledger_with_blocks(pool, batches=1)
        assert await audit_with_witness(settings, path) == 0
        data = json.loads(path.read_text())
        data["checkpoints"][0]["seq"] += 1  # signed seq differs now
        path.write_text(json.dumps(data))
        assert await audit_with_witness(settings, path) == 1
        assert "not signed by a pinned key" in capsys.readouterr().err

        path.unlink()
        assert await audit_with_witness(settings, path) == 0
        other = Ed25519PrivateKey.generate()
        assert await run_audit_cli(settings.database.url, path, key=other, origin=ORIGIN) == 1
        assert "does not trust" in capsys.readouterr().err
        path.write_text("{not json")
        assert await audit_with_witness(settings, path) == 1
        assert "not a witness file" in capsys.readouterr().err

    async def test_unsealed_transfers_are_not_claimed(self, pool, settings, tmp_path):
        """The checkpoint is of the audited head: transfers not sealed yet are not in it."""
        path = tmp_path / "witness.json"
        r = resident()
        async with transaction(pool) as tx:
            await service.issue_reductions(tx, [issuance(r, 100)], POLICY)
        async with transaction(pool) as tx:
            await service.transfer(tx, [spend(r, 3)], POLICY)
        assert await audit_with_witness(settings, path) == 0  # nothing sealed yet: seq 0
        kept = witness.load(path)
        assert kept is not None and kept.checkpoints[0].seq == 0
