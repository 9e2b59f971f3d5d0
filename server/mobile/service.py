"""The rules of the residents' mobile API: sign-in, tokens, personal data, reads and activities.

No SQL strings and no Litestar here: storage goes through ``repository``, HTTP stays in
``routes``. Callers own the transaction (``Tx``) and pass Redis, settings and JWT keys in.
"""

from __future__ import annotations

import base64
import binascii
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
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
from msgspec import UNSET, UnsetType

import behaviours.service as behaviours
import points.service as points_service
from behaviours.events import BikeTrip, CanonicalEvent, DailySteps, Point, RoutePoint, Walk
from behaviours.pipeline import default_cache
from kit.auth import JwtKeys, Role
from kit.db import Tx
from kit.errors import IdempotencyConflict, InvalidInput, NotFound
from server.mobile import repository as repo
from server.mobile.errors import (
    AccountGone,
    BadCursor,
    BadDistrict,
    CodeAttemptsExceeded,
    CodeRejected,
    RefreshRejected,
    SessionRevoked,
    SmsRateLimited,
    SmsUnavailable,
)
from server.mobile.schemas import (
    BalanceView,
    DataSource,
    Export,
    HistoryItem,
    HistoryPage,
    Leaderboard,
    LeaderboardEntry,
    Level,
    MonthFigure,
    Monthly,
    Profile,
    SmsCodeSent,
    StepsActivity,
    Summary,
    TokenPair,
    TrackActivity,
    TrackFinding,
    Verdict,
)
from server.mobile.sms import gateway_from_settings
from server.mobile.tracks import Fix, check_track
from server.settings import Settings

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


def keyed_hash(settings: Settings, purpose: str, value: str) -> bytes:
    """HMAC-SHA256 under the privacy key: the only form in which phones and openids are kept."""
    key = (settings.privacy.phone_hash_key or DEV_PHONE_HASH_KEY).encode()
    return hmac.new(key, f"{purpose}:{value}".encode(), hashlib.sha256).digest()


async def check_district(conn: Any, settings: Settings, district_code: str | None) -> None:
    """A home district must be one of the programme's imported districts (behaviours owns them)
    inside its region; with no districts imported, none can be chosen."""
    if district_code is None:
        return
    prefix = settings.region_code.rstrip("0")
    prefix = prefix + "0" * (len(prefix) % 2)  # whole GB/T 2260 levels: 44, 4403, 440305
    if not district_code.startswith(prefix) or district_code == settings.region_code:
        raise BadDistrict(f"District {district_code} is not inside region {settings.region_code}.")
    if not await behaviours.is_district(conn, district_code):
        raise BadDistrict(f"District {district_code} is not one of the programme's districts.")


# --- SMS codes -----------------------------------------------------------------------------


async def send_code(redis: Any, settings: Settings, phone_raw: str, client_ip: str) -> SmsCodeSent:
    """Send a code unless the phone's resend slot is taken or an hourly budget is spent: this
    phone for this client, this phone for all clients (larger: one client alone cannot lock a
    number out), this client. Only codes actually sent count; a refusal counts nothing."""
    phone = normalise_phone(phone_raw)
    sms = settings.sms
    phone_hmac = keyed_hash(settings, "phone", phone)
    client_hash = keyed_hash(settings, "ip", client_ip).hex()[:32]
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
            redis, phone_hmac, keyed_hash(settings, "sms-code", phone + code), sms.code_ttl_s
        )
        await gateway_from_settings(sms).send_code(phone, masked, code, sms.code_ttl_s)
    except SmsUnavailable:
        await repo.refund_sms(redis, keys)  # not sent: it does not count
        raise
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
    await check_district(tx.conn, settings, district_code)
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
    await check_district(tx.conn, settings, district_code)
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


