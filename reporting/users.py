"""Government users: analysts (JWT role ``gov_analyst``: read the reports) and administrators
(``gov_admin``: administer the programme). The first administrator is created on the server by
`tanpuhui admin add-user`; administrators create further users through the admin API.

Sign-in is two factors: a password (scrypt, kit/passwords.py) and a TOTP code (RFC 6238, 30-s
steps, six digits, HMAC-SHA1: what every authenticator app speaks; pyotp computes it). The TOTP
secret is made on the server when the user is created, shown once as an ``otpauth://`` URI (a QR
code for the app), and stored sealed (kit/cipher.py). A code is accepted within
``totp_drift_steps`` steps of the server's clock, and each step only once: the step of the code
accepted is recorded and an equal or earlier one is refused, so a code seen over a shoulder or
in a log cannot be replayed inside its window. docs/government.md gives the reasons.

Unknown login, wrong password, wrong or replayed code and disabled user are one answer
(``sign_in_rejected``), at the same cost (the decoy hash), so the answer tells no one which
logins exist or which factor failed. Failed attempts are budgeted in Redis per login and client,
per login, and per client; a success gives its attempt back.

Every change made by an administrator is written to the audit log (reporting/audit.py) in the
transaction that makes it. No SQL and no HTTP here: storage is ``users_repository``.
"""

from __future__ import annotations

import hmac
import time
import uuid
from datetime import UTC, datetime
from typing import Any, Final, Literal

import pyotp
from msgspec import Struct

from kit import passwords
from kit.auth import JwtKeys, Role
from kit.cipher import SecretBox
from kit.db import Tx
from kit.errors import Conflict, FieldError, InvalidInput, NotFound, RateLimited, Unauthenticated
from kit.settings import PrivacySettings
from reporting import audit
from reporting import users_repository as repo
from reporting.users_settings import GovUsersSettings
from residents.service import keyed_hash

__all__ = [
    "GOV_ROLES",
    "GovLastAdmin",
    "GovLoginTaken",
    "GovRole",
    "GovRoleChanged",
    "GovSession",
    "GovSignInRateLimited",
    "GovSignInRejected",
    "GovUser",
    "GovUserDisabled",
    "GovUserNotFound",
    "GovUsersSettings",
    "NewGovUser",
    "active_user",
    "add_user",
    "set_disabled",
    "set_role",
    "sign_in",
    "user",
    "users",
]

GovRole = Literal["gov_analyst", "gov_admin"]
GOV_ROLES: Final = {"gov_analyst": Role.GOV_ANALYST, "gov_admin": Role.GOV_ADMIN}
TOTP_STEP_S: Final = 30
TOTP_DIGITS: Final = 6


# --- errors ------------------------------------------------------------------------------------


class GovSignInRejected(Unauthenticated):
    code = "sign_in_rejected"
    title = "Sign-in refused"


class GovSignInRateLimited(RateLimited):
    code = "gov_sign_in_rate_limited"
    title = "Too many sign-in attempts"


class GovUserDisabled(Unauthenticated):
    code = "gov_user_disabled"
    title = "User disabled"


class GovRoleChanged(Unauthenticated):
    code = "gov_role_changed"
    title = "Role changed"


class GovLoginTaken(Conflict):
    code = "gov_login_taken"
    title = "Login already in use"


class GovUserNotFound(NotFound):
    code = "gov_user_not_found"
    title = "No such government user"


class GovLastAdmin(Conflict):
    code = "gov_last_admin"
    title = "The last administrator"


# --- shapes ------------------------------------------------------------------------------------


