"""Authentication building blocks: JWTs with key ids and rotation, role guards, and operators'
HMAC request signatures with replay protection.

Everything here is checked *before* a request body is decoded: guards read only headers; an
operator route checks the signature headers before it reads a byte of the body, then verifies the
signature over the raw bytes before msgspec sees them.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from enum import StrEnum
from typing import Any

import jwt
import msgspec

from kit.errors import Forbidden, Unauthenticated
from kit.settings import AuthSettings, parse_jwt_keys


class Role(StrEnum):
    RESIDENT = "resident"
    OPERATOR = "operator"
    ENTERPRISE_ADMIN = "enterprise_admin"
    GOV_ANALYST = "gov_analyst"
    GOV_ADMIN = "gov_admin"


class Principal(msgspec.Struct, frozen=True):
    """Who is calling: the token's subject, role and id (``jti``)."""

    subject: str
    role: Role
    token_id: str
    expires_at: int
    claims: dict[str, Any] = msgspec.field(default_factory=dict)


class JwtKeys:
    """HS256 keys by key id. The first key signs; every key verifies (rotation)."""

    ALGORITHM = "HS256"

    def __init__(self, keys: list[tuple[str, str]], issuer: str = "tanpuhui") -> None:
        if not keys:
            raise ValueError("at least one JWT key is required")
        self._keys = dict(keys)
        self.active_kid = keys[0][0]
        self.issuer = issuer

    @classmethod
    def from_settings(cls, settings: AuthSettings) -> JwtKeys:
        if settings.jwt_keys:
            return cls(parse_jwt_keys(settings.jwt_keys), settings.jwt_issuer)
        return cls(
            [("dev-" + secrets.token_hex(4), secrets.token_urlsafe(32))], settings.jwt_issuer
        )

    def issue(
        self,
        subject: str,
        role: Role,
        ttl_s: int,
        *,
        extra: Mapping[str, Any] | None = None,
        now: float | None = None,
        token_id: str | None = None,
    ) -> str:
        issued = int(time.time() if now is None else now)
        payload: dict[str, Any] = {
            "iss": self.issuer,
            "sub": subject,
            "role": role.value,
            "iat": issued,
            "exp": issued + ttl_s,
            "jti": token_id or uuid.uuid4().hex,
        }
        if extra:
            payload.update(extra)
        return jwt.encode(
            payload,
            self._keys[self.active_kid],
            algorithm=self.ALGORITHM,
            headers={"kid": self.active_kid},
        )

    def verify(self, token: str, *, now: float | None = None) -> Principal:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise Unauthenticated("The token is malformed.", code="token_invalid") from None
        kid = header.get("kid")
        key = self._keys.get(kid) if isinstance(kid, str) else None
        if key is None or header.get("alg") != self.ALGORITHM:
            raise Unauthenticated("The token's key is unknown.", code="token_invalid")
        try:
            claims = _decode_at(token, key, self.issuer, time.time() if now is None else now)
        except jwt.ExpiredSignatureError:
            raise Unauthenticated("The token has expired.", code="token_expired") from None
        except jwt.PyJWTError:
            raise Unauthenticated("The token is not valid.", code="token_invalid") from None
        try:
            role = Role(str(claims.get("role")))
        except ValueError:
            raise Unauthenticated(
                "The token carries no known role.", code="token_invalid"
            ) from None
        return Principal(
            subject=str(claims["sub"]),
            role=role,
            token_id=str(claims["jti"]),
            expires_at=int(claims["exp"]),
            claims=claims,
        )


def _decode_at(token: str, key: str, issuer: str, now: float) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(
        token,
        key,
        algorithms=[JwtKeys.ALGORITHM],
        issuer=issuer,
        options={"require": ["exp", "iat", "sub", "jti"], "verify_exp": False, "verify_iat": False},
    )
    if int(claims["exp"]) <= now:
        raise jwt.ExpiredSignatureError("expired")
    return claims


def bearer_token(authorization: str | None) -> str:
    if not authorization:
        raise Unauthenticated("Send `Authorization: Bearer <token>`.", code="token_missing")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("Send `Authorization: Bearer <token>`.", code="token_missing")
    return token.strip()


def require_role(principal: Principal, *roles: Role) -> Principal:
    if principal.role not in roles:
        raise Forbidden(
            f"This needs one of the roles: {', '.join(r.value for r in roles)}.",
            code="role_required",
        )
    return principal


# --- operator request signatures -------------------------------------------------------------

SIGNATURE_HEADERS = ("x-operator-id", "x-key-id", "x-timestamp", "x-nonce", "x-signature")
NONCE_TTL_S = 900

# Each header is plain ASCII of a bounded length, checked before anything else reads it: a value
# that is not (a superscript digit, 5,000 digits, a non-ASCII signature) is `signature_invalid`,
# never an exception further down. `fullmatch` with explicit classes: `\d` and `$` would let
# Unicode digits and a trailing newline through.
_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_SIGNATURE = re.compile(r"[0-9a-fA-F]{64}")
_IDENT = re.compile(r"[!-~]{1,64}")  # visible ASCII: operator ids and key ids
_NONCE = re.compile(r"[!-~]{8,128}")
_FORMATS = (
    ("x-operator-id", _IDENT, "X-Operator-Id must be 1 to 64 visible ASCII characters."),
    ("x-key-id", _IDENT, "X-Key-Id must be 1 to 64 visible ASCII characters."),
    ("x-timestamp", _TIMESTAMP, "X-Timestamp must be Unix seconds (ASCII digits)."),
    ("x-nonce", _NONCE, "X-Nonce must be 8 to 128 visible ASCII characters."),
    ("x-signature", _SIGNATURE, "X-Signature must be 64 hexadecimal characters."),
)


