"""Check a certificate offline: ``python -m points.verify certificate.json``: a donation
certificate (rewards) or an offset certificate (an enterprise's retirement, enterprises.offsets).

Standard library only, and no import of this project (a test holds it to that), so anyone can
copy this one file and check a certificate without the programme's code or database:

1. the transfer's leaf hash is re-computed from the certificate's transfer content (the
   journal's leaf format v1: ``sha256(0x00 || JSON array of the content)``, docs/ledger.md);
2. the Merkle path is walked from that leaf to a root (inner nodes ``sha256(0x01 || l || r)``),
   which must be the block header's ``merkle_root``;
3. the block header's hash is re-computed from its fields (``sha256(0x02 || JSON)``);
4. the checkpoint, the programme's witness statement "the journal's block ``seq`` has this
   hash", is checked with Ed25519 (RFC 8032, implemented below in plain Python: the standard
   library has no Ed25519), against ``--public-key`` (base64, pinned out of band: the key
   published by the programme) when given, else against the key the checkpoint names (which
   shows integrity, not who signed: the output says so);
5. what the certificate says is what the transfer says: for a donation, amount, asset,
   project, serial and donor; for an offset, amount, the enterprise's offsets account debited,
   the retired offsets credited, and the certificate's serial, period and serial ranges (which
   must be disjoint and add up to the amount) in its ``source_ref``.

Exit status 0 when every check holds, 1 otherwise (each failure named), 2 for unusable input.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import itertools
import json
import sys
from datetime import UTC, datetime
from typing import Any

LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"
BLOCK_PREFIX = b"\x02"
FORMAT_VERSION = 1
SIGNED_HEADER = "tanpuhui journal checkpoint v1"


def _json(value: Any) -> bytes:
    # The journal's encoding: compact JSON, UTF-8, no escaping of non-ASCII characters.
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def _ts(value: str | None) -> str | None:
    if value is None:
        return None
    return datetime.fromisoformat(value).astimezone(UTC).isoformat()


def _int_or_none(value: Any) -> int | None:
    return None if value is None else int(value)


def leaf_hash(t: dict[str, Any]) -> bytes:
    """The leaf of a transfer (wire form, as the certificate carries it): format v1."""
    content = [
        FORMAT_VERSION,
        t["idempotency_key"],
        t["phase"],
        t["kind"],
        t["reason_code"],
        t["asset"],
        t["debit"]["owner_type"],
        t["debit"]["owner_id"],
        t["credit"]["owner_type"],
        t["credit"]["owner_id"],
        t["amount"],
        t["source_ref"],
        t["region_code"],
        _ts(t["occurred_at"]),
        _int_or_none(t.get("pending_id")),
        _int_or_none(t.get("reverses_id")),
        _ts(t.get("timeout_at")),
    ]
    return hashlib.sha256(LEAF_PREFIX + _json(content)).digest()


def root_from_path(leaf: bytes, path: list[dict[str, str]]) -> bytes:
    node = leaf
    for step in path:
        sibling = bytes.fromhex(step["hash"])
        if step["side"] == "L":
            node = hashlib.sha256(NODE_PREFIX + sibling + node).digest()
        elif step["side"] == "R":
            node = hashlib.sha256(NODE_PREFIX + node + sibling).digest()
        else:
            raise ValueError(f"proof step side {step['side']!r} is neither L nor R")
    return node


def block_hash(block: dict[str, Any]) -> bytes:
    data = _json(
        [
            1,
            block["seq"],
            block["prev_hash"],
            block["merkle_root"],
            int(block["batch_id"]),
            block["transfer_count"],
        ]
    )
    return hashlib.sha256(BLOCK_PREFIX + data).digest()


def signed_text(cp: dict[str, Any]) -> bytes:
    return (
        f"{SIGNED_HEADER}\n{cp['origin']}\n{cp['seq']}\n{cp['block_hash']}\n{cp['timestamp']}\n"
    ).encode()


# Ed25519 verification (RFC 8032, section 5.1.7), in extended coordinates -------------------

_P = 2**255 - 19
_L = 2**252 + 27742317777372353535851937790883648493
_D = -121665 * pow(121666, _P - 2, _P) % _P
_SQRT_M1 = pow(2, (_P - 1) // 4, _P)
Point = tuple[int, int, int, int]


def _recover_x(y: int, sign: int) -> int | None:
    if y >= _P:
        return None
    x2 = (y * y - 1) * pow(_D * y * y + 1, _P - 2, _P)
    if x2 % _P == 0:
        return None if sign else 0
    x = pow(x2, (_P + 3) // 8, _P)
    if (x * x - x2) % _P != 0:
        x = x * _SQRT_M1 % _P
    if (x * x - x2) % _P != 0:
        return None
    if (x & 1) != sign:
        x = _P - x
    return x


def _add(a: Point, b: Point) -> Point:
    pa = (a[1] - a[0]) * (b[1] - b[0]) % _P
    pb = (a[1] + a[0]) * (b[1] + b[0]) % _P
    pc = 2 * a[3] * b[3] * _D % _P
    pd = 2 * a[2] * b[2] % _P
    e, f, g, h = pb - pa, pd - pc, pd + pc, pb + pa
    return (e * f % _P, g * h % _P, f * g % _P, e * h % _P)


def _mul(s: int, a: Point) -> Point:
    q: Point = (0, 1, 1, 0)
    while s > 0:
        if s & 1:
            q = _add(q, a)
        a = _add(a, a)
        s >>= 1
    return q


def _same(a: Point, b: Point) -> bool:
    return (a[0] * b[2] - b[0] * a[2]) % _P == 0 and (a[1] * b[2] - b[1] * a[2]) % _P == 0


def _decompress(s: bytes) -> Point | None:
    if len(s) != 32:
        return None
    y = int.from_bytes(s, "little")
    sign = y >> 255
    y &= (1 << 255) - 1
    x = _recover_x(y, sign)
    return None if x is None else (x, y, 1, x * y % _P)


_GY = 4 * pow(5, _P - 2, _P) % _P
_GX = _recover_x(_GY, 0) or 0
_G: Point = (_GX, _GY, 1, _GX * _GY % _P)


def ed25519_verify(public: bytes, message: bytes, signature: bytes) -> bool:
    if len(public) != 32 or len(signature) != 64:
        return False
    a = _decompress(public)
    r = _decompress(signature[:32])
    if a is None or r is None:
        return False
    s = int.from_bytes(signature[32:], "little")
    if s >= _L:
        return False
    h = int.from_bytes(hashlib.sha512(signature[:32] + public + message).digest(), "little") % _L
    return _same(_mul(s, _G), _add(r, _mul(h, a)))


# The checks --------------------------------------------------------------------------------

OFFSET_FORMAT = "tanpuhui-offset-certificate/1"


def _check_offset(cert: dict[str, Any], t: dict[str, Any], check: Any) -> None:
    """An offset certificate (docs/offsets.md): the transfer moves the certified grams from the
    enterprise's offsets account to its retired offsets account, and its source_ref names
    the certificate, the enterprise, the period and exactly the certificate's serials."""
    ranges = [(int(r["start"]), int(r["end"])) for r in cert["serials"]]
    check(
        all(s <= e for s, e in ranges)
        and all(a[1] < b[0] for a, b in itertools.pairwise(ranges))
        and sum(e - s + 1 for s, e in ranges) == cert["amount"],
        f"the serials ({len(ranges)} ranges) are disjoint and count {cert['amount']} grams",
        "the certificate's serial ranges overlap or do not add up to its amount",
    )
    serials = ",".join(f"{s}-{e}" for s, e in ranges)
    ref = (
        f"offset-retirement:{cert['serial']}:{cert['enterprise_id']}:{cert['period']}"
        f":serials:{serials}"
    )
    debit = {"owner_type": "enterprise", "owner_id": f"{cert['enterprise_id']}:offsets"}
    retired = {"owner_type": "enterprise", "owner_id": f"{cert['enterprise_id']}:offsets_retired"}
    check(
        t["amount"] == cert["amount"]
        and t["asset"] == cert["asset"] == "CO2E_G"
        and t["debit"] == debit
        and t["credit"] == retired
        and t["phase"] == "posted"
        and t["source_ref"] == ref,
        f"the transfer retires {cert['amount']} g of enterprise {cert['enterprise_id']}'s "
        f"offsets against {cert['period']}, serials {serials}, for certificate {cert['serial']}",
        "the certificate's amount, enterprise, period, serials or serial differ from its transfer",
    )


