"""Donation certificates: what anyone may check, without logging in and without the database.

A certificate is the donation's public record (serial, amount, project, date, the donor's
pseudonym) plus everything needed to check it offline with ``python -m points.verify``:

- ``transfer``: the certified ledger transfer (pool → project), whose content hashes to the
  journal leaf (``points.content``, format v1) and whose ``source_ref`` binds serial and donor;
- ``proof``: the Merkle path from that leaf to its block's root (``points.journal``);
- ``block``: the sealed block's header (as ``GET /api/public/v1/journal/blocks/{seq}``
  answers it), whose hash re-computes from its fields;
- ``checkpoint``: the programme's witness signature (Ed25519, ``points.witness``) over that
  block's sequence number and hash, timed at its sealing: a journal of ``seq`` blocks had that
  head. Deterministic (Ed25519 and the sealing time), so every answer for a serial is the same.

The evidence (transfer, proof, block, checkpoint) is ``points.certify``'s, shared with the
enterprises' offset certificates. A proof exists once the transfer's block is sealed: the
periodic task ``points.seal_journal`` seals committed batches every 2 seconds (docs/ledger.md).
Until then the certificate answers ``status: "pending"`` with its transfer but no proof; asking
again later gives the sealed one.
"""

from __future__ import annotations

from typing import Any

import msgspec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from points import certify
from rewards import donations_repository as repo
from rewards.donation_errors import CertificateNotFound
from rewards.donation_schemas import Certificate, kind_of

SERIAL_PATTERN = r"^TPH-[0-9]{4}-[PG]-[0-9]{8,19}$"


async def certificate(
    conn: Any, serial: str, *, key: Ed25519PrivateKey, origin: str
) -> Certificate:
    """The public certificate of ``serial`` (``certificate_not_found`` when there is none)."""
    row = await repo.donation_by_serial(conn, serial)
    if row is None or row["transfer_id"] is None:
        raise CertificateNotFound(f"No certificate {serial!r}.")
    pending = Certificate(
        serial=row["serial"],
        kind=kind_of(row["asset"]),
        asset=row["asset"],
        amount=row["amount"],
        project_id=row["project_id"],
        project_title=row["project_title"],
        beneficiary=row["beneficiary"],
        donor=row["donor"],
        donated_at=row["donated_at"],
        status="pending",
    )
    found = await certify.evidence(
        conn, str(row["transfer_id"]), key=key, origin=origin, at=row["donated_at"]
    )
    return msgspec.structs.replace(
        pending,
        status=found.status,
        transfer=found.transfer,
        proof=found.proof,
        block=found.block,
        checkpoint=found.checkpoint,
    )
