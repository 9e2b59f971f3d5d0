"""Signed checkpoints of the journal, and the witness file that keeps them outside the database.

The audit re-derives everything from the database, so whoever can rewrite the database (its owner,
a superuser, a restore) can rewrite a transfer *and* every hash after it, consistently: the audit
alone then passes. A checkpoint is the journal's head — its sequence number (how many blocks) and
the hash of its last block, which commits to every block and transfer before it — signed with an
Ed25519 key the database does not hold, as RFC 9162's signed tree heads are. Anyone who keeps one
(``tanpuhui audit --witness FILE``, or a copy of ``GET /api/public/v1/journal/checkpoint``) can
later check that the journal still *extends* it: the block at that sequence number must still
exist and still have that hash. A rewrite of anything witnessed changes that hash; a truncation
removes the block. The file format is documented in docs/ledger.md ("The witness").
"""

from __future__ import annotations

import base64
import hashlib
import os
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import msgspec
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from points import merkle

FORMAT = "tanpuhui-witness/1"
_SIGNED_HEADER = "tanpuhui journal checkpoint v1"
DEV_KEY_FILE = "ledger-witness.key"


class Checkpoint(msgspec.Struct, frozen=True, kw_only=True):
    """The journal's head at ``timestamp``, signed (the wire and file form)."""

    origin: str  # which journal: "tanpuhui/<region code>"
    seq: int  # sealed blocks in the journal (0: none yet)
    block_hash: str  # hex SHA-256 of block ``seq`` (64 zeros when seq is 0)
    timestamp: str  # when it was signed, ISO 8601 UTC
    key_id: str  # hex, the first 8 bytes of SHA-256 of the public key
    public_key: str  # base64 of the raw 32-byte Ed25519 public key
    signature: str  # base64 Ed25519 signature of :func:`signed_text`


class WitnessFile(msgspec.Struct, kw_only=True):
    format: str = FORMAT
    origin: str
    public_keys: list[str]  # trusted signers (base64); the first checkpoint's key is pinned
    checkpoints: list[Checkpoint] = msgspec.field(default_factory=list)  # oldest first