async def refresh(
    tx: Tx, redis: Any, settings: Settings, jwt: JwtKeys, token: str
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
        _revoke_access_after_commit(tx, redis, settings, str(row["family_id"]), "reuse_detected")
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


def revocation_ttl_s(settings: Settings, expires_at: int | None = None) -> int:
    """How long a revocation marker must live: until every access token it stops has expired
    (the longest access-token life, or the presented token's own expiry if later), plus slack
    for clock differences between API processes."""
    left = (expires_at - now_s()) if expires_at is not None else 0
    return max(settings.auth.access_ttl_s, left) + 60


def _revoke_access_after_commit(
    tx: Tx,
    redis: Any,
    settings: Settings,
    family_id: str,
    reason: str,
    expires_at: int | None = None,
) -> None:
    ttl = revocation_ttl_s(settings, expires_at)
    tx.after_commit(lambda: repo.mark_family_revoked(redis, family_id, reason, ttl))


async def sign_out(
    tx: Tx,
    redis: Any,
    settings: Settings,
    resident_id: str,
    family_id: str | None,
    expires_at: int | None,
) -> None:
    """End this sign-in: its refresh tokens (in PostgreSQL) and its access tokens (a revoked-
    family marker in Redis, checked on every call). The resident's other sign-ins live on."""
    await resident_row(tx.conn, resident_id)
    if family_id:
        await repo.revoke_family(tx, family_id, "signed_out")
        _revoke_access_after_commit(tx, redis, settings, family_id, "signed_out", expires_at)


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
    row = await repo.active_resident(conn, resident_id)
    if row is None:
        raise AccountGone("This account was deleted; sign in again.")
    return row


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
    tx: Tx, settings: Settings, resident_id: str, district_code: str | UnsetType | None
) -> Profile:
    """PATCH semantics: an absent field is unchanged; ``null`` clears the district."""
    await resident_row(tx.conn, resident_id)
    if district_code is not UNSET:
        await check_district(tx.conn, settings, district_code)
        await repo.set_district(tx, resident_id, district_code)
    return await profile(tx.conn, resident_id)


async def delete_account(tx: Tx, redis: Any, settings: Settings, resident_id: str) -> None:
    """Erase personal data and sessions. Ledger entries and events stay, referring to the
    resident's uuid only, which no longer leads to a person: the region's totals stay true.

    Every outstanding access token is refused from the commit on: by the deleted marker in Redis
    (checked on every call) and, should Redis lose it, by each endpoint's own check of
    ``residents.deleted_at``."""
    row = await resident_row(tx.conn, resident_id)
    await repo.erase_resident(tx, resident_id)
    district = row["district_code"]
    ttl = revocation_ttl_s(settings)
    tx.after_commit(lambda: repo.mark_resident_deleted(redis, resident_id, district, ttl))
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


# --- reads ---------------------------------------------------------------------------------

BOARD_FRESH_S = 300  # the district board is re-derived from the ledger at least this often


def _balance(bals: list[Any], asset: str) -> Any:
    return next(b for b in bals if b.asset == asset)


def _grams(bals: list[Any]) -> int:
    """Verified grams as levels and boards count them: the posted CO2E_G balance."""
    return int(_balance(bals, "CO2E_G").posted)


async def _rank(
    conn: Any, redis: Any, district: str | None, resident_id: str, grams: int
) -> tuple[int | None, int | None]:
    if not district:
        return None, None
    built, rank, size = await repo.leaderboard_state(redis, district, resident_id, grams)
    if not built:
        await rebuild_board(conn, redis, district)
        built, rank, size = await repo.leaderboard_state(redis, district, resident_id, grams)
    return (None if rank is None else rank + 1), size


async def rebuild_board(conn: Any, redis: Any, district: str) -> None:
    """Re-derive a district's board from the ledger (after Redis lost it, or when stale)."""
    totals = await repo.ledger_district_totals(conn, district)
    await repo.leaderboard_replace(redis, district, totals, BOARD_FRESH_S)


EXPIRING_WITHIN = timedelta(days=30)


