"""The hash-chained journal: sealing committed batches into blocks, inclusion proofs.

Each write transaction inserts one ``ledger_batches`` row and tags its transfers with it (each
transfer row also stores its content hash, computed before insert). Sealing happens after
commit, by one sealer at a time (an advisory lock): unsealed batches, in id order, get the next
sequence number, the previous block's hash and the Merkle root of their transfers' hashes.
Sealing after commit keeps the chain's single point of serialisation out of the write path: the
writers never wait for each other on the chain head. The periodic task ``points.seal_journal``
seals every few seconds; :func:`seal` can also be called directly.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kit.db import Tx
from kit.errors import NotFound
from points import merkle, witness
from points import repository as repo
from points.errors import BlockNotSealed, TransferNotFound
from points.schemas import InclusionProof


async def seal(tx: Tx, *, max_batches: int = 5000) -> int:
    """Seal up to ``max_batches`` committed batches into blocks; returns how many were sealed.

    Returns 0 at once if another sealer holds the journal lock.
    """
    conn = tx.conn
    if not await repo.try_journal_lock(conn):
        return 0
    batches = await repo.unsealed_batches(conn, max_batches)
    if not batches:
        return 0
    head = await repo.journal_head(conn)
    seq, prev = head if head is not None else (0, merkle.GENESIS)
    leaves = await repo.batch_leaves(conn, batches)
    seqs: list[int] = []
    prevs: list[bytes] = []
    roots: list[bytes] = []
    hashes: list[bytes] = []
    counts: list[int] = []
    for batch_id in batches:
        seq += 1
        root = merkle.merkle_root(leaves[batch_id])
        digest = merkle.block_hash(
            seq=seq,
            prev_hash=prev,
            merkle_root=root,
            batch_id=batch_id,
            transfer_count=len(leaves[batch_id]),
        )
        seqs.append(seq)
        prevs.append(prev)
        roots.append(root)
        hashes.append(digest)
        counts.append(len(leaves[batch_id]))
        prev = digest
    await repo.seal_batches(conn, batches, seqs, prevs, roots, hashes, counts)
    return len(batches)


async def inclusion_proof(conn: Any, transfer_id: str) -> InclusionProof:
    """A proof that the transfer is in its block, checkable by ``merkle.verify_proof`` alone."""
    try:
        tid = int(transfer_id)
    except ValueError:
        raise TransferNotFound(f"no transfer {transfer_id!r}") from None
    row = await repo.transfer_by_id(conn, tid)
    if row is None:
        raise TransferNotFound(f"no transfer {transfer_id!r}")
    blk = await repo.block(conn, row.batch_id)
    if blk is None or blk.seq is None:
        raise BlockNotSealed(f"transfer {transfer_id} is not sealed into the journal yet")
    assert blk.prev_hash is not None and blk.merkle_root is not None
    assert blk.block_hash is not None and blk.transfer_count is not None
    ids = await repo.batch_transfer_ids(conn, row.batch_id)
    leaves = (await repo.batch_leaves(conn, [row.batch_id]))[row.batch_id]
    index = ids.index(tid)
    return InclusionProof(
        transfer=row.transfer,
        leaf_hash=row.hash.hex(),
        batch_id=str(row.batch_id),
        block_seq=blk.seq,
        prev_hash=blk.prev_hash.hex(),
        merkle_root=blk.merkle_root.hex(),
        transfer_count=blk.transfer_count,
        block_hash=blk.block_hash.hex(),
        path=merkle.merkle_path(leaves, index),
    )


# Published: signed checkpoints (points/witness.py) and the blocks they commit to --------------


class PublishedBlock(msgspec.Struct, frozen=True, kw_only=True):
    """A sealed block as anyone may read it: with the previous block's, enough to check the
    chain link and the block hash (``merkle.block_hash``) without the database."""

    seq: int
    batch_id: str
    prev_hash: str
    merkle_root: str
    transfer_count: int
    block_hash: str
    sealed_at: datetime | None


async def checkpoint(
    conn: Any, key: Ed25519PrivateKey, origin: str, now: datetime | None = None
) -> witness.Checkpoint:
    """A signed checkpoint of the journal's head as it is now."""
    head = await repo.journal_head(conn)
    return witness.head_checkpoint(key, origin, head, now or datetime.now(UTC))


async def published_block(conn: Any, seq: int) -> PublishedBlock:
    found = await repo.block_by_seq(conn, seq)
    if found is None:
        raise NotFound(f"no sealed block {seq} in the journal", code="block_not_found")
    blk, sealed_at = found
    assert blk.seq is not None and blk.prev_hash is not None and blk.merkle_root is not None
    assert blk.block_hash is not None and blk.transfer_count is not None
    return PublishedBlock(
        seq=blk.seq,
        batch_id=str(blk.batch_id),
        prev_hash=blk.prev_hash.hex(),
        merkle_root=blk.merkle_root.hex(),
        transfer_count=blk.transfer_count,
        block_hash=blk.block_hash.hex(),
        sealed_at=sealed_at,
    )