def signed_text(origin: str, seq: int, block_hash: str, timestamp: str) -> bytes:
    """The exact bytes signed: one field per line, as C2SP's checkpoint note body is."""
    return f"{_SIGNED_HEADER}\n{origin}\n{seq}\n{block_hash}\n{timestamp}\n".encode()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def public_key_bytes(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def key_id(public_key: bytes) -> str:
    return hashlib.sha256(public_key).digest()[:8].hex()


def public_key_b64(key: Ed25519PrivateKey) -> str:
    return _b64(public_key_bytes(key))


def key_id_of(key: Ed25519PrivateKey) -> str:
    return key_id(public_key_bytes(key))


def sign(
    key: Ed25519PrivateKey, *, origin: str, seq: int, block_hash: bytes, at: datetime
) -> Checkpoint:
    timestamp = at.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    head = block_hash.hex()
    public = public_key_bytes(key)
    return Checkpoint(
        origin=origin,
        seq=seq,
        block_hash=head,
        timestamp=timestamp,
        key_id=key_id(public),
        public_key=_b64(public),
        signature=_b64(key.sign(signed_text(origin, seq, head, timestamp))),
    )


def verify(checkpoint: Checkpoint, public_key: str | None = None) -> bool:
    """True when ``checkpoint`` is signed by ``public_key`` (base64; default: the key it names)."""
    try:
        raw = base64.b64decode(public_key or checkpoint.public_key, validate=True)
        signature = base64.b64decode(checkpoint.signature, validate=True)
        Ed25519PublicKey.from_public_bytes(raw).verify(
            signature,
            signed_text(
                checkpoint.origin, checkpoint.seq, checkpoint.block_hash, checkpoint.timestamp
            ),
        )
    except (InvalidSignature, ValueError):
        return False
    return key_id(raw) == checkpoint.key_id


def origin_of(region_code: str) -> str:
    return f"tanpuhui/{region_code}"


@lru_cache(maxsize=4)
def signing_key(configured: str | None, data_dir: str) -> Ed25519PrivateKey:
    """The checkpoint key: the setting (base64 of the 32-byte private key), or else (dev/test
    only: prod refuses to start without the setting) a key generated once and kept, readable by
    its owner only, under the embedded data directory. Never printed, never in the database."""
    if configured:
        return Ed25519PrivateKey.from_private_bytes(base64.b64decode(configured))
    path = Path(os.path.expanduser(data_dir)) / DEV_KEY_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return Ed25519PrivateKey.from_private_bytes(base64.b64decode(path.read_text().strip()))
    with os.fdopen(fd, "w") as f:
        seed = os.urandom(32)
        f.write(_b64(seed) + "\n")
    return Ed25519PrivateKey.from_private_bytes(seed)


def settings_key(settings: Any) -> Ed25519PrivateKey:
    return signing_key(settings.points.witness_key, settings.embedded.data_dir)


def head_checkpoint(
    key: Ed25519PrivateKey, origin: str, head: tuple[int, bytes] | None, at: datetime
) -> Checkpoint:
    seq, digest = head if head is not None else (0, merkle.GENESIS)
    return sign(key, origin=origin, seq=seq, block_hash=digest, at=at)


# The witness file ------------------------------------------------------------------------------

_decoder = msgspec.json.Decoder(WitnessFile)


class WitnessFileError(Exception):
    pass


def load(path: Path) -> WitnessFile | None:
    """The file's content; None when it does not exist yet (the first audit creates it)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    try:
        witness = _decoder.decode(data)
    except msgspec.DecodeError as exc:
        raise WitnessFileError(f"{path} is not a witness file: {exc}") from None
    if witness.format != FORMAT:
        raise WitnessFileError(f"{path}: unknown format {witness.format!r} (expected {FORMAT})")
    return witness


def save(path: Path, witness: WitnessFile) -> None:
    """Written whole to a temporary file, then renamed over the old one (never half a file)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(msgspec.json.format(msgspec.json.encode(witness), indent=2) + b"\n")
    os.replace(tmp, path)


def check_file(witness: WitnessFile, origin: str) -> list[str]:
    """What is wrong with the file itself: another journal, a checkpoint not signed by a pinned
    key (an edited file, or a key rotated without pinning the new one)."""
    problems: list[str] = []
    if witness.origin != origin:
        problems.append(f"witness file is of journal {witness.origin!r}, not {origin!r}")
    for cp in witness.checkpoints:
        if cp.origin != witness.origin or not any(verify(cp, k) for k in witness.public_keys):
            problems.append(
                f"witness file: the checkpoint of {cp.timestamp} (seq {cp.seq}) is not signed "
                "by a pinned key"
            )
    return problems


def extends(witness: WitnessFile, head_seq: int, hashes: dict[int, bytes]) -> list[str]:
    """Whether the journal (``head_seq`` blocks; ``hashes``: the hash of each block at a witnessed
    sequence number) extends every witnessed checkpoint."""
    problems: list[str] = []
    for cp in witness.checkpoints:
        if cp.seq == 0:
            continue
        if cp.seq > head_seq:
            problems.append(
                f"witnessed checkpoint of {cp.timestamp} has {cp.seq} blocks; the journal now "
                f"has {head_seq}: it was truncated"
            )
        elif hashes.get(cp.seq, b"").hex() != cp.block_hash:
            problems.append(
                f"block seq {cp.seq}: its hash differs from the checkpoint witnessed at "
                f"{cp.timestamp}: the journal was rewritten"
            )
    return problems


def record(witness: WitnessFile | None, checkpoint: Checkpoint) -> WitnessFile:
    """The file with ``checkpoint`` appended (a new file pins its key). A checkpoint of a head
    already witnessed replaces the newest one instead of piling up."""
    if witness is None:
        return WitnessFile(
            origin=checkpoint.origin,
            public_keys=[checkpoint.public_key],
            checkpoints=[checkpoint],
        )
    kept = list(witness.checkpoints)
    if kept and (kept[-1].seq, kept[-1].block_hash) == (checkpoint.seq, checkpoint.block_hash):
        kept[-1] = checkpoint
    else:
        kept.append(checkpoint)
    return WitnessFile(
        format=witness.format,
        origin=witness.origin,
        public_keys=witness.public_keys,
        checkpoints=kept,
    )