async def summary(conn: Any, redis: Any, resident_id: str, family_id: str | None) -> Summary:
    """One SQL statement (resident, balances, expiring lots) and one Redis pipeline (the token's
    revocation markers and the district board): two round trips. The route skips the guard's
    own revocation read, since this pipeline carries it."""
    row = await repo.ledger_summary(conn, resident_id, datetime.now(UTC) + EXPIRING_WITHIN)
    if row is None:
        raise AccountGone("This account was deleted; sign in again.")
    grams, district = int(row["grams"]), row["district_code"]
    state = await repo.session_and_board(redis, resident_id, family_id, district, grams)
    refuse_revoked(state.deleted, state.family_revoked)
    rank = size = None
    if district:
        if state.built:
            zero_based, size = state.rank, state.size
        else:
            await rebuild_board(conn, redis, district)
            _, zero_based, size = await repo.leaderboard_state(redis, district, resident_id, grams)
        rank = None if zero_based is None else zero_based + 1
    current, following = level_of(grams)
    posted, pending = int(row["points_posted"]), int(row["points_pending"])
    return Summary(
        total_reduction_g=grams,
        points_available=posted - pending,
        points_pending=pending,
        points_expiring_30d=int(row["points_expiring"]),
        district_code=district,
        district_rank=rank,
        district_residents=size,
        level=current,
        next_level=following,
    )


async def leaderboard(conn: Any, redis: Any, resident_id: str, limit: int) -> Leaderboard:
    row = await resident_row(conn, resident_id)
    district = row["district_code"]
    if not district:
        return Leaderboard(district_code=None, entries=[])
    bals = await points_service.balances(conn, "resident", resident_id)
    grams = _grams(bals)
    rank, _ = await _rank(conn, redis, district, resident_id, grams)
    top = await repo.leaderboard_top(redis, district, limit)
    entries = [
        LeaderboardEntry(
            rank=i + 1,
            resident="me" if member == resident_id else f"居民{_label(member)}",
            reduction_g=score,
            me=member == resident_id,
        )
        for i, (member, score) in enumerate(top)
    ]
    return Leaderboard(district_code=district, entries=entries, my_rank=rank, my_reduction_g=grams)


def _label(resident_id: str) -> str:
    # A stable, non-reversible nickname: other residents' ids never leave the server.
    return hashlib.sha256(b"board:" + resident_id.encode()).hexdigest()[:6].upper()


_cursor_encoder = msgspec.json.Encoder()


class _HistoryCursor(msgspec.Struct, frozen=True):
    s: datetime
    i: str


_cursor_decoder = msgspec.json.Decoder(_HistoryCursor)


def _encode_cursor(at: datetime, event_id: str) -> str:
    raw = _cursor_encoder.encode(_HistoryCursor(at, event_id))
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        c = _cursor_decoder.decode(raw)
        uuid.UUID(c.i)
    except (binascii.Error, msgspec.DecodeError, ValueError):
        raise BadCursor("The cursor is not one this API gave out.") from None
    if c.s.tzinfo is None:
        raise BadCursor("The cursor is not one this API gave out.")
    return c.s, c.i


async def history(
    conn: Any,
    resident_id: str,
    *,
    kind: str | None,
    status: str | None,
    cursor: str | None,
    limit: int,
) -> HistoryPage:
    before = _decode_cursor(cursor) if cursor else None
    rows = await repo.events_page(
        conn, resident_id, kind=kind, status=status, before=before, limit=limit + 1
    )
    if rows is None:
        raise AccountGone("This account was deleted; sign in again.")
    page = [dict(r) for r in rows[:limit]]
    last = page[-1] if page else None
    items = [HistoryItem(**{k: v for k, v in r.items() if k != "history_at"}) for r in page]
    more = len(rows) > limit
    return HistoryPage(
        items=items,
        next_cursor=_encode_cursor(last["history_at"], last["event_id"]) if more and last else None,
    )


