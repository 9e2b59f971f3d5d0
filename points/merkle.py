"""Hashes of the journal: transfer leaves, Merkle roots, block hashes and inclusion proofs.

Pure functions, no database: an inclusion proof (``schemas.InclusionProof``) is checked with
:func:`verify_proof` alone. Domain separation as in RFC 6962: leaves are ``sha256(0x00 || data)``
(the data and its format: ``points.content``), inner nodes ``sha256(0x01 || left || right)``;
an odd node at the end of a level is promoted unchanged. The root of an empty batch is
``sha256(b"")``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import msgspec

from points.content import TransferContent
from points.schemas import InclusionProof, ProofStep, Transfer

_encode = msgspec.json.Encoder().encode
EMPTY_ROOT = hashlib.sha256(b"").digest()
GENESIS = bytes(32)


def transfer_leaf(t: Transfer) -> bytes:
    """The leaf of a transfer: the hash of its content (``points.content``, format v1)."""
    return TransferContent.of(t).leaf()


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def merkle_root(leaves: Sequence[bytes]) -> bytes:
    if not leaves:
        return EMPTY_ROOT
    level = list(leaves)
    while len(level) > 1:
        nxt = [_node(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0]


def merkle_path(leaves: Sequence[bytes], index: int) -> list[ProofStep]:
    """Siblings from the leaf at ``index`` up to the root."""
    path: list[ProofStep] = []
    level = list(leaves)
    while len(level) > 1:
        sibling = index ^ 1
        if sibling < len(level):
            path.append(ProofStep("L" if sibling < index else "R", level[sibling].hex()))
        nxt = [_node(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
        index //= 2
    return path


def root_from_path(leaf: bytes, path: Sequence[ProofStep]) -> bytes:
    node = leaf
    for step in path:
        sibling = bytes.fromhex(step.hash)
        node = _node(sibling, node) if step.side == "L" else _node(node, sibling)
    return node


def block_hash(
    *, seq: int, prev_hash: bytes, merkle_root: bytes, batch_id: int, transfer_count: int
) -> bytes:
    data = _encode([1, seq, prev_hash.hex(), merkle_root.hex(), batch_id, transfer_count])
    return hashlib.sha256(b"\x02" + data).digest()


def verify_proof(proof: InclusionProof) -> bool:
    """True when the transfer's content hashes into the block, and the block hash is right."""
    leaf = transfer_leaf(proof.transfer)
    if leaf.hex() != proof.leaf_hash:
        return False
    root = root_from_path(leaf, proof.path)
    if root.hex() != proof.merkle_root:
        return False
    expected = block_hash(
        seq=proof.block_seq,
        prev_hash=bytes.fromhex(proof.prev_hash),
        merkle_root=root,
        batch_id=int(proof.batch_id),
        transfer_count=proof.transfer_count,
    )
    return expected.hex() == proof.block_hash