def verify(cert: dict[str, Any], public_key: str | None = None) -> tuple[list[str], list[str]]:
    """(what holds, what fails) for a certificate (the JSON of the certificate endpoint)."""
    ok: list[str] = []
    bad: list[str] = []

    def check(holds: bool, yes: str, no: str) -> bool:
        (ok if holds else bad).append(yes if holds else no)
        return holds

    if cert.get("status") != "sealed" or not cert.get("proof") or not cert.get("block"):
        bad.append("the certificate is pending: its block is not sealed yet; fetch it again")
        return ok, bad
    t, proof, block = cert["transfer"], cert["proof"], cert["block"]
    leaf = leaf_hash(t)
    check(
        leaf.hex() == proof["leaf_hash"],
        f"transfer {t['id']}: content hashes to the leaf {leaf.hex()}",
        "the transfer's content does not hash to the proof's leaf (the transfer was altered)",
    )
    root = root_from_path(leaf, proof["path"])
    check(
        root.hex() == proof["merkle_root"] == block["merkle_root"],
        f"Merkle path ({len(proof['path'])} steps) leads to the block's root {root.hex()}",
        "the Merkle path does not lead from the leaf to the block's root",
    )
    check(
        proof["block_seq"] == block["seq"] and str(proof["batch_id"]) == str(block["batch_id"]),
        f"the proof is of block {block['seq']}",
        "the proof names another block than the header",
    )
    check(
        block_hash(block).hex() == block["block_hash"],
        f"block {block['seq']}: its hash re-computes ({block['block_hash']})",
        f"block {block['seq']}: its hash does not re-compute from its fields",
    )
    if cert.get("format") == OFFSET_FORMAT:
        _check_offset(cert, t, check)
    else:
        project = {"owner_type": "project", "owner_id": cert["project_id"]}
        ref = f"certificate:{cert['serial']}:{cert['donor']}"
        check(
            t["amount"] == cert["amount"]
            and t["asset"] == cert["asset"]
            and t["credit"] == project
            and t["phase"] == "posted"
            and t["source_ref"] == ref,
            f"the transfer credits {cert['amount']} {cert['asset']} to project "
            f"{cert['project_id']} for certificate {cert['serial']}",
            "the certificate's amount, asset, project, serial or donor differ from its transfer",
        )
    cp = cert.get("checkpoint")
    if not cp:
        bad.append("no checkpoint: the block is not signed by the programme's witness")
        return ok, bad
    check(
        cp["seq"] == block["seq"] and cp["block_hash"] == block["block_hash"],
        f"the checkpoint is of block {block['seq']}",
        "the checkpoint is of another block",
    )
    try:
        key = base64.b64decode(public_key or cp["public_key"], validate=True)
        signature = base64.b64decode(cp["signature"], validate=True)
    except ValueError:
        bad.append("the checkpoint's key or signature is not base64")
        return ok, bad
    signed = ed25519_verify(key, signed_text(cp), signature)
    kid = hashlib.sha256(key).digest()[:8].hex()
    if public_key:
        check(
            signed and kid == cp["key_id"],
            f"the checkpoint is signed by the pinned key {kid} ({cp['origin']}, {cp['timestamp']})",
            "the checkpoint is not signed by the pinned key",
        )
    else:
        check(
            signed and kid == cp["key_id"],
            f"the checkpoint's signature holds for the key it names ({kid}); pin the "
            "programme's published key with --public-key to know who signed",
            "the checkpoint's signature does not hold",
        )
    return ok, bad


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m points.verify", description=__doc__)
    parser.add_argument("certificate", help="the certificate's JSON file ('-': standard input)")
    parser.add_argument("--public-key", help="the programme's witness key (base64), pinned")
    args = parser.parse_args(argv)
    try:
        if args.certificate == "-":
            cert = json.load(sys.stdin)
        else:
            with open(args.certificate, encoding="utf-8") as f:
                cert = json.load(f)
        ok, bad = verify(cert, args.public_key)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        sys.stderr.write(f"points.verify: not a usable certificate: {exc!r}\n")
        return 2
    for line in ok:
        sys.stdout.write(f"ok    {line}\n")
    for line in bad:
        sys.stdout.write(f"FAIL  {line}\n")
    serial = cert.get("serial", "?")
    if bad:
        sys.stdout.write(f"certificate {serial}: NOT verified ({len(bad)} failed)\n")
        return 1
    sys.stdout.write(f"certificate {serial}: verified\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
