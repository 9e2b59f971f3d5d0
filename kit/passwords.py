"""Passwords of the programme's signed-in staff (enterprise administrators, government users):
scrypt hashes, a decoy for unknown logins, and Redis-budgeted failed sign-in attempts.

Hashes are ``hashlib.scrypt`` (RFC 7914): n = 2^15, r = 8, p = 3, a 16-byte random salt, a
32-byte key; 32 MiB of memory and ~0.5 s of one core per hash here. OWASP's password storage
cheat sheet lists (2^15, 8, 3) among the equivalents of its minimum (2^17, 8, 1): the same work
in a quarter of the memory. The parameters travel in the stored string
(``scrypt$15$8$3$<salt>$<key>``, base64), so raising them later leaves existing hashes
verifiable. Hashing is CPU-bound: async callers use :func:`hash_in_thread` and :func:`matches`,
which run it in a worker thread so that it does not stall the event loop.

Failed attempts are budgeted per login and client, per login, and per client
(:class:`AttemptBudget`); each attempt is counted up front and a success gives it back, so only
failures stay counted.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import re
import secrets
from collections.abc import Sequence
from typing import Any, Final

from kit.errors import FieldError

SCRYPT_LOG2_N: Final = 15
SCRYPT_R: Final = 8
SCRYPT_P: Final = 3
SALT_BYTES: Final = 16
KEY_BYTES: Final = 32
PASSWORD_MIN: Final = 12
PASSWORD_MAX: Final = 128
# A login: unique in its population, stored lower case.
LOGIN = re.compile(r"[a-z0-9][a-z0-9._@-]{2,63}", re.ASCII)
NAME_MAX: Final = 100

__all__ = [
    "LOGIN",
    "NAME_MAX",
    "PASSWORD_MAX",
    "PASSWORD_MIN",
    "AttemptBudget",
    "account_problems",
    "decoy",
    "encodable",
    "hash_in_thread",
    "hash_password",
    "matches",
    "normalise_login",
    "password_matches",
    "well_sized",
]


def _scrypt(password: str, salt: bytes, log2_n: int, r: int, p: int) -> bytes:
    n = 1 << log2_n
    return hashlib.scrypt(
        password.encode(), salt=salt, n=n, r=r, p=p, dklen=KEY_BYTES, maxmem=256 * n * r + 2**20
    )


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(SALT_BYTES)
    key = _scrypt(password, salt, SCRYPT_LOG2_N, SCRYPT_R, SCRYPT_P)
    b64 = base64.b64encode
    return f"scrypt${SCRYPT_LOG2_N}${SCRYPT_R}${SCRYPT_P}${b64(salt).decode()}${b64(key).decode()}"


def password_matches(stored: str, password: str) -> bool:
    """Whether ``password`` is the one ``stored`` was made from (constant-time comparison)."""
    try:
        scheme, log2_n, r, p, salt, key = stored.split("$")
        if scheme != "scrypt":
            return False
        got = _scrypt(password, base64.b64decode(salt), int(log2_n), int(r), int(p))
    except ValueError:
        return False
    return hmac.compare_digest(got, base64.b64decode(key))


# Verified against when the login is unknown, so that an unknown login costs what a wrong
# password costs (no timing oracle for which logins exist). Made once, on first use.
_DECOY: list[str] = []


def decoy() -> str:
    if not _DECOY:
        _DECOY.append(hash_password(secrets.token_urlsafe(16)))
    return _DECOY[0]


def encodable(text: str) -> bool:
    """Whether ``text`` is Unicode text (JSON may carry a lone surrogate, which UTF-8 cannot)."""
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def well_sized(password: str) -> bool:
    """Whether ``password`` may be set: PASSWORD_MIN to PASSWORD_MAX characters of text."""
    return PASSWORD_MIN <= len(password) <= PASSWORD_MAX and encodable(password)


def normalise_login(login: str) -> str:
    return login.strip().lower()


def account_problems(login: str, display_name: str, password: str | None) -> list[FieldError]:
    """The fields of a new account that break a rule (``password`` None: not being set)."""
    out = []
    if not LOGIN.fullmatch(login):
        out.append(
            FieldError(
                path="login",
                message=(
                    "3 to 64 characters: lower-case letters, digits and . _ @ -, starting with a "
                    "letter or digit."
                ),
            )
        )
    name = display_name.strip()
    if not name or len(name) > NAME_MAX or not encodable(name) or "\x00" in name:
        out.append(FieldError(path="display_name", message=f"1 to {NAME_MAX} characters."))
    if password is not None and not well_sized(password):
        out.append(
            FieldError(
                path="password",
                message=f"{PASSWORD_MIN} to {PASSWORD_MAX} characters (Unicode text).",
            )
        )
    return out


async def hash_in_thread(password: str) -> str:
    return await asyncio.to_thread(hash_password, password)


async def matches(stored: str | None, password: str) -> bool:
    """Whether ``password`` matches ``stored``, checked in a worker thread; ``stored`` None (an
    unknown login) is checked against the decoy, at the same cost, and never matches."""
    if not encodable(password):
        return False  # not text: no password of anyone's (says nothing of the login)
    ok = await asyncio.to_thread(password_matches, stored or decoy(), password)
    return ok and stored is not None


# --- Redis: the sign-in attempt budgets --------------------------------------------------------

# One script, so that concurrent attempts cannot overshoot a budget: KEYS = the budgets,
# ARGV = window (s), then one limit per budget. Each admitted attempt is counted up front in
# every budget (0 returned); a spent budget refuses and counts nothing ({i, seconds left}).
# A successful sign-in gives its count back (``refund``), so only failures stay.
_TAKE_ATTEMPT = """
for i = 1, #KEYS do
  local used = tonumber(redis.call('GET', KEYS[i]) or '0')
  if used >= tonumber(ARGV[i + 1]) then
    return {i, math.max(redis.call('TTL', KEYS[i]), 1)}
  end
