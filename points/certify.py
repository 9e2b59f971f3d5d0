"""The evidence a public certificate carries for one ledger transfer, so that anyone can check
it offline (``python -m points.verify``): the transfer, its Merkle inclusion proof, the sealed
block's header and the programme's witness signature over that block.

Shared by every certificate of the programme (residents' donations: rewards/certificates.py;
enterprises' offset retirements: enterprises/offsets.py): each adds what it certifies, this
module proves that the transfer behind it is in the journal. Deterministic (Ed25519 and the
block's sealing time), so every answer for a transfer is the same. Until the transfer's block
is sealed (``points.seal_journal``, every few seconds) the evidence is ``pending``: the transfer
without a proof.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from msgspec import Struct

from points import journal, witness
from points.errors import BlockNotSealed
from points.queries import get_transfer
from points.schemas import ProofStep, Transfer

EvidenceStatus = Literal["pending", "sealed"]


class CertificateProof(Struct, frozen=True, kw_only=True):
    """The Merkle inclusion proof of the certified transfer in its block."""

    leaf_hash: str  # hex: sha256(0x00 || the transfer's content, format v1)
    batch_id: str
    block_seq: int
    merkle_root: str
    path: list[ProofStep]  # siblings from the leaf up to the root


class Evidence(Struct, frozen=True, kw_only=True):
    status: EvidenceStatus
    transfer: Transfer | None
    proof: CertificateProof | None = None
    block: journal.PublishedBlock | None = None
    checkpoint: witness.Checkpoint | None = None


async def evidence(
    conn: Any, transfer_id: str, *, key: Ed25519PrivateKey, origin: str, at: datetime
) -> Evidence:
    """The evidence of ``transfer_id``; ``at`` times the checkpoint of a block that has no
    sealing time recorded (the certified act's time)."""
    try:
        proof = await journal.inclusion_proof(conn, transfer_id)
    except BlockNotSealed:
        return Evidence(status="pending", transfer=await get_transfer(conn, transfer_id))
    block = await journal.published_block(conn, proof.block_seq)
    signed = witness.sign(
        key,
        origin=origin,
        seq=block.seq,
        block_hash=bytes.fromhex(block.block_hash),
        at=block.sealed_at or at,
    )
    return Evidence(
        status="sealed",
        transfer=proof.transfer,
        proof=CertificateProof(
            leaf_hash=proof.leaf_hash,
            batch_id=proof.batch_id,
            block_seq=proof.block_seq,
            merkle_root=proof.merkle_root,
            path=proof.path,
        ),
        block=block,
        checkpoint=signed,
    )
