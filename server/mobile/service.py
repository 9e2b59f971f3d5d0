"""The rules of the residents' mobile API: sign-in, tokens, personal data, reads and activities.

No SQL strings and no Litestar here: storage goes through ``repository``, HTTP stays in
``routes``. Callers own the transaction (``Tx``) and pass Redis, settings and JWT keys in.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec

from server.auth import JwtKeys, Role
from server.db import Tx
from server.errors import IdempotencyConflict
from server.mobile import repository as repo
from server.mobile.errors import (
    AccountGone,
    BadDistrict,
    CodeAttemptsExceeded,
    CodeRejected,
    RefreshRejected,
    SmsRateLimited,
)
from server.mobile.schemas import (
    Profile,
    SmsCodeSent,
    TokenPair,
)
from server.mobile.sms import gateway_from_settings
from server.settings import Settings

log = logging.getLogger("tanpuhui.mobile")

# Public on purpose: used only when TANPUHUI_PRIVACY_PHONE_HASH_KEY is unset, which `prod` refuses.
DEV_PHONE_HASH_KEY = "tanpuhui-dev-phone-hash-key-not-secret"
_PHONE = re.compile(r"^(?:\+?86)?(1[3-9]\d{9})$")


# --- personal data -------------------------------------------------------------------------


def normalise_phone(phone: str) -> str:
    match = _PHONE.match(phone.strip())
    if match is None:  # the schema's pattern already refused it
        raise CodeRejected("Not a mainland mobile number.", code="validation_failed")
    return match.group(1)


def mask_phone(phone: str) -> str:
    return f"{phone[:3]}****{phone[-4:]}"


def keyed_hash(settings: Settings, purpose: str, value: str) -> bytes:
    """HMAC-SHA256 under the privacy key: the only form in which phones and openids are kept."""
    key = (settings.privacy.phone_hash_key or DEV_PHONE_HASH_KEY).encode()
    return hmac.new(key, f"{purpose}:{value}".encode(), hashlib.sha256).digest()


def check_district(settings: Settings, district_code: str | None) -> None:
    if district_code is None:
        return
    prefix = settings.region_code.rstrip("0")
    prefix = prefix + "0" * (len(prefix) % 2)  # whole GB/T 2260 levels: 44, 4403, 440305
    if not district_code.startswith(prefix) or district_code == settings.region_code:
        raise BadDistrict(f"District {district_code} is not inside region {settings.region_code}.")


# --- SMS codes -----------------------------------------------------------------------------


async def send_code(redis: Any, settings: Settings, phone_raw: str, client_ip: str) -> SmsCodeSent:
    phone = normalise_phone(phone_raw)
    sms = settings.sms
    phone_hmac = keyed_hash(settings, "phone", phone)
    ip_hash = keyed_hash(settings, "ip", client_ip).hex()[:32]
    (phone_count, phone_ttl), (ip_count, ip_ttl) = await repo.hit_windows(
        redis,
        [
            (f"mobile:sms:rl:phone:{phone_hmac.hex()}", 3600),
            (f"mobile:sms:rl:ip:{ip_hash}", 3600),
        ],
    )
    if phone_count > sms.per_phone_per_hour or ip_count > sms.per_ip_per_hour:
        wait = phone_ttl if phone_count > sms.per_phone_per_hour else ip_ttl
        raise SmsRateLimited(
            "Too many codes requested; try again later.", extra={"retry_after_s": max(wait, 1)}
        )
    wait = await repo.claim_resend_slot(redis, phone_hmac, sms.resend_interval_s)
    if wait:
        raise SmsRateLimited(
            f"A code was just sent; wait {wait} s before asking again.",
            extra={"retry_after_s": wait},
        )
    code = f"{secrets.randbelow(1_000_000):06d}"
    await repo.store_code(
        redis, phone_hmac, keyed_hash(settings, "sms-code", phone + code), sms.code_ttl_s
    )
    masked = mask_phone(phone)
    await gateway_from_settings(sms).send_code(phone, masked, code, sms.code_ttl_s)
    return SmsCodeSent(
        phone_masked=masked, ttl_s=sms.code_ttl_s, resend_after_s=sms.resend_interval_s
    )


async def check_code(redis: Any, settings: Settings, phone: str, code: str) -> None:
    """Accept the code once; wrong guesses count, and the code dies after the last allowed one."""
    phone_hmac = keyed_hash(settings, "phone", phone)
    stored, attempts = await repo.count_attempt(redis, phone_hmac)
    if stored is None:
        raise CodeRejected("No valid code for this number; ask for a new one.")
    if attempts > settings.sms.max_attempts:
        await repo.drop_code(redis, phone_hmac)
        raise CodeAttemptsExceeded("Too many wrong codes; ask for a new one.")
    expected = keyed_hash(settings, "sms-code", phone + code)
    if not hmac.compare_digest(stored, expected):
        if attempts >= settings.sms.max_attempts:
            await repo.drop_code(redis, phone_hmac)
            raise CodeAttemptsExceeded("Too many wrong codes; ask for a new one.")
        raise CodeRejected(
            "Wrong code.", extra={"attempts_left": settings.sms.max_attempts - attempts}
        )
    if not await repo.drop_code(redis, phone_hmac):
        raise CodeRejected("This code was already used; ask for a new one.")


# --- sign-in and tokens --------------------------------------------------------------------


def _refresh_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


async def _issue_pair(
    tx: Tx,
    settings: Settings,
    jwt: JwtKeys,
    resident_id: uuid.UUID,
    family_id: uuid.UUID,
    *,
    new_account: bool = False,
) -> TokenPair:
    auth = settings.auth
    refresh = secrets.token_urlsafe(32)
    expires = datetime.now(UTC) + timedelta(seconds=auth.refresh_ttl_s)
    await repo.store_refresh(tx, _refresh_hash(refresh), family_id, expires)
    access = jwt.issue(
        str(resident_id),
        Role.RESIDENT,
        auth.access_ttl_s,
        extra={"typ": "access", "fam": str(family_id)},
    )
    return TokenPair(
        access_token=access,
        expires_in=auth.access_ttl_s,
        refresh_token=refresh,
        refresh_expires_in=auth.refresh_ttl_s,
        resident_id=str(resident_id),
        new_account=new_account,
    )


async def _start_session(
    tx: Tx, settings: Settings, jwt: JwtKeys, resident_id: uuid.UUID, new_account: bool
) -> TokenPair:
    family = uuid.uuid4()
    await repo.create_family(tx, family, resident_id)
    log.info("resident signed in", extra={"resident_id": str(resident_id), "new": new_account})
    return await _issue_pair(tx, settings, jwt, resident_id, family, new_account=new_account)


async def sign_in_with_code(
    tx: Tx,
    redis: Any,
    settings: Settings,
    jwt: JwtKeys,
    phone_raw: str,
    code: str,
    district_code: str | None,
) -> TokenPair:
    phone = normalise_phone(phone_raw)
    check_district(settings, district_code)
    await check_code(redis, settings, phone, code)
    phone_hmac = keyed_hash(settings, "phone", phone)
    await repo.lock_identity(tx, phone_hmac)
    resident = await repo.resident_by_phone(tx, phone_hmac)
    new = resident is None
    if resident is None:
        resident = await repo.create_resident(
            tx,
            district_code=district_code,
            phone_hmac=phone_hmac,
            phone_masked=mask_phone(phone),
            openid_hmac=None,
        )
    return await _start_session(tx, settings, jwt, resident, new)


async def sign_in_with_openid(
    tx: Tx, settings: Settings, jwt: JwtKeys, openid: str, district_code: str | None
) -> TokenPair:
    check_district(settings, district_code)
    openid_hmac = keyed_hash(settings, "wechat-openid", openid)
    await repo.lock_identity(tx, openid_hmac)
    resident = await repo.resident_by_openid(tx, openid_hmac)
    new = resident is None
    if resident is None:
        resident = await repo.create_resident(
            tx,
            district_code=district_code,
            phone_hmac=None,
            phone_masked=None,
            openid_hmac=openid_hmac,
        )
    return await _start_session(tx, settings, jwt, resident, new)


class RefreshOutcome(msgspec.Struct):
    pair: TokenPair | None = None
    error: RefreshRejected | None = None


async def refresh(tx: Tx, settings: Settings, jwt: JwtKeys, token: str) -> RefreshOutcome:
    """Rotate a refresh token. A token presented after its rotation is a stolen copy (or the
    original after the copy was used): the whole family is revoked. The revocation must be
    committed, so a refusal is returned, not raised; the caller raises after commit."""
    token_hash = _refresh_hash(token)
    row = await repo.refresh_for_update(tx, token_hash)
    if row is None or row["revoked_at"] is not None:
        return RefreshOutcome(error=RefreshRejected("Unknown or revoked refresh token."))
    if row["rotated_at"] is not None:
        await repo.revoke_family(tx, row["family_id"], "reuse_detected")
        log.warning(
            "refresh token reused; family revoked",
            extra={"resident_id": str(row["resident_id"]), "family_id": str(row["family_id"])},
        )
        return RefreshOutcome(
            error=RefreshRejected(
                "This refresh token was already used; every session token of this sign-in is "
                "revoked. Sign in again.",
                code="refresh_reused",
            )
        )
    if row["expires_at"] <= datetime.now(UTC):
        return RefreshOutcome(error=RefreshRejected("The refresh token has expired."))
    if await repo.active_resident(tx.conn, str(row["resident_id"])) is None:
        return RefreshOutcome(error=RefreshRejected("Unknown or revoked refresh token."))
    await repo.mark_rotated(tx, token_hash)
    pair = await _issue_pair(tx, settings, jwt, row["resident_id"], row["family_id"])
    return RefreshOutcome(pair=pair)


async def sign_out(tx: Tx, family_id: str | None) -> None:
    if family_id:
        await repo.revoke_family(tx, family_id, "signed_out")


# --- the resident --------------------------------------------------------------------------


async def resident_row(conn: Any, resident_id: str) -> Any:
    row = await repo.active_resident(conn, resident_id)
    if row is None:
        raise AccountGone("This account was deleted; sign in again.")
    return row


def profile_of(row: Any) -> Profile:
    return Profile(
        resident_id=str(row["id"]),
        phone_masked=row["phone_masked"],
        wechat_linked=bool(row["wechat_linked"]),
        district_code=row["district_code"],
        created_at=row["created_at"],
    )


async def set_district(
    tx: Tx, settings: Settings, resident_id: str, district_code: str | None
) -> None:
    check_district(settings, district_code)
    await repo.set_district(tx, resident_id, district_code)


async def delete_account(tx: Tx, redis: Any, resident_id: str) -> None:
    """Erase personal data and sessions. Ledger entries and events stay, referring to the
    resident's uuid only, which no longer leads to a person: the region's totals stay true."""
    row = await resident_row(tx.conn, resident_id)
    await repo.erase_resident(tx, resident_id)
    district = row["district_code"]
    if district:
        tx.after_commit(lambda: repo.leaderboard_remove(redis, district, resident_id))
    log.info("resident account erased", extra={"resident_id": resident_id})


# --- idempotency ---------------------------------------------------------------------------


def request_hash(method: str, path: str, body: bytes) -> bytes:
    return hashlib.sha256(b"\n".join((method.encode(), path.encode(), body))).digest()


async def replayed(tx: Tx, scope: str, key: str, digest: bytes) -> tuple[int, bytes] | None:
    """The stored answer for ``key`` (None: first use). Same key, other request: 409."""
    row = await repo.idempotency_lookup(tx, scope, key)
    if row is None:
        return None
    if bytes(row["request_hash"]) != digest:
        raise IdempotencyConflict("This Idempotency-Key was used for a different request.")
    return int(row["status"]), bytes(row["response"])


async def remember(
    tx: Tx, scope: str, key: str, digest: bytes, status: int, response: bytes
) -> None:
    await repo.idempotency_store(tx, scope, key, digest, status, response)


def now_s() -> int:
    return int(time.time())
