"""The residents' rules: sign-in (SMS codes and their budgets, WeChat), sessions (refresh-token
families, revocation), the account (profile, home district, erasure), growth levels and the
district board.

No SQL strings and no HTTP here: storage goes through ``repository``, the outside world through
the adapters in integrations/. Callers own the transaction (``Tx``) and pass Redis, the JWT
keys and the ``ResidentsConfig`` (built once at start-up) in. Other packages reach the
residents' tables only through the functions of this module.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import itertools
import json
import logging
import re
import secrets
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

import msgspec
from msgspec import UNSET, UnsetType

import points.service as points_service
from integrations.sms import ConsoleGateway, HttpGateway, SmsGateway
from integrations.wechat import code2session
from kit.auth import JwtKeys, Role
from kit.db import Tx
from kit.errors import InvalidInput
from kit.settings import PrivacySettings
from points import reads as ledger
from residents import repository as repo
from residents.errors import (
    AccountGone,
    BadDistrict,
    CodeAttemptsExceeded,
    CodeRejected,
    RefreshRejected,
    SessionRevoked,
    SmsRateLimited,
    SmsUnavailable,
)
from residents.schemas import Level, Profile, SmsCodeSent, TokenPair
from residents.settings import ResidentsConfig, SmsSettings

log = logging.getLogger("tanpuhui.mobile")

# Public on purpose: used only when TANPUHUI_PRIVACY_PHONE_HASH_KEY is unset, which `prod` refuses.
DEV_PHONE_HASH_KEY = "tanpuhui-dev-phone-hash-key-not-secret"
# [0-9] and ASCII, never \d: a phone written with other digits ("1380000004\u0661") must not
# become another account than the same number in ASCII digits.
_PHONE = re.compile(r"(?:\+?86)?(1[3-9][0-9]{9})", re.ASCII)


# --- personal data -------------------------------------------------------------------------


def normalise_phone(phone: str) -> str:
    match = _PHONE.fullmatch(phone)
    if match is None:  # the schema's pattern refused most of these already
        raise InvalidInput("Not a mainland mobile number.", code="validation_failed")
    return match.group(1)


def mask_phone(phone: str) -> str:
    return f"{phone[:3]}****{phone[-4:]}"


def keyed_hash(privacy: PrivacySettings, purpose: str, value: str) -> bytes:
    """HMAC-SHA256 under the privacy key: the only form in which phones and openids are kept."""
    key = (privacy.phone_hash_key or DEV_PHONE_HASH_KEY).encode()
    return hmac.new(key, f"{purpose}:{value}".encode(), hashlib.sha256).digest()


async def check_district(conn: Any, cfg: ResidentsConfig, district_code: str | None) -> None:
    """A home district must be one of the programme's imported districts (behaviours owns them;
    ``cfg.known_district`` asks) inside its region; with no districts imported, none can be
    chosen."""
    if district_code is None:
        return
    prefix = cfg.region_code.rstrip("0")
    prefix = prefix + "0" * (len(prefix) % 2)  # whole GB/T 2260 levels: 44, 4403, 440305
    if not district_code.startswith(prefix) or district_code == cfg.region_code:
        raise BadDistrict(f"District {district_code} is not inside region {cfg.region_code}.")
    if not await cfg.known_district(conn, district_code):
        raise BadDistrict(f"District {district_code} is not one of the programme's districts.")


# --- SMS codes -----------------------------------------------------------------------------


def gateway_for(sms: SmsSettings) -> SmsGateway:
    if sms.gateway == "http":
        assert sms.gateway_url  # load_settings insists on it
        return HttpGateway(sms.gateway_url, sms.gateway_token, sms.gateway_timeout_s)
    return ConsoleGateway()


async def send_code(
    redis: Any, cfg: ResidentsConfig, phone_raw: str, client_ip: str
) -> SmsCodeSent:
    """Send a code unless the phone's resend slot is taken or an hourly budget is spent: this
    phone for this client, this phone for all clients (larger: one client alone cannot lock a
    number out), this client. Only codes actually sent count; a refusal counts nothing."""
    phone = normalise_phone(phone_raw)
    sms = cfg.sms
    phone_hmac = keyed_hash(cfg.privacy, "phone", phone)
    client_hash = keyed_hash(cfg.privacy, "ip", client_ip).hex()[:32]
    keys = repo.sms_budget_keys(phone_hmac, client_hash)
    refused, wait = await repo.admit_sms(
        redis,
        keys,
        sms.resend_interval_s,
        3600,
        [sms.per_phone_per_hour, sms.per_phone_all_clients_per_hour, sms.per_ip_per_hour],
    )
    if refused == 1:
        raise SmsRateLimited(
            f"A code was just sent; wait {wait} s before asking again.",
            extra={"retry_after_s": wait},
        )
    if refused:
        raise SmsRateLimited(
            "Too many codes requested; try again later.", extra={"retry_after_s": wait}
        )
    code = f"{secrets.randbelow(1_000_000):06d}"
    masked = mask_phone(phone)
    try:
        await repo.store_code(
            redis, phone_hmac, keyed_hash(cfg.privacy, "sms-code", phone + code), sms.code_ttl_s
        )
        await gateway_for(sms).send_code(phone, masked, code, sms.code_ttl_s)
    except SmsUnavailable:
        await repo.refund_sms(redis, keys)  # not sent: it does not count
        raise
    return SmsCodeSent(
        phone_masked=masked, ttl_s=sms.code_ttl_s, resend_after_s=sms.resend_interval_s
    )


async def check_code(redis: Any, cfg: ResidentsConfig, phone: str, code: str) -> None:
    """Accept the code once; wrong guesses count, and the code dies after the last allowed one."""
    phone_hmac = keyed_hash(cfg.privacy, "phone", phone)
    max_attempts = cfg.sms.max_attempts
    stored, attempts = await repo.count_attempt(redis, phone_hmac)
    if stored is None:
        raise CodeRejected("No valid code for this number; ask for a new one.")
    if attempts > max_attempts:
        await repo.drop_code(redis, phone_hmac)
        raise CodeAttemptsExceeded("Too many wrong codes; ask for a new one.")
    expected = keyed_hash(cfg.privacy, "sms-code", phone + code)
    if not hmac.compare_digest(stored, expected):
        if attempts >= max_attempts:
            await repo.drop_code(redis, phone_hmac)
            raise CodeAttemptsExceeded("Too many wrong codes; ask for a new one.")
        raise CodeRejected("Wrong code.", extra={"attempts_left": max_attempts - attempts})
    if not await repo.drop_code(redis, phone_hmac):
        raise CodeRejected("This code was already used; ask for a new one.")


# --- sign-in and tokens --------------------------------------------------------------------


def _refresh_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


async def _issue_pair(
    tx: Tx,
    cfg: ResidentsConfig,
    jwt: JwtKeys,
    resident_id: uuid.UUID,
    family_id: uuid.UUID,
    *,
    new_account: bool = False,
) -> TokenPair:
    auth = cfg.auth
    refresh_token = secrets.token_urlsafe(32)
    expires = datetime.now(UTC) + timedelta(seconds=auth.refresh_ttl_s)
    await repo.store_refresh(tx, _refresh_hash(refresh_token), family_id, expires)
    access = jwt.issue(
        str(resident_id),
        Role.RESIDENT,
        auth.access_ttl_s,
        extra={"typ": "access", "fam": str(family_id)},
    )
    return TokenPair(
        access_token=access,
        expires_in=auth.access_ttl_s,
        refresh_token=refresh_token,
        refresh_expires_in=auth.refresh_ttl_s,
        resident_id=str(resident_id),
        new_account=new_account,
    )


async def _start_session(
    tx: Tx, cfg: ResidentsConfig, jwt: JwtKeys, resident_id: uuid.UUID, new_account: bool
) -> TokenPair:
    family = uuid.uuid4()
    await repo.create_family(tx, family, resident_id)
    log.info("resident signed in", extra={"resident_id": str(resident_id), "new": new_account})
    return await _issue_pair(tx, cfg, jwt, resident_id, family, new_account=new_account)


async def sign_in_with_code(
    tx: Tx,
    redis: Any,
    cfg: ResidentsConfig,
    jwt: JwtKeys,
    phone_raw: str,
    code: str,
    district_code: str | None,
) -> TokenPair:
    phone = normalise_phone(phone_raw)
    await check_district(tx.conn, cfg, district_code)
    await check_code(redis, cfg, phone, code)
    phone_hmac = keyed_hash(cfg.privacy, "phone", phone)
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
    return await _start_session(tx, cfg, jwt, resident, new)


async def sign_in_with_wechat(
    tx: Tx, cfg: ResidentsConfig, jwt: JwtKeys, login_code: str, district_code: str | None
) -> TokenPair:
    """Exchange a ``wx.login`` code for the openid (integrations.wechat), then sign in."""
    await check_district(tx.conn, cfg, district_code)
    wechat = cfg.wechat
    openid = await code2session(
        wechat.code2session_url,
        wechat.app_id,
        wechat.app_secret,
        login_code,
        timeout_s=wechat.timeout_s,
    )
    return await sign_in_with_openid(tx, cfg, jwt, openid, district_code)


async def sign_in_with_openid(
    tx: Tx, cfg: ResidentsConfig, jwt: JwtKeys, openid: str, district_code: str | None
) -> TokenPair:
    await check_district(tx.conn, cfg, district_code)
    openid_hmac = keyed_hash(cfg.privacy, "wechat-openid", openid)
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
    return await _start_session(tx, cfg, jwt, resident, new)


class RefreshOutcome(msgspec.Struct):
    pair: TokenPair | None = None
    error: RefreshRejected | None = None


async def refresh(
    tx: Tx, redis: Any, cfg: ResidentsConfig, jwt: JwtKeys, token: str
) -> RefreshOutcome:
    """Rotate a refresh token. A token presented after its rotation is a stolen copy (or the
    original after the copy was used): the whole family is revoked, its access tokens too. The
    revocation must be committed, so a refusal is returned, not raised; the caller raises after
    commit."""
    token_hash = _refresh_hash(token)
    row = await repo.refresh_for_update(tx, token_hash)
    if row is None or row["revoked_at"] is not None:
        return RefreshOutcome(error=RefreshRejected("Unknown or revoked refresh token."))
    if row["rotated_at"] is not None:
        await repo.revoke_family(tx, row["family_id"], "reuse_detected")
        _revoke_access_after_commit(tx, redis, cfg, str(row["family_id"]), "reuse_detected")
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
    pair = await _issue_pair(tx, cfg, jwt, row["resident_id"], row["family_id"])
    return RefreshOutcome(pair=pair)


def now_s() -> int:
    return int(time.time())


def revocation_ttl_s(cfg: ResidentsConfig, expires_at: int | None = None) -> int:
    """How long a revocation marker must live: until every access token it stops has expired
    (the longest access-token life, or the presented token's own expiry if later), plus slack
    for clock differences between API processes."""
    left = (expires_at - now_s()) if expires_at is not None else 0
    return max(cfg.auth.access_ttl_s, left) + 60


def _revoke_access_after_commit(
    tx: Tx,
    redis: Any,
    cfg: ResidentsConfig,
    family_id: str,
    reason: str,
    expires_at: int | None = None,
) -> None:
    ttl = revocation_ttl_s(cfg, expires_at)
    tx.after_commit(lambda: repo.mark_family_revoked(redis, family_id, reason, ttl))


async def sign_out(
    tx: Tx,
    redis: Any,
    cfg: ResidentsConfig,
    resident_id: str,
    family_id: str | None,
    expires_at: int | None,
) -> None:
    """End this sign-in: its refresh tokens (in PostgreSQL) and its access tokens (a revoked-
    family marker in Redis, checked on every call). The resident's other sign-ins live on."""
    await resident_row(tx.conn, resident_id)
    if family_id:
        await repo.revoke_family(tx, family_id, "signed_out")
        _revoke_access_after_commit(tx, redis, cfg, family_id, "signed_out", expires_at)


def refuse_revoked(deleted: bool, family_revoked: bool) -> None:
    if deleted:
        raise AccountGone("This account was deleted; sign in again.")
    if family_revoked:
        raise SessionRevoked("This sign-in has ended; sign in again.")


async def check_session(redis: Any, resident_id: str, family_id: str | None) -> None:
    """Refuse an access token of an erased account or of an ended sign-in (one Redis read)."""
    refuse_revoked(*await repo.revocations(redis, resident_id, family_id))


# --- the resident --------------------------------------------------------------------------


async def resident_row(conn: Any, resident_id: str) -> Any:
    """The resident's row (id, district_code, created_at, phone_masked, wechat_linked);
    ``AccountGone`` when there is no such resident or the account was erased."""
    row = await repo.active_resident(conn, resident_id)
    if row is None:
        raise AccountGone("This account was deleted; sign in again.")
    return row


async def require_active(conn: Any, resident_id: str) -> str | None:
    """Check that the resident exists and is not erased (``AccountGone`` otherwise); their
    home district. The leanest check, for reads of other packages' data about them."""
    row = await repo.district_of(conn, resident_id)
    if row is None:
        raise AccountGone("This account was deleted; sign in again.")
    district: str | None = row["district_code"]
    return district


async def active_districts(conn: Any, resident_ids: Sequence[str]) -> dict[str, str | None]:
    """:func:`require_active` for many residents in one query: {id: home district} of those
    that exist and are not erased (an absent id: ``AccountGone`` for that resident)."""
    return await repo.active_districts(conn, sorted(set(resident_ids)))


def profile_of(row: Any, grams: int) -> Profile:
    """The profile, with the growth level reached with ``grams`` (verified CO2E_G, posted)."""
    return Profile(
        resident_id=str(row["id"]),
        phone_masked=row["phone_masked"],
        wechat_linked=bool(row["wechat_linked"]),
        district_code=row["district_code"],
        created_at=row["created_at"],
        level=level_of(grams)[0],
    )


async def verified_grams(conn: Any, resident_id: str) -> int:
    """The resident's verified reduction: what levels and boards count (posted CO2E_G)."""
    return _grams(await points_service.balances(conn, "resident", resident_id))


async def profile(conn: Any, resident_id: str) -> Profile:
    row = await resident_row(conn, resident_id)
    return profile_of(row, await verified_grams(conn, resident_id))


async def update_profile(
    tx: Tx,
    redis: Any,
    cfg: ResidentsConfig,
    resident_id: str,
    district_code: str | UnsetType | None,
) -> Profile:
    """PATCH semantics: an absent field is unchanged; ``null`` clears the district."""
    await resident_row(tx.conn, resident_id)
    if district_code is not UNSET:
        await check_district(tx.conn, cfg, district_code)
        await set_district(tx, redis, resident_id, district_code)
    return await profile(tx.conn, resident_id)


async def set_district(tx: Tx, redis: Any, resident_id: str, district_code: str | None) -> None:
    """Change the home district (the caller checked it), and the summary's cached copy once the
    change is committed."""
    version = await repo.set_district(tx, resident_id, district_code)
    if version is not None:
        tx.after_commit(lambda: repo.cache_home(redis, resident_id, district_code, version))


async def delete_account(tx: Tx, redis: Any, cfg: ResidentsConfig, resident_id: str) -> None:
    """Erase personal data and sessions. Ledger entries and events stay, referring to the
    resident's uuid only, which no longer leads to a person: the region's totals stay true.

    Every outstanding access token is refused from the commit on: by the deleted marker in Redis
    (checked on every call; it lives ``revocation_ttl_s``, longer than any access token) and,
    should Redis lose it, by each endpoint's own check of ``residents.deleted_at``. The summary
    checks it only on a miss of the cached home, which the same after-commit round trip deletes
    and which nothing recreates while the marker lives."""
    row = await resident_row(tx.conn, resident_id)
    await repo.erase_resident(tx, resident_id)
    district = row["district_code"]
    ttl = revocation_ttl_s(cfg)
    tx.after_commit(lambda: repo.mark_resident_deleted(redis, resident_id, district, ttl))
    log.info("resident account erased", extra={"resident_id": resident_id})


# --- for other packages: residents without an identity, and the batch lock -----------------


async def create_residents(
    conn: Any, district_codes: Sequence[str | None], *, ids: Sequence[str] | None = None
) -> list[str]:
    """Create residents (one per district code, ``None``: no home district) without a sign-in
    identity; their ids (new uuids unless ``ids`` are given). Set-wise: one statement."""
    made = list(ids) if ids is not None else [str(uuid.uuid4()) for _ in district_codes]
    assert len(made) == len(district_codes)
    await repo.create_residents(conn, made, list(district_codes))
    return made


class Home(NamedTuple):
    district_code: str | None
    erased: bool


async def lock_homes(conn: Any, resident_ids: Sequence[str]) -> dict[str, Home]:
    """Lock the residents (in id order, one statement) for the rest of the transaction: the
    ingestion pipeline's per-resident serialisation. Their home districts and whether each was
    erased; unknown ids are absent."""
    rows = await repo.lock_homes(conn, sorted(set(resident_ids)))
    return {r["id"]: Home(r["district_code"], r["deleted_at"] is not None) for r in rows}


# --- growth levels (data: levels.json) -----------------------------------------------------


@functools.cache
def levels() -> tuple[Level, ...]:
    raw = json.loads((Path(__file__).parent / "levels.json").read_text(encoding="utf-8"))
    found = tuple(msgspec.convert(x, Level) for x in raw["levels"])
    assert found and found[0].min_grams == 0
    assert all(a.min_grams < b.min_grams for a, b in itertools.pairwise(found))
    return found


def level_of(grams: int) -> tuple[Level, Level | None]:
    """The level reached with ``grams`` and the next one (None at the top): the one rule for
    every answer that shows a level (summary, profile, export)."""
    all_levels = levels()
    reached = [lv for lv in all_levels if lv.min_grams <= grams]
    current = reached[-1]
    following = all_levels[len(reached)] if len(reached) < len(all_levels) else None
    return current, following


# --- the summary and the district board ------------------------------------------------------

BOARD_FRESH_S = 300  # the district board is re-derived from the ledger at least this often
EXPIRING_WITHIN = timedelta(days=30)


def _grams(bals: list[Any]) -> int:
    """Verified grams as levels and boards count them: the posted CO2E_G balance."""
    return int(next(b for b in bals if b.asset == "CO2E_G").posted)


async def rebuild_board(conn: Any, redis: Any, district: str) -> None:
    """Re-derive a district's board from the ledger (after Redis lost it, or when stale): its
    residents (one statement) and their posted CO2E_G (one statement, points.reads)."""
    members = await repo.active_in_district(conn, district)
    totals = await ledger.posted_by_owner(conn, "resident", members, "CO2E_G")
    await repo.leaderboard_replace(
        redis, district, {m: g for m, g in totals.items() if g > 0}, BOARD_FRESH_S
    )


async def board_rank(
    conn: Any, redis: Any, district: str | None, resident_id: str, grams: int
) -> tuple[int | None, int | None]:
    """(1-based rank, residents on the board) after recording the resident's fresh score."""
    if not district:
        return None, None
    built, rank, size = await repo.leaderboard_state(redis, district, resident_id, grams)
    if not built:
        await rebuild_board(conn, redis, district)
        built, rank, size = await repo.leaderboard_state(redis, district, resident_id, grams)
    return (None if rank is None else rank + 1), size


class Standing(NamedTuple):
    """The resident's standing, as the summary shows it."""

    ledger: ledger.OwnerSummary
    district_code: str | None
    district_rank: int | None
    district_residents: int | None
    level: Level
    next_level: Level | None


async def standing(conn: Any, redis: Any, resident_id: str, family_id: str | None) -> Standing:
    """One SQL statement (the ledger's summary: points.reads) and one Redis round trip (a
    script: the token's revocation markers, the cached home district, the district board): the
    summary's route skips the guard's own revocation read, since the script carries it.

    The home district comes from its cache (``repository.standing``), which a change of district
    overwrites and the erasure deletes after commit; an erased resident is refused by the
    deleted marker, which outlives every access token. On a miss (first summary in
    ``HOME_TTL_S``, or Redis lost it): the resident from PostgreSQL (``require_active``: refuses
    an erased account even without the marker), then the same script, filling the cache."""
    sums = await ledger.owner_summary(
        conn, "resident", resident_id, expiring_until=datetime.now(UTC) + EXPIRING_WITHIN
    )
    grams = sums.grams
    state = await repo.standing(redis, resident_id, family_id, grams)
    refuse_revoked(state.deleted, state.family_revoked)
    if not state.home_known:
        district = await require_active(conn, resident_id)
        state = await repo.standing(redis, resident_id, family_id, grams, fill=(district,))
        refuse_revoked(state.deleted, state.family_revoked)
    district = state.district_code
    rank = size = None
    if district:
        if state.built:
            zero_based, size = state.rank, state.size
        else:
            await rebuild_board(conn, redis, district)
            _, zero_based, size = await repo.leaderboard_state(redis, district, resident_id, grams)
        rank = None if zero_based is None else zero_based + 1
    current, following = level_of(grams)
    return Standing(sums, district, rank, size, current, following)


class BoardEntry(NamedTuple):
    rank: int  # 1-based
    nickname: str  # "me" for the caller; others by a stable, non-reversible label
    reduction_g: int
    me: bool


class Board(NamedTuple):
    district_code: str | None
    entries: list[BoardEntry]
    my_rank: int | None = None
    my_reduction_g: int | None = None


async def board(conn: Any, redis: Any, resident_id: str, limit: int) -> Board:
    row = await resident_row(conn, resident_id)
    district = row["district_code"]
    if not district:
        return Board(district_code=None, entries=[])
    grams = await verified_grams(conn, resident_id)
    rank, _ = await board_rank(conn, redis, district, resident_id, grams)
    top = await repo.leaderboard_top(redis, district, limit)
    entries = [
        BoardEntry(
            rank=i + 1,
            nickname="me" if member == resident_id else f"居民{_label(member)}",
            reduction_g=score,
            me=member == resident_id,
        )
        for i, (member, score) in enumerate(top)
    ]
    return Board(district, entries, rank, grams)


def _label(resident_id: str) -> str:
    # A stable, non-reversible nickname: other residents' ids never leave the server.
    return hashlib.sha256(b"board:" + resident_id.encode()).hexdigest()[:6].upper()