async def history_item(conn: Any, resident_id: str, event_id: str) -> HistoryItem:
    await resident_row(conn, resident_id)
    try:
        uuid.UUID(event_id)
    except ValueError:
        raise NotFound("No such event among yours.") from None
    row = await repo.event_by_id(conn, resident_id, event_id)
    if row is None:
        raise NotFound("No such event among yours.")
    return HistoryItem(**dict(row))


async def monthly(conn: Any, resident_id: str, months: int) -> Monthly:
    await resident_row(conn, resident_id)
    now = datetime.now(UTC)
    since = (now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)) - timedelta(
        days=31 * (months - 1) + 1
    )
    rows = await repo.events_monthly(conn, resident_id, since)
    figures = [
        MonthFigure(
            month=r["month"],
            mode=r["mode"],
            trips=int(r["trips"]),
            distance_m=int(r["distance_m"]),
            reduction_g=int(r["reduction_g"]),
            points=int(r["points"]),
        )
        for r in rows
    ]
    keep = sorted({f.month for f in figures}, reverse=True)[:months]
    return Monthly(months=[f for f in figures if f.month in keep])


# --- data sources --------------------------------------------------------------------------


def _source(op: behaviours.OperatorInfo, link: behaviours.Link | None) -> DataSource:
    """The one builder of a ``DataSource`` (the list and the answer to a link agree)."""
    if link is None or link.revoked_at is not None:
        return DataSource(operator_id=op.id, name=op.name, kinds=[op.kind])
    return DataSource(
        operator_id=op.id,
        name=op.name,
        kinds=[op.kind],
        linked=True,
        scope=list(link.scope),
        subject_ref=link.subject_ref,
        linked_at=link.granted_at,
    )


async def data_sources(conn: Any, resident_id: str) -> list[DataSource]:
    links = {ln.operator_id: ln for ln in await behaviours.resident_links(conn, resident_id)}
    return [_source(op, links.get(op.id)) for op in await behaviours.list_operators(conn)]


async def link(tx: Tx, resident_id: str, operator_id: str, scope: list[str]) -> DataSource:
    ln = await behaviours.link_operator(tx, resident_id, operator_id, scope)
    log.info("operator linked", extra={"resident_id": resident_id, "operator_id": operator_id})
    [op] = [op for op in await behaviours.list_operators(tx.conn) if op.id == ln.operator_id]
    return _source(op, ln)


async def unlink(tx: Tx, resident_id: str, operator_id: str) -> None:
    await resident_row(tx.conn, resident_id)
    await behaviours.unlink_operator(tx, resident_id, operator_id)
    log.info("operator unlinked", extra={"resident_id": resident_id, "operator_id": operator_id})


# --- self-reported activities --------------------------------------------------------------


def _track_record_id(resident_id: str, act: TrackActivity) -> str:
    """The activity's record id under the shared app source: the resident is part of it, so two
    residents' activities (same client_ref, same day's steps) never collide."""
    if act.client_ref:
        return "app:" + hashlib.sha256(f"{resident_id}\n{act.client_ref}".encode()).hexdigest()[:40]
    digest = hashlib.sha256(resident_id.encode() + b"\n" + msgspec.json.encode(act))
    return "trk:" + digest.hexdigest()[:40]


MAX_EVENT_DISTANCE_M = 10_000_000  # the canonical events' bound on distance_m


