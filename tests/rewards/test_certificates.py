"""Certificates: pending until sealed, then a proof that the stand-alone verifier accepts offline
(a subprocess, standard library only) and rejects once one byte of the transfer or the proof is
changed; the verifier's own Ed25519 agrees with the cryptography library's."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kit.db import transaction
from points import journal, verify, witness
from rewards import certificates
from rewards.donation_errors import CertificateNotFound
from rewards.donation_schemas import certificate_encoder
from tests.rewards.factories import donate, project, resident_with_points

ROOT = Path(__file__).resolve().parents[2]
KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
ORIGIN = "tanpuhui/440300"


async def seal(pool: Any) -> None:
    async with transaction(pool) as tx:
        await journal.seal(tx)


async def certificate_json(pool: Any, serial: str) -> dict[str, Any]:
    async with pool.acquire() as conn:
        cert = await certificates.certificate(conn, serial, key=KEY, origin=ORIGIN)
    out: dict[str, Any] = json.loads(certificate_encoder.encode(cert))
    return out


def run_verifier(
    tmp_path: Path, cert: dict[str, Any], *args: str
) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "certificate.json"
    path.write_text(json.dumps(cert, ensure_ascii=False), encoding="utf-8")
    return subprocess.run(
        [sys.executable, "-I", str(ROOT / "points" / "verify.py"), str(path), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=tmp_path,  # -I and another directory: nothing of the project is importable
    )


@pytest.fixture
async def sealed(pool: Any) -> dict[str, Any]:
    p = await project(pool)
    rid = await resident_with_points(pool)
    other = await resident_with_points(pool)
    await donate(pool, other, p.id, 5)  # more leaves around it
    d = await donate(pool, rid, p.id, 120)
    await seal(pool)
    return await certificate_json(pool, d.serial)


class TestCertificate:
    async def test_pending_until_sealed_then_sealed(self, pool):
        p = await project(pool)
        rid = await resident_with_points(pool)
        await seal(pool)
        d = await donate(pool, rid, p.id, 42)
        pending = await certificate_json(pool, d.serial)
        assert pending["status"] == "pending"
        assert pending["proof"] is None and pending["block"] is None
        assert pending["transfer"]["amount"] == 42
        await seal(pool)
        sealed = await certificate_json(pool, d.serial)
        assert sealed["status"] == "sealed"
        assert sealed["block"]["seq"] == sealed["proof"]["block_seq"]
        assert sealed == await certificate_json(pool, d.serial)  # deterministic

    async def test_no_personal_data(self, pool, sealed):
        async with pool.acquire() as conn:
            rids = [r["id"] for r in await conn.fetch("SELECT id::text AS id FROM residents")]
        text = json.dumps(sealed)
        assert rids and not any(rid in text for rid in rids)
        assert sealed["donor"].startswith("donor-")
        assert sealed["transfer"]["debit"] == {"owner_type": "system", "owner_id": "donations"}

    async def test_unknown_serial(self, pool):
        async with pool.acquire() as conn:
            with pytest.raises(CertificateNotFound):
                await certificates.certificate(conn, "TPH-2026-P-00000001", key=KEY, origin="o")

    async def test_the_proof_is_the_journals(self, pool, sealed):
        # The same proof as the ledger's own (points.journal), and its root that block's.
        async with pool.acquire() as conn:
            proof = await journal.inclusion_proof(conn, sealed["transfer"]["id"])
            block = await journal.published_block(conn, proof.block_seq)
        assert sealed["proof"]["merkle_root"] == proof.merkle_root == block.merkle_root
        assert sealed["block"]["block_hash"] == block.block_hash
        assert witness.verify(msgspec_checkpoint(sealed["checkpoint"]))


def msgspec_checkpoint(cp: dict[str, Any]) -> witness.Checkpoint:
    return witness.Checkpoint(**cp)


class TestOfflineVerifier:
    async def test_a_sealed_certificate_verifies(self, pool, sealed, tmp_path):
        done = run_verifier(tmp_path, sealed, "--public-key", witness.public_key_b64(KEY))
        assert done.returncode == 0, done.stdout + done.stderr
        assert f"certificate {sealed['serial']}: verified" in done.stdout
        assert "signed by the pinned key" in done.stdout

    async def test_another_pinned_key_fails(self, pool, sealed, tmp_path):
        other = witness.public_key_b64(Ed25519PrivateKey.from_private_bytes(bytes(32)))
        done = run_verifier(tmp_path, sealed, "--public-key", other)
        assert done.returncode == 1 and "not signed by the pinned key" in done.stdout

    @pytest.mark.parametrize(
        "where",
        [
            ("transfer", "amount"),
            ("transfer", "idempotency_key"),
            ("transfer", "source_ref"),
            ("transfer", "occurred_at"),
            ("proof", "leaf_hash"),
            ("proof", "merkle_root"),
            ("proof", "path"),
            ("block", "prev_hash"),
            ("checkpoint", "signature"),
        ],
    )
    async def test_one_changed_byte_fails(self, pool, sealed, tmp_path, where):
        cert = json.loads(json.dumps(sealed))
        part, field = where
        cert[part][field] = one_byte_changed(cert[part][field])
        assert cert != sealed
        done = run_verifier(tmp_path, cert)
        assert done.returncode == 1, done.stdout + done.stderr
        assert "NOT verified" in done.stdout

    async def test_the_certificates_claims_must_be_the_transfers(self, pool, sealed, tmp_path):
        for field, value in (("amount", 121), ("project_id", "x"), ("donor", "donor-0")):
            cert = {**sealed, field: value}
            done = run_verifier(tmp_path, cert)
            assert done.returncode == 1 and "differ from its transfer" in done.stdout, field

    async def test_a_pending_certificate_does_not_verify(self, pool, tmp_path):
        p = await project(pool)
        rid = await resident_with_points(pool)
        d = await donate(pool, rid, p.id, 1)
        done = run_verifier(tmp_path, await certificate_json(pool, d.serial))
        assert done.returncode == 1 and "pending" in done.stdout
        await seal(pool)

    def test_standard_library_only(self):
        tree = ast.parse((ROOT / "points" / "verify.py").read_text(encoding="utf-8"))
        names = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                assert node.level == 0 and node.module
                names.add(node.module.split(".")[0])
        assert names and names <= set(sys.stdlib_module_names) | {"__future__"}, names

    def test_ed25519_agrees_with_the_library(self):
        for i in range(8):
            key = Ed25519PrivateKey.from_private_bytes(bytes([i]) * 32)
            public = witness.public_key_bytes(key)
            message = f"message {i}".encode()
            signature = key.sign(message)
            assert verify.ed25519_verify(public, message, signature)
            assert not verify.ed25519_verify(public, message + b"!", signature)
            bad = bytes([signature[0] ^ 1]) + signature[1:]
            assert not verify.ed25519_verify(public, message, bad)


def one_byte_changed(value: Any) -> Any:
    """``value`` with one byte (character) changed."""
    if isinstance(value, int):
        return value + 1
    if isinstance(value, list):  # a Merkle path: one hex digit of its first sibling
        step = dict(value[0])
        step["hash"] = one_byte_changed(step["hash"])
        return [step, *value[1:]]
    # The first hex digit (a year, a key's letter, a hash's or a base64 signature's first
    # character: never a base64 padding bit), so the value still parses.
    text = str(value)
    for i, c in enumerate(text):
        if c in "0123456789abcdef":
            return text[:i] + ("1" if c == "0" else "0") + text[i + 1 :]
    raise AssertionError(value)
