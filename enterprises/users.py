"""The enterprise API's users: enterprise administrators (JWT role ``enterprise_admin``), each
scoped to one enterprise. The programme creates an enterprise's first administrator
(`tanpuhui enterprise add-admin`); administrators add, list and disable their enterprise's users.

Passwords are kept only as scrypt hashes (kit/passwords.py documents the parameters, shared
with the government users); hashing runs in a worker thread: it must not stall the event loop.

Sign-in answers a short-lived access token and no refresh token (docs/enterprises.md, "API"):
an enterprise console signs in again when it expires. Failed attempts are budgeted in Redis per
login and client, per login, and per client; a success gives its attempt back.

No SQL and no HTTP here: storage is ``users_repository``; callers own the transaction.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Final

from msgspec import Struct

from enterprises import service as registry
from enterprises import users_repository as repo
from enterprises.energy_errors import EnterpriseNotFound
from enterprises.schemas import Enterprise
from enterprises.users_settings import EnterpriseUsersSettings
from kit import passwords
from kit.auth import JwtKeys, Role
from kit.db import Tx
from kit.errors import Conflict, InvalidInput, NotFound, RateLimited, Unauthenticated
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


# --- passwords (kit/passwords.py: scrypt, the decoy, the attempt budgets) ---------------------

PASSWORD_MIN: Final = passwords.PASSWORD_MIN
PASSWORD_MAX: Final = passwords.PASSWORD_MAX
hash_password = passwords.hash_password
password_matches = passwords.password_matches


# --- rules -------------------------------------------------------------------------------------

LOGIN = passwords.LOGIN
NAME_MAX: Final = passwords.NAME_MAX
normalise_login = passwords.normalise_login
_problems = passwords.account_problems


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
    password_hash = await passwords.hash_in_thread(password)
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


def _budget(cfg: EnterpriseUsersSettings) -> passwords.AttemptBudget:
    return passwords.AttemptBudget(
        "enterprise",
        window_s=cfg.sign_in_window_s,
        per_login_client=cfg.failures_per_login_client,
        per_login=cfg.failures_per_login,
        per_client=cfg.failures_per_client,
    )


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
    budget = _budget(cfg)
    keys = budget.keys(
        keyed_hash(privacy, "enterprise-login", login if well_formed else "").hex()[:32],
        keyed_hash(privacy, "ip", client).hex()[:32],
    )
    spent, wait = await budget.take(redis, keys)
    if spent:
        raise SignInRateLimited(
            f"Too many failed sign-ins; try again in {wait} s.", extra={"retry_after_s": wait}
        )
    async with pool.acquire() as conn:
        row = await repo.user_for_sign_in(conn, login) if well_formed else None
    matches = await passwords.matches(row["password_hash"] if row is not None else None, password)
    if row is None or not matches or row["disabled_at"] is not None:
        raise SignInRejected("Unknown login, wrong password or disabled user.")
    await budget.refund(redis, keys)
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
