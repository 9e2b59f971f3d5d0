"""Reward codes: normalised, hashed (keyed, per merchant: lookups and uniqueness), sealed (the
one resident it is issued to sees it), masked (what a merchant's lookup answers), generated,
and their QR payload."""

from __future__ import annotations

import secrets

from residents.service import keyed_hash
from rewards.settings import RewardsConfig

# Crockford's base32: no I, L, O, U (nothing to misread at a till).
ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
GENERATED_LENGTH = 12  # 60 bits
QR_PREFIX = "TPH1:"


def normalise(code: str) -> str:
    """The form codes are compared in: no spaces or dashes, upper case. (``str.split()`` splits
    on exactly what ``str.isspace()`` calls whitespace, in C: no loop over characters here.)"""
    return "".join(code.replace("-", "").split()).upper()


def generate() -> str:
    """A fresh code: 12 characters, each 5 uniform random bits (32 symbols: ``b & 31`` of a
    random byte is uniform), from one ``token_bytes`` call instead of one ``choice`` a
    character (about 75 µs a code, the redemption path's largest Python cost)."""
    return "".join([ALPHABET[b & 31] for b in secrets.token_bytes(GENERATED_LENGTH)])


def display(code: str, *, generated: bool) -> str:
    """A generated code in groups of four; an imported one as it is."""
    if not generated:
        return code
    return "-".join(code[i : i + 4] for i in range(0, len(code), 4))


def code_hash(cfg: RewardsConfig, merchant_id: str, code: str) -> bytes:
    return keyed_hash(cfg.privacy, f"reward_code:{merchant_id}", normalise(code))


def context(merchant_id: str) -> str:
    return f"reward_codes:{merchant_id}"


def seal(cfg: RewardsConfig, merchant_id: str, code: str) -> str:
    return cfg.box.seal(normalise(code), context=context(merchant_id))


def open_code(cfg: RewardsConfig, merchant_id: str, sealed: str) -> str:
    opened = cfg.box.open(sealed, context=context(merchant_id))
    return opened if opened is not None else ""


def qr_payload(merchant_id: str, code: str) -> str:
    return f"{QR_PREFIX}{merchant_id}:{normalise(code)}"


def from_scan(merchant_id: str, scanned: str) -> str | None:
    """The code in what a till read (the text, or the QR payload); None when the payload names
    another merchant."""
    text = scanned.strip()
    if text.upper().startswith(QR_PREFIX):
        owner, _, code = text[len(QR_PREFIX) :].partition(":")
        return code if owner == merchant_id else None
    return text


def mask(code: str) -> str:
    """Enough to recognise a code, never enough to use it."""
    plain = normalise(code)
    shown = 4 if len(plain) >= 10 else 2 if len(plain) >= 6 else 0
    return "*" * (len(plain) - shown) + plain[len(plain) - shown :]
