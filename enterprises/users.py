"""The enterprise API's users: enterprise administrators (JWT role ``enterprise_admin``), each
scoped to one enterprise. The programme creates an enterprise's first administrator
(`tanpuhui enterprise add-admin`); administrators add, list and disable their enterprise's users.

Passwords are kept only as scrypt hashes (``hashlib.scrypt``, RFC 7914): n = 2^15, r = 8,
p = 3, a 16-byte random salt, a 32-byte key; 32 MiB of memory and ~0.5 s of one core per hash
here. OWASP's password storage cheat sheet lists (2^15, 8, 3) among the equivalents of its
minimum (2^17, 8, 1): the same work in a quarter of the memory. The parameters travel in the
stored string (``scrypt$15$8$3$<salt>$<key>``, base64), so raising them later leaves existing
hashes verifiable. Hashing runs in a worker thread: it must not stall the event loop.

Sign-in answers a short-lived access token and no refresh token (docs/enterprises.md, "API"):
an enterprise console signs in again when it expires. Failed attempts are budgeted in Redis per
login and client, per login, and per client; a success gives its attempt back.

No SQL and no HTTP here: storage is ``users_repository``; callers own the transaction.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import re
import secrets
import uuid
from datetime import datetime
from typing import Any, Final

from msgspec import Struct

from enterprises import service as registry
from enterprises import users_repository as repo
from enterprises.energy_errors import EnterpriseNotFound
from enterprises.schemas import Enterprise
from enterprises.users_settings import EnterpriseUsersSettings
from kit.auth import JwtKeys, Role
from kit.db import Tx
from kit.errors import Conflict, FieldError, InvalidInput, NotFound, RateLimited, Unauthenticated
from kit.settings import PrivacySettings
from residents.service import keyed_hash

__all__ = [
    "EnterpriseUsersSettings",
    "LoginTaken",
    "SignInRateLimited",
    "SignInRejected",
    "SignedIn",
    "User",
    "UserDisabled",
    "UserIsSelf",
    "add_first_admin",
    "add_user",
    "caller_scope",
    "disable_user",
    "enterprise_profile",
    "hash_password",
    "password_matches",
    "sign_in",
    "user",
    "users",
]


# --- errors ------------------------------------------------------------------------------------


class SignInRejected(Unauthenticated):
    code = "sign_in_failed"
    title = "Sign-in refused"


class SignInRateLimited(RateLimited):
    code = "sign_in_rate_limited"
    title = "Too many sign-in attempts"


class UserDisabled(Unauthenticated):
    code = "user_disabled"
    title = "User disabled"


class LoginTaken(Conflict):
    code = "login_taken"
    title = "Login already in use"


class UserIsSelf(Conflict):
    code = "user_is_self"
    title = "Cannot disable oneself"


# --- shapes ------------------------------------------------------------------------------------


class User(Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    enterprise_id: uuid.UUID
    login: str
    display_name: str
    created_by: uuid.UUID | None  # None: created by the programme (CLI)
    created_at: datetime
    disabled_at: datetime | None


class SignedIn(Struct, frozen=True, kw_only=True):
    access_token: str
    expires_in: int  # seconds
    user: User


def _user(row: Any) -> User:
    return User(
        id=row["id"],
        enterprise_id=row["enterprise_id"],
        login=row["login"],
        display_name=row["display_name"],
        created_by=row["created_by"],
        created_at=row["created_at"],
        disabled_at=row["disabled_at"],
    )


# --- passwords ---------------------------------------------------------------------------------

SCRYPT_LOG2_N: Final = 15
SCRYPT_R: Final = 8
SCRYPT_P: Final = 3
SALT_BYTES: Final = 16
KEY_BYTES: Final = 32
PASSWORD_MIN: Final = 12
PASSWORD_MAX: Final = 128


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


def _decoy() -> str:
    if not _DECOY:
        _DECOY.append(hash_password(secrets.token_urlsafe(16)))
    return _DECOY[0]


# --- rules -------------------------------------------------------------------------------------

LOGIN = re.compile(r"[a-z0-9][a-z0-9._@-]{2,63}", re.ASCII)
NAME_MAX: Final = 100


def normalise_login(login: str) -> str:
    return login.strip().lower()


def _problems(login: str, display_name: str, password: str) -> list[FieldError]:
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
    if not name or len(name) > NAME_MAX:
        out.append(FieldError(path="display_name", message=f"1 to {NAME_MAX} characters."))
    if not PASSWORD_MIN <= len(password) <= PASSWORD_MAX or not _encodable(password):
        out.append(
            FieldError(
                path="password",
                message=f"{PASSWORD_MIN} to {PASSWORD_MAX} characters (Unicode text).",
            )
        )
    return out


def _encodable(text: str) -> bool:
    """Whether ``text`` is Unicode text (JSON may carry a lone surrogate, which UTF-8 cannot)."""
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


async def add_user(
    tx: Tx,
    enterprise_id: uuid.UUID,
    *,
    login: str,
    display_name: str,
    password: str,
    created_by: uuid.UUID | None,
) -> User:
    """Add a user to an enterprise; ``validation_failed`` naming the fields that break a rule,
    ``login_taken`` when the login is anyone's already (the unique index decides)."""
    login = normalise_login(login)
    problems = _problems(login, display_name, password)
    if problems:
        raise InvalidInput(
            f"User: {len(problems)} field(s) refused.", code="validation_failed", errors=problems
        )
    password_hash = await asyncio.to_thread(hash_password, password)
    try:
        row = await repo.insert_user(
            tx,
            enterprise_id=enterprise_id,
            login=login,
            display_name=" ".join(display_name.split()),
            password_hash=password_hash,
            created_by=created_by,
        )
    except repo.LoginExists:
        raise LoginTaken(f"The login {login!r} is already in use.") from None
    return _user(row)