end
for i = 1, #KEYS do
  if redis.call('INCR', KEYS[i]) == 1 then redis.call('EXPIRE', KEYS[i], ARGV[1]) end
end
return {0, 0}
"""

_REFUND_ATTEMPT = """
for i = 1, #KEYS do
  if tonumber(redis.call('GET', KEYS[i]) or '0') > 0 then redis.call('DECR', KEYS[i]) end
end
return 0
"""


class AttemptBudget:
    """The failed sign-in budgets of one population of users (keys under ``prefix``): this login
    from this client, this login, this client. Logins and clients are passed already hashed
    (keyed), so Redis never holds either in clear."""

    __slots__ = ("limits", "prefix", "window_s")

    def __init__(
        self, prefix: str, *, window_s: int, per_login_client: int, per_login: int, per_client: int
    ) -> None:
        self.prefix = prefix
        self.window_s = window_s
        self.limits = (per_login_client, per_login, per_client)

    def keys(self, login_hash: str, client_hash: str) -> list[str]:
        return [
            f"{self.prefix}:sign-in:login-client:{login_hash}:{client_hash}",
            f"{self.prefix}:sign-in:login:{login_hash}",
            f"{self.prefix}:sign-in:client:{client_hash}",
        ]

    async def take(self, redis: Any, keys: Sequence[str]) -> tuple[int, int]:
        """(0, 0) when the attempt may proceed (counted); else (1-based budget spent, seconds
        until it frees)."""
        assert len(keys) == len(self.limits)
        out = await redis.eval(_TAKE_ATTEMPT, len(keys), *keys, self.window_s, *self.limits)
        return int(out[0]), int(out[1])

    async def refund(self, redis: Any, keys: Sequence[str]) -> None:
        await redis.eval(_REFUND_ATTEMPT, len(keys), *keys)
