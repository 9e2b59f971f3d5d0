"""One opaque cursor codec for every paginated list: a small msgspec Struct (the keyset
position), JSON-encoded, in unpadded URL-safe base64.

The format is the one both earlier codecs (the mobile history's and the ledger statement's)
used, so cursors already handed out keep decoding. A cursor is opaque to clients: it is
neither signed nor encrypted, so what it holds must be a position the caller could name
anyway (never another resident's data); readers re-check scope in their query.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any, TypeVar

import msgspec

from kit.errors import InvalidInput

T = TypeVar("T")

_encoder = msgspec.json.Encoder()
_decoders: dict[type[Any], msgspec.json.Decoder[Any]] = {}


class CursorInvalid(InvalidInput):
    code = "cursor_invalid"
    title = "Invalid cursor"


def encode(position: msgspec.Struct) -> str:
    """The opaque cursor for ``position``."""
    return base64.urlsafe_b64encode(_encoder.encode(position)).decode().rstrip("=")


def decode(cursor: str, kind: type[T]) -> T:
    """The position ``cursor`` holds; ``CursorInvalid`` when it is not one :func:`encode` gave."""
    decoder = _decoders.get(kind)
    if decoder is None:
        decoder = _decoders[kind] = msgspec.json.Decoder(kind)
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        value: T = decoder.decode(raw)
    except (binascii.Error, msgspec.DecodeError, ValueError):
        raise invalid() from None
    return value


def invalid() -> CursorInvalid:
    """The one refusal of a cursor (also for a position that decodes but cannot be one)."""
    return CursorInvalid("The cursor is not one this API gave out.")
