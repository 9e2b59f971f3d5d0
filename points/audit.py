"""`tanpuhui audit`: verify the journal's hash chain and re-derive every balance.

Read-only. Checks, in order:

1. the chain: sequence numbers 1..n without gaps, each block's ``prev_hash`` is the previous
   block's hash, each block hash re-computes from its fields;
2. every transfer's content re-hashes to its stored hash, and each sealed batch's transfers
   re-build its Merkle root and count (so an edited, deleted or inserted row is caught);
3. every account's posted and pending balance equals the one re-derived from the transfers, per
   asset the balances sum to zero, no account without the issuance flag is negative, and each
   resident's unspent point lots add up to their posted points;
4. no transfer or lot points at a missing account, batch or transfer; every account is of an
   asset the code knows (``points.schemas.ASSETS``: CO2E_G, POINT, ALLOWANCE_G), and
   ALLOWANCE_G is held by enterprise and system accounts only (migration 0012);
5. with a witness file (``--witness FILE``, points/witness.py): the journal still extends every
   checkpoint witnessed before (a consistent rewrite or a truncation of anything witnessed
   fails here, whatever the database says of itself); when everything holds, a new signed
   checkpoint of the audited head is added to the file.

Exit status 0 when everything holds, 1 with a report of every mismatch otherwise.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import msgspec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from points import merkle, witness
from points import repository as repo
from points.schemas import ASSETS


class AuditReport(msgspec.Struct):
    blocks: int = 0
    transfers: int = 0
    unsealed_transfers: int = 0
    accounts_checked: bool = False
    head_seq: int = 0  # the last sealed block audited (0: none)
    head_hash: bytes = merkle.GENESIS
    by_asset: dict[str, int] = msgspec.field(default_factory=dict)  # transfers per asset
    problems: list[str] = msgspec.field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


_MAX_LISTED = 50


async def audit(conn: Any, witnessed: witness.WitnessFile | None = None) -> AuditReport:
    report = AuditReport()
    problems = report.problems
    wanted = {cp.seq for cp in witnessed.checkpoints} if witnessed else set()
    hashes: dict[int, bytes] = {}
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        sealed: dict[int, repo.BlockRow] = {}
        expected_seq, prev = 1, merkle.GENESIS
        async for r in repo.sealed_blocks(conn):
            blk = repo.block_of(r)
            assert blk.seq is not None and blk.prev_hash is not None
            assert blk.merkle_root is not None and blk.transfer_count is not None
            report.blocks += 1
            sealed[blk.batch_id] = blk
            if blk.seq != expected_seq:
                problems.append(f"block seq {blk.seq}: expected seq {expected_seq} (gap)")
            if blk.prev_hash != prev:
                problems.append(
                    f"block seq {blk.seq}: prev_hash does not match block {blk.seq - 1}"
                )
            digest = merkle.block_hash(
                seq=blk.seq,
                prev_hash=blk.prev_hash,
                merkle_root=blk.merkle_root,
                batch_id=blk.batch_id,
                transfer_count=blk.transfer_count,
            )
            if digest != blk.block_hash:
                problems.append(f"block seq {blk.seq}: block hash does not re-compute")
            expected_seq, prev = blk.seq + 1, blk.block_hash or b""
            report.head_seq, report.head_hash = blk.seq, prev
            if blk.seq in wanted:
                hashes[blk.seq] = prev
        if witnessed is not None:
            problems.extend(witness.extends(witnessed, report.head_seq, hashes))

        current: int | None = None
        leaves: list[bytes] = []
        seen: set[int] = set()

        def close_batch(batch_id: int, leaves: list[bytes]) -> None:
            seen.add(batch_id)
            blk = sealed.get(batch_id)
            if blk is None:
                report.unsealed_transfers += len(leaves)
                return
            if blk.transfer_count != len(leaves):
                problems.append(
                    f"block seq {blk.seq}: {len(leaves)} transfers, sealed with "
                    f"{blk.transfer_count}"
                )
            if merkle.merkle_root(leaves) != blk.merkle_root:
                problems.append(f"block seq {blk.seq}: Merkle root does not re-compute")

        async for r in repo.all_transfers(conn):
            row = repo.transfer_of(r)
            report.transfers += 1
            kind = row.transfer.asset
            report.by_asset[kind] = report.by_asset.get(kind, 0) + 1
            leaf = merkle.transfer_leaf(row.transfer)
            if leaf != row.hash:
                problems.append(
                    f"transfer {row.transfer.id}: content does not match its hash "
                    f"(key {row.transfer.idempotency_key!r})"
                )
            if current is not None and row.batch_id != current:
                close_batch(current, leaves)
                leaves = []
            current = row.batch_id
            leaves.append(leaf)
        if current is not None:
            close_batch(current, leaves)
        for batch_id, blk in sealed.items():
            if batch_id not in seen and blk.transfer_count:
                problems.append(f"block seq {blk.seq}: its {blk.transfer_count} transfers are gone")
            if (
                batch_id not in seen
                and not blk.transfer_count
                and (blk.merkle_root != merkle.EMPTY_ROOT)
            ):
                problems.append(f"block seq {blk.seq}: empty block with a non-empty root")

        for m in (await repo.balance_mismatches(conn))[:_MAX_LISTED]:
            problems.append(
                f"account {m['id']} ({m['owner_type']}:{m['owner_id']} {m['asset']}): stored "
                f"posted {m['posted']} pending {m['pending_debits']}, re-derived posted "
                f"{m['derived_posted']} pending {m['derived_pending']}"
            )
        problems.extend(await repo.dangling_references(conn))
        for a in (await repo.accounts_outside(conn, ASSETS))[:_MAX_LISTED]:
            problems.append(
                f"account {a['id']} ({a['owner_type']}:{a['owner_id']} {a['asset']}): "
                + (
                    "an asset the ledger does not know"
                    if a["asset"] not in ASSETS
                    else "allowance held by neither an enterprise nor a system account"
                )
            )
        for asset, total in (await repo.asset_sums(conn)).items():
            if total != 0:
                problems.append(f"asset {asset}: balances sum to {total}, not 0")
        for a in (await repo.overdrawn_accounts(conn))[:_MAX_LISTED]:
            problems.append(
                f"account {a['id']} ({a['owner_type']}:{a['owner_id']} {a['asset']}) is "
                f"negative: posted {a['posted']} pending {a['pending_debits']}"
            )
        for lot in (await repo.lot_mismatches(conn))[:_MAX_LISTED]:
            problems.append(
                f"account {lot['id']} (resident:{lot['owner_id']} POINT): posted "
                f"{lot['posted']} but {lot['in_lots']} in unspent lots"
            )
        report.accounts_checked = True
    return report


def print_report(report: AuditReport, out: TextIO) -> None:
    status = "OK" if report.ok else "FAILED"
    per_asset = ", ".join(f"{a} {report.by_asset.get(a, 0)}" for a in ASSETS)
    print(
        f"ledger audit {status}: {report.blocks} blocks, {report.transfers} transfers "
        f"({per_asset}; {report.unsealed_transfers} not sealed yet), "
        f"{len(report.problems)} problems",
        file=out,
    )
    for problem in report.problems:
        print(f"  - {problem}", file=out)


async def run_audit_cli(
    database_url: str,
    witness_path: Path | None = None,
    *,
    key: Ed25519PrivateKey | None = None,
    origin: str = "",
) -> int:
    """The audit; with ``witness_path``, checked against the checkpoints kept there (``key`` and
    ``origin`` sign the new one, added only when everything holds)."""
    from kit.db import connect

    err = sys.stderr
    kept: witness.WitnessFile | None = None
    file_problems: list[str] = []
    if witness_path is not None:
        try:
            kept = witness.load(witness_path)
        except witness.WitnessFileError as exc:
            print(f"ledger audit FAILED: {exc}", file=err)
            return 1
        assert key is not None
        if kept is not None:
            file_problems = witness.check_file(kept, origin)
            signer = witness.public_key_b64(key)
            if signer not in kept.public_keys:
                file_problems.append(
                    f"checkpoints are now signed by key {witness.key_id_of(key)}, which the "
                    "witness file does not trust; if the witness key was rotated on purpose, "
                    "add its public key to the file's public_keys"
                )
    conn = await connect(database_url)
    try:
        report = await audit(conn, kept)
    finally:
        await conn.close()
    report.problems[:0] = file_problems
    out = sys.stdout if report.ok else err
    print_report(report, out)
    if witness_path is not None and report.ok:
        assert key is not None
        checkpoint = witness.head_checkpoint(
            key, origin, (report.head_seq, report.head_hash), datetime.now(UTC)
        )
        updated = witness.record(kept, checkpoint)
        witness.save(witness_path, updated)
        print(
            f"witness {witness_path}: {len(updated.checkpoints)} checkpoints, the latest "
            f"seq {checkpoint.seq} ({checkpoint.timestamp})",
            file=out,
        )
    return 0 if report.ok else 1