async def add_first_admin(
    tx: Tx, credit_code: str, *, login: str, display_name: str, password: str
) -> User:
    """The programme administrator's way in for an enterprise (the CLI): an administrator of
    the enterprise registered under ``credit_code``."""
    found = await registry.enterprises_by_credit_code(tx.conn, [credit_code])
    if credit_code not in found:
        raise NotFound(f"No enterprise is registered under credit code {credit_code}.")
    return await add_user(
        tx,
        found[credit_code].id,
        login=login,
        display_name=display_name,
        password=password,
        created_by=None,
    )


async def enterprise_profile(conn: Any, enterprise_id: uuid.UUID) -> Enterprise:
    """The registry's row of the enterprise (``enterprise_not_found`` when there is none)."""
    found = await repo.enterprise(conn, enterprise_id)
    if found is None:
        raise EnterpriseNotFound("No such enterprise.")
    return found


async def user(conn: Any, enterprise_id: uuid.UUID, user_id: uuid.UUID) -> User:
    """One user of the enterprise (``not_found`` when the enterprise has no such user)."""
    row = await repo.user_by_id(conn, enterprise_id, user_id)
    if row is None:
        raise NotFound("No such user in this enterprise.")
    return _user(row)


async def users(conn: Any, enterprise_id: uuid.UUID) -> list[User]:
    """The enterprise's users, oldest first (disabled ones included, marked)."""
    return [_user(r) for r in await repo.users_of(conn, enterprise_id)]


async def disable_user(
    tx: Tx, enterprise_id: uuid.UUID, user_id: uuid.UUID, *, by: uuid.UUID
) -> User:
    """Disable a user of the enterprise: its tokens are refused from the next request on.
    Disabling a disabled user changes nothing; disabling oneself is ``user_is_self`` (an
    enterprise keeps at least the administrator who acts)."""
    if user_id == by:
        raise UserIsSelf("An administrator cannot disable their own user.")
    row = await repo.disable_user(tx, enterprise_id, user_id)
    if row is None:
        raise NotFound("No such user in this enterprise.")
    return _user(row)


# --- sign-in and the guard's check -------------------------------------------------------------


async def sign_in(
    pool: Any,
    redis: Any,
    cfg: EnterpriseUsersSettings,
    privacy: PrivacySettings,
    jwt: JwtKeys,
    *,
    login: str,
    password: str,
    client: str,
) -> SignedIn:
    """A token for the user of ``login`` and ``password``. Unknown login, wrong password and
    disabled user are one answer (``sign_in_failed``), so the answer tells no one which logins
    exist; a spent attempt budget is ``sign_in_rate_limited`` with the seconds to wait."""
    login = normalise_login(login)
    well_formed = LOGIN.fullmatch(login) is not None
    # A login that breaks the rule exists nowhere: all such attempts share one budget.
    keys = repo.attempt_keys(
        keyed_hash(privacy, "enterprise-login", login if well_formed else "").hex()[:32],
        keyed_hash(privacy, "ip", client).hex()[:32],
    )
    spent, wait = await repo.take_attempt(
        redis,
        keys,
        cfg.sign_in_window_s,
        [cfg.failures_per_login_client, cfg.failures_per_login, cfg.failures_per_client],
    )
    if spent:
        raise SignInRateLimited(
            f"Too many failed sign-ins; try again in {wait} s.", extra={"retry_after_s": wait}
        )
    async with pool.acquire() as conn:
        row = await repo.user_for_sign_in(conn, login) if well_formed else None
    stored = row["password_hash"] if row is not None else _decoy()
    matches = _encodable(password) and await asyncio.to_thread(password_matches, stored, password)
    if row is None or not matches or row["disabled_at"] is not None:
        raise SignInRejected("Unknown login, wrong password or disabled user.")
    await repo.refund_attempt(redis, keys)
    user = _user(row)
    token = jwt.issue(
        str(user.id),
        Role.ENTERPRISE_ADMIN,
        cfg.token_ttl_s,
        extra={"typ": "access", "ent": str(user.enterprise_id)},
    )
    return SignedIn(access_token=token, expires_in=cfg.token_ttl_s, user=user)


async def caller_scope(conn: Any, user_id: str) -> uuid.UUID:
    """The enterprise an enterprise administrator's token acts for, read on every request (so
    disabling a user takes effect at once): ``user_disabled`` for a disabled or unknown user."""
    row = await repo.user_scope(conn, user_id)
    if row is None or row["disabled_at"] is not None:
        raise UserDisabled("This user is disabled; its tokens are no longer accepted.")
    enterprise_id: uuid.UUID = row["enterprise_id"]
    return enterprise_id