class GovUser(Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    login: str
    display_name: str
    role: GovRole
    created_by: uuid.UUID | None  # None: created by the programme's CLI
    created_at: datetime
    disabled_at: datetime | None


class NewGovUser(Struct, frozen=True, kw_only=True):
    """A user just created, with its second factor's secret: shown once, never again."""

    user: GovUser
    totp_secret: str  # base32
    totp_uri: str  # otpauth://totp/... for an authenticator app (a QR code)


class GovSession(Struct, frozen=True, kw_only=True):
    access_token: str
    token_type: Literal["Bearer"] = "Bearer"  # noqa: S105 (a scheme name, not a secret)
    role: GovRole
    expires_at: datetime


def _user(row: Any) -> GovUser:
    return GovUser(
        id=row["id"],
        login=row["login"],
        display_name=row["display_name"],
        role=row["role"],
        created_by=row["created_by"],
        created_at=row["created_at"],
        disabled_at=row["disabled_at"],
    )


def _context(user_id: uuid.UUID) -> str:
    return f"gov_users:{user_id}"


def _uri(cfg: GovUsersSettings, login: str, secret: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=login, issuer_name=cfg.totp_issuer)


# --- administration ----------------------------------------------------------------------------


async def add_user(
    tx: Tx,
    cfg: GovUsersSettings,
    privacy: PrivacySettings,
    *,
    login: str,
    display_name: str,
    role: str,
    password: str,
    actor: str,
) -> NewGovUser:
    """Create a government user with a fresh TOTP secret; ``validation_failed`` naming the
    fields that break a rule, ``gov_login_taken`` when the login is in use. ``actor`` is the
    administrator's id (``created_by``) or ``cli:<user>`` (no creator recorded)."""
    login = passwords.normalise_login(login)
    problems = passwords.account_problems(login, display_name, password)
    if role not in GOV_ROLES:
        problems.append(FieldError(path="role", message="One of: gov_analyst, gov_admin."))
    if problems:
        raise InvalidInput(
            f"User: {len(problems)} field(s) refused.", code="validation_failed", errors=problems
        )
    user_id = uuid.uuid4()
    secret = pyotp.random_base32()
    sealed = SecretBox.from_settings(privacy).seal(secret, context=_context(user_id))
    try:
        row = await repo.insert_user(
            tx,
            user_id=user_id,
            login=login,
            display_name=" ".join(display_name.split()),
            role=role,
            password_hash=await passwords.hash_in_thread(password),
            totp_secret=sealed,
            created_by=None if actor.startswith("cli:") else uuid.UUID(actor),
        )
    except repo.LoginExists:
        raise GovLoginTaken(f"The login {login!r} is already in use.") from None
    created = _user(row)
    await audit.record(tx, actor=actor, action="gov_user.add", target=str(user_id), after=created)
    return NewGovUser(user=created, totp_secret=secret, totp_uri=_uri(cfg, login, secret))


async def user(conn: Any, user_id: uuid.UUID) -> GovUser:
    row = await repo.user_by_id(conn, user_id)
    if row is None:
        raise GovUserNotFound("No government user of that id.")
    return _user(row)


async def users(conn: Any) -> list[GovUser]:
    """Every government user, oldest first (disabled ones included, marked)."""
    return [_user(r) for r in await repo.all_users(conn)]


async def _keep_an_admin(tx: Tx, before: GovUser, *, losing: bool) -> None:
    """Refuse a change that would leave no active administrator (the programme could then only
    be administered again from the server's shell)."""
    if not losing or before.role != "gov_admin" or before.disabled_at is not None:
        return
    if await repo.count_active_admins(tx.conn) <= 1:
        raise GovLastAdmin("This is the last active administrator: add another one first.")


async def set_disabled(tx: Tx, user_id: uuid.UUID, disabled: bool, *, actor: str) -> GovUser:
    """Disable (tokens refused from the next request on) or enable a user. Disabling the last
    active administrator is ``gov_last_admin``; an administrator cannot disable themself."""
    if disabled and actor == str(user_id):
        raise GovLastAdmin("An administrator cannot disable their own user.")
    await repo.lock_admins(tx)
    row = await repo.lock_user(tx, user_id)
    if row is None:
        raise GovUserNotFound("No government user of that id.")
    before = _user(row)
    await _keep_an_admin(tx, before, losing=disabled)
    after = _user(await repo.set_disabled(tx, user_id, disabled))
    if after != before:
        action = "gov_user.disable" if disabled else "gov_user.enable"
        await audit.record(
            tx, actor=actor, action=action, target=str(user_id), before=before, after=after
        )
    return after


async def set_role(tx: Tx, user_id: uuid.UUID, role: str, *, actor: str) -> GovUser:
    """Change a user's role (its tokens of the old role are refused from the next request)."""
    if role not in GOV_ROLES:
        raise InvalidInput(
            "role: one of gov_analyst, gov_admin.",
            code="validation_failed",
            errors=[FieldError(path="role", message="One of: gov_analyst, gov_admin.")],
        )
    await repo.lock_admins(tx)
    row = await repo.lock_user(tx, user_id)
    if row is None:
        raise GovUserNotFound("No government user of that id.")
    before = _user(row)
    await _keep_an_admin(tx, before, losing=role != "gov_admin")
    after = _user(await repo.set_role(tx, user_id, role))
    if after != before:
        await audit.record(
            tx, actor=actor, action="gov_user.role", target=str(user_id), before=before, after=after
        )
    return after


# --- sign-in and the guard's check -------------------------------------------------------------


def _budget(cfg: GovUsersSettings) -> passwords.AttemptBudget:
    return passwords.AttemptBudget(
        "gov",
        window_s=cfg.sign_in_window_s,
        per_login_client=cfg.failures_per_login_client,
        per_login=cfg.failures_per_login,
        per_client=cfg.failures_per_client,
    )


def totp_step(secret: str, code: str, *, drift: int, now: float) -> int | None:
    """The time step (RFC 6238's T) within ``drift`` steps of ``now`` whose code is ``code``,
    latest first; None when there is none. Every candidate is compared (constant time each)."""
    if len(code) != TOTP_DIGITS or not code.isascii() or not code.isdigit():
        return None
    totp = pyotp.TOTP(secret, digits=TOTP_DIGITS, interval=TOTP_STEP_S)
    current = int(now) // TOTP_STEP_S
    found = None
    for step in range(current + drift, current - drift - 1, -1):
        if hmac.compare_digest(totp.generate_otp(step), code) and found is None:
            found = step
    return found


async def sign_in(
    pool: Any,
    redis: Any,
    cfg: GovUsersSettings,
    privacy: PrivacySettings,
    jwt: JwtKeys,
    *,
    login: str,
    password: str,
    totp: str,
    client: str,
    now: float | None = None,
) -> GovSession:
    """An access token for the user of ``login``, ``password`` and a fresh ``totp`` code."""
    login = passwords.normalise_login(login)
    well_formed = passwords.LOGIN.fullmatch(login) is not None
    budget = _budget(cfg)
    # A login that breaks the rule exists nowhere: all such attempts share one budget.
    keys = budget.keys(
        keyed_hash(privacy, "gov-login", login if well_formed else "").hex()[:32],
        keyed_hash(privacy, "ip", client).hex()[:32],
    )
    spent, wait = await budget.take(redis, keys)
    if spent:
        raise GovSignInRateLimited(
            f"Too many failed sign-ins; try again in {wait} s.", extra={"retry_after_s": wait}
        )
    rejected = GovSignInRejected("Unknown login, wrong password or code, or disabled user.")
    # No pooled connection is held while the password is hashed (~0.5 s of a worker thread).
    async with pool.acquire() as conn:
        row = await repo.user_for_sign_in(conn, login) if well_formed else None
    matches = await passwords.matches(row["password_hash"] if row is not None else None, password)
    if row is None or not matches or row["disabled_at"] is not None:
        raise rejected
    secret = SecretBox.from_settings(privacy).open(row["totp_secret"], context=_context(row["id"]))
    at = time.time() if now is None else now
    drift = cfg.totp_drift_steps
    step = None if secret is None else totp_step(secret, totp, drift=drift, now=at)
    if step is None or step <= row["totp_last_step"]:
        raise rejected
    async with pool.acquire() as conn:
        if not await repo.take_totp_step(conn, row["id"], step):
            raise rejected  # the same code, used by a concurrent sign-in
    await budget.refund(redis, keys)
    role: GovRole = row["role"]
    issued = int(at)
    token = jwt.issue(
        str(row["id"]), GOV_ROLES[role], cfg.token_ttl_s, extra={"typ": "access"}, now=issued
    )
    return GovSession(
        access_token=token,
        role=role,
        expires_at=datetime.fromtimestamp(issued + cfg.token_ttl_s, UTC),
    )


async def active_user(conn: Any, user_id: str, role: Role) -> None:
    """The guard's check of every government request: the token's user still exists, is
    enabled, and still has the token's role (``gov_user_disabled``, ``gov_role_changed``)."""
    row = await repo.user_state(conn, user_id)
    if row is None or row["disabled_at"] is not None:
        raise GovUserDisabled("This user is disabled; its tokens are no longer accepted.")
    if GOV_ROLES.get(row["role"]) != role:
        raise GovRoleChanged("This user's role has changed: sign in again.")
