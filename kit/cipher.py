"""Secrets at rest: AES-256-GCM under a key from the settings, never from the database.

Operators' HMAC secrets must be usable (HMAC needs the secret itself, so they cannot be hashed),
so they are stored encrypted: ``v1:`` + base64(12-byte nonce + ciphertext + tag). The additional
data binds each ciphertext to where it is stored (``operator_keys:<operator>:<key id>``), so a
ciphertext copied onto another row does not open. A value that does not open under the key (in
clear, from another key, edited) is refused, never taken as it is.
"""

from __future__ import annotations

import base64
import hashlib
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from kit.settings import PrivacySettings

PREFIX = "v1:"
# Public on purpose, like the development phone-hash key: dev and test only (prod refuses to
# start without TANPUHUI_PRIVACY_SECRETS_KEY).
DEV_SECRETS_KEY = base64.b64encode(hashlib.sha256(b"tanpuhui public dev secrets key").digest())


class SecretBox:
    __slots__ = ("_aead",)

    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key)

    @classmethod
    def from_settings(cls, privacy: PrivacySettings) -> SecretBox:
        return cls(base64.b64decode(privacy.secrets_key or DEV_SECRETS_KEY))

    def seal(self, plaintext: str, *, context: str) -> str:
        nonce = os.urandom(12)
        sealed = self._aead.encrypt(nonce, plaintext.encode(), context.encode())
        return PREFIX + base64.b64encode(nonce + sealed).decode()

    def open(self, stored: str, *, context: str) -> str | None:
        """The plaintext, or None when ``stored`` is not a value sealed by this key for
        ``context``."""
        if not stored.startswith(PREFIX):
            return None
        try:
            raw = base64.b64decode(stored[len(PREFIX) :], validate=True)
            return self._aead.decrypt(raw[:12], raw[12:], context.encode()).decode()
        except (InvalidTag, ValueError):
            return None


def is_sealed(stored: str) -> bool:
    return stored.startswith(PREFIX)