def canonical_request(
    method: str, path: str, timestamp: str, nonce: str, body: bytes, *, body_sha256: str = ""
) -> bytes:
    """The signed string: method, path (with query), timestamp, nonce and body SHA-256, by LF.

    ``path`` is the request target exactly as sent on the request line: the raw path with its
    percent-encoding untouched, then ``?`` and the raw query string when there is one.
    ``body_sha256``: the body's digest (hex) when the caller hashed it as it arrived and does
    not hold it (a daily file spooled to disk); ``body`` is then ignored."""
    digest = body_sha256 or hashlib.sha256(body).hexdigest()
    return "\n".join((method.upper(), path, timestamp, nonce, digest)).encode()


def sign_request(
    secret: str,
    method: str,
    path: str,
    body: bytes,
    *,
    timestamp: int | None = None,
    nonce: str | None = None,
    operator_id: str,
    key_id: str,
) -> dict[str, str]:
    """The headers an operator sends (also used by tests, the load generator and docs)."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    n = nonce or secrets.token_hex(16)
    mac = hmac.new(secret.encode(), canonical_request(method, path, ts, n, body), hashlib.sha256)
    return {
        "X-Operator-Id": operator_id,
        "X-Key-Id": key_id,
        "X-Timestamp": ts,
        "X-Nonce": n,
        "X-Signature": mac.hexdigest(),
    }


class SignedCaller(msgspec.Struct, frozen=True):
    operator_id: str
    key_id: str


class SignatureHeaders(msgspec.Struct, frozen=True):
    """The signature headers of a request, well-formed and within the clock window (not yet
    verified: that needs the body and the key)."""

    operator_id: str
    key_id: str
    timestamp: str
    nonce: str
    signature: str


KeyLookup = Callable[[str, str], Awaitable[str | None]]


def check_signature_headers(
    headers: Mapping[str, str], *, skew_s: int = 300, now: float | None = None
) -> SignatureHeaders:
    """The cheap half of the check, run before any byte of the body is read: every header
    present and well-formed, the timestamp within ``skew_s``. Raises ``Unauthenticated``."""
    values = {h: headers.get(h) for h in SIGNATURE_HEADERS}
    missing = [h for h, v in values.items() if not v]
    if missing:
        raise Unauthenticated(
            f"Missing signature headers: {', '.join(missing)}.", code="signature_missing"
        )
    for header, pattern, message in _FORMATS:
        if not pattern.fullmatch(str(values[header])):
            raise Unauthenticated(message, code="signature_invalid")
    operator_id, key_id, ts, nonce, signature = (str(values[h]) for h in SIGNATURE_HEADERS)
    current = time.time() if now is None else now
    if abs(current - int(ts)) > skew_s:
        raise Unauthenticated(
            f"X-Timestamp is more than {skew_s} s away from the server's clock.",
            code="signature_stale",
        )
    return SignatureHeaders(operator_id, key_id, ts, nonce, signature.lower())


async def verify_signed(
    signed: SignatureHeaders,
    *,
    method: str,
    path: str,
    body: bytes,
    lookup_secret: KeyLookup,
    redis: Any,
    body_sha256: str = "",
) -> SignedCaller:
    """The second half, once the body is read: the key, the HMAC, then the nonce
    (``body_sha256``: see :func:`canonical_request`).

    The nonce is remembered in Redis (``SET NX``) only after the MAC checks out, so a forger
    cannot burn an operator's nonces; a replay of a valid request fails with ``signature_replayed``.
    """
    secret = await lookup_secret(signed.operator_id, signed.key_id)
    if secret is None:
        raise Unauthenticated("Unknown operator or signing key.", code="signature_invalid")
    expected = hmac.new(
        secret.encode(),
        canonical_request(
            method, path, signed.timestamp, signed.nonce, body, body_sha256=body_sha256
        ),
        hashlib.sha256,
    ).hexdigest()
    if not hmac.compare_digest(expected, signed.signature):
        raise Unauthenticated("The signature does not match the request.", code="signature_invalid")
    key = f"nonce:{signed.operator_id}:{signed.nonce}"
    if not await redis.set(key, b"1", nx=True, ex=NONCE_TTL_S):
        raise Unauthenticated("This nonce was already used.", code="signature_replayed")
    return SignedCaller(operator_id=signed.operator_id, key_id=signed.key_id)


async def verify_signature(
    *,
    method: str,
    path: str,
    headers: Mapping[str, str],
    body: bytes,
    lookup_secret: KeyLookup,
    redis: Any,
    skew_s: int = 300,
    now: float | None = None,
) -> SignedCaller:
    """Both halves at once (:func:`check_signature_headers`, then :func:`verify_signed`), for a
    caller that already holds the body; raises ``Unauthenticated``."""
    signed = check_signature_headers(headers, skew_s=skew_s, now=now)
    return await verify_signed(
        signed, method=method, path=path, body=body, lookup_secret=lookup_secret, redis=redis
    )