async def report_activity(
    tx: Tx, settings: Settings, resident_id: str, act: TrackActivity | StepsActivity
) -> Verdict:
    """Track checks first, then the behaviours pipeline. A track the checks refuse still goes
    through the pipeline, *prejudged*: stored as rejected with the first finding's code and
    message (so history shows it and why), never credited; a resend is a duplicate."""
    await resident_row(tx.conn, resident_id)
    event: CanonicalEvent
    measured: int | None = None
    findings: list[TrackFinding] = []
    prejudged: dict[str, tuple[str, str]] | None = None
    if isinstance(act, TrackActivity):
        ref = await default_cache().get(tx.conn)
        districts = ref.districts
        inside = None
        if not districts.empty:

            def inside(lons: list[float], lats: list[float]) -> list[bool]:
                return [code is not None for code in districts.locate(lons, lats)]

        fixes = [Fix(p.t, p.lat, p.lon) for p in act.points]
        report = check_track(act.mode, fixes, act.claimed_distance_m, inside)
        measured = round(report.measured_m)
        findings = [TrackFinding(code=f.code, message=f.message) for f in report.findings]
        record_id = _track_record_id(resident_id, act)
        if not report.ok:
            first = report.findings[0]
            prejudged = {record_id: (first.code, first.message)}
        start, end = act.points[0], act.points[-1]
        times = [p.t for p in act.points]  # out of order when track_time_order: span them
        common: dict[str, Any] = {
            "record_id": record_id,
            "subject": resident_id,
            "started_at": min(times),
            "ended_at": max(times),
            "start": Point(lat=start.lat, lon=start.lon),
            "end": Point(lat=end.lat, lon=end.lon),
            "distance_m": min(measured, MAX_EVENT_DISTANCE_M),
            "route": [RoutePoint(lat=p.lat, lon=p.lon, t=p.t) for p in act.points],
        }
        event = BikeTrip(mode="own_bike", **common) if act.mode == "cycling" else Walk(**common)
    else:
        event = DailySteps(
            # The day's cumulative count is part of the record: the same count again is a
            # duplicate, a higher one a new report that credits the steps above the last.
            record_id=f"steps:{resident_id}:{act.day.isoformat()}:{act.steps}",
            subject=resident_id,
            day=act.day,
            steps=act.steps,
        )
    [v] = await behaviours.ingest(
        tx, behaviours.app_source(resident_id), [event], settings=settings, prejudged=prejudged
    )
    methodology = None
    if v.event_id:
        row = await repo.event_by_id(tx.conn, resident_id, v.event_id)
        methodology = row["methodology_version"] if row else None
    # A duplicate repeats the first verdict, whose reason tells whether it was a rejection.
    rejected = v.status == "rejected" or (v.status == "duplicate" and v.reason_code is not None)
    return Verdict(
        event_id=v.event_id,
        status="rejected" if rejected else "accepted",
        reason_code=v.reason_code,
        reason=v.message,
        reduction_g=v.reduction_g,
        points=v.points,
        methodology_version=methodology,
        measured_distance_m=measured,
        findings=findings,
        duplicate=v.status == "duplicate",
    )


# --- export --------------------------------------------------------------------------------


async def export(conn: Any, resident_id: str) -> Export:
    row = await resident_row(conn, resident_id)
    items: list[HistoryItem] = []
    cursor: str | None = None
    while True:
        page = await history(conn, resident_id, kind=None, status=None, cursor=cursor, limit=500)
        items.extend(page.items)
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    ledger: list[dict[str, object]] = []
    for asset in ("CO2E_G", "POINT"):
        lcursor: str | None = None
        while True:
            spage = await points_service.statement(
                conn, "resident", resident_id, asset, cursor=lcursor, limit=500
            )
            ledger.extend({"asset": asset, **msgspec.to_builtins(e)} for e in spage.entries)
            if spage.next_cursor is None:
                break
            lcursor = spage.next_cursor
    bals = await points_service.balances(conn, "resident", resident_id)
    return Export(
        exported_at=datetime.now(UTC),
        profile=profile_of(row, _grams(bals)),
        data_sources=[s for s in await data_sources(conn, resident_id) if s.linked],
        balances=[
            BalanceView(asset=b.asset, posted=b.posted, pending=b.pending, available=b.available)
            for b in bals
        ],
        history=items,
        ledger=ledger,
    )
