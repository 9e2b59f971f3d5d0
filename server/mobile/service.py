"""The mobile surface's composition: each answer that combines several owners' published
reads or rules (residents, behaviours, points) is put together here, with no SQL and no rule
of its own beyond shaping the wire answer. Rules that are one owner's live in that owner's
package (``residents.service`` for sign-in, sessions, the profile, levels and the district
board; ``behaviours`` for events, links and track checks; ``points`` for the ledger); routes
call either those directly or one function of this module.
"""

from __future__ import annotations

import functools
import hashlib
import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import msgspec

import behaviours.service as behaviours
import points.service as points_service
import residents.service as residents
from behaviours import reads as events
from behaviours.events import BikeTrip, CanonicalEvent, DailySteps, Point, RoutePoint, Walk
from behaviours.tracks import Fix, check_track
from kit.db import Tx
from kit.errors import NotFound
from kit.i18n import Language
from points.schemas import ExpiringLot
from residents import schemas as residents_schemas
from residents.settings import ResidentsConfig
from server.errors import catalogue, verdict_message
from server.mobile.schemas import (
    BalanceView,
    DataSource,
    Expiry,
    ExpiryReminder,
    Export,
    ExportedEvent,
    HistoryItem,
    HistoryPage,
    Leaderboard,
    LeaderboardEntry,
    Level,
    Levels,
    MonthFigure,
    Monthly,
    MonthTotal,
    Profile,
    StepsActivity,
    Summary,
    TrackActivity,
    TrackFinding,
    Verdict,
)
from server.settings import Settings

log = logging.getLogger("tanpuhui.mobile")


@functools.lru_cache(maxsize=8)
def residents_config(settings: Settings) -> ResidentsConfig:
    """The residents' configuration for these settings (built once per settings)."""
    return ResidentsConfig(
        region_code=settings.region_code,
        sms=settings.sms,
        wechat=settings.wechat,
        privacy=settings.privacy,
        auth=settings.auth,
        known_district=behaviours.is_district,
    )


# --- what a person reads: level names, district names (in the answer's language) ---------


def level_view(lv: residents_schemas.Level | None, lang: Language) -> Level | None:
    """A growth level with its name and description in ``lang``."""
    if lv is None:
        return None
    cat = catalogue()
    return Level(
        level=lv.level,
        name=cat.level_name(lang, lv.level, lv.name),
        min_grams=lv.min_grams,
        description=cat.fill(lang, "texts.level_description", {"min_grams_g": lv.min_grams}),
    )


async def district_name(conn: Any, code: str | None) -> str | None:
    """The imported district's name (behaviours' published read); None without a district."""
    if code is None:
        return None
    return (await behaviours.district_names(conn, [code])).get(code)


async def profile_view(conn: Any, p: residents_schemas.Profile, lang: Language) -> Profile:
    """The residents' profile as the mobile API answers it: level in ``lang``, district name."""
    return Profile(
        resident_id=p.resident_id,
        phone_masked=p.phone_masked,
        wechat_linked=p.wechat_linked,
        district_code=p.district_code,
        created_at=p.created_at,
        level=level_view(p.level, lang),
        district_name=await district_name(conn, p.district_code),
    )


async def profile(conn: Any, resident_id: str, lang: Language) -> Profile:
    return await profile_view(conn, await residents.profile(conn, resident_id), lang)


# --- reads ---------------------------------------------------------------------------------


REMINDER_DAYS = 30  # expiry reminders: the expiries this close


def expiry_views(
    expiries: Sequence[ExpiringLot], lang: Language, zone: ZoneInfo, now: datetime
) -> tuple[list[Expiry], list[ExpiryReminder]]:
    """Every upcoming expiry, and the reminders of those within ``REMINDER_DAYS`` (their
    message in ``lang``, the date in the programme's time zone)."""
    cat = catalogue()
    horizon = now + timedelta(days=REMINDER_DAYS)
    reminders = []
    for e in expiries:
        if e.expires_at > horizon:
            break
        # The last day the points can be used, in the programme's calendar.
        last_day = (e.expires_at - timedelta(microseconds=1)).astimezone(zone).date()
        values = {"points": e.amount, "date": last_day.isoformat()}
        reminders.append(
            ExpiryReminder(
                expires_at=e.expires_at,
                points=e.amount,
                days_left=max(0, (e.expires_at - now) // timedelta(days=1)),
                message=cat.fill(lang, "texts.expiry_reminder", values)
                or f"{e.amount} points expire after {values['date']}",
            )
        )
    return [Expiry(expires_at=e.expires_at, points=e.amount) for e in expiries], reminders


async def summary(
    conn: Any,
    redis: Any,
    resident_id: str,
    family_id: str | None,
    lang: Language,
    *,
    zone: ZoneInfo | None = None,
    now: datetime | None = None,
) -> Summary:
    """One SQL statement and one Redis round trip (``residents.standing``; two of each when
    the resident's home district is not cached)."""
    s = await residents.standing(conn, redis, resident_id, family_id)
    expiries, reminders = expiry_views(
        s.ledger.expiries, lang, zone or ZoneInfo("UTC"), now or datetime.now(UTC)
    )
    return Summary(
        total_reduction_g=s.ledger.grams,
        points_available=s.ledger.points_available,
        points_pending=s.ledger.points_pending,
        points_expiring_30d=s.ledger.points_expiring,
        district_code=s.district_code,
        district_name=await district_name(conn, s.district_code),
        district_rank=s.district_rank,
        district_residents=s.district_residents,
        level=level_view(s.level, lang),
        next_level=level_view(s.next_level, lang),
        points_on_hold=s.ledger.points_pending,
        expiries=expiries,
        expiry_reminders=reminders,
    )


async def leaderboard(conn: Any, redis: Any, resident_id: str, limit: int) -> Leaderboard:
    b = await residents.board(conn, redis, resident_id, limit)
    return Leaderboard(
        district_code=b.district_code,
        entries=[
            LeaderboardEntry(rank=e.rank, resident=e.nickname, reduction_g=e.reduction_g, me=e.me)
            for e in b.entries
        ],
        my_rank=b.my_rank,
        my_reduction_g=b.my_reduction_g,
        district_name=await district_name(conn, b.district_code),
    )


async def levels(conn: Any, resident_id: str, lang: Language) -> Levels:
    await residents.require_active(conn, resident_id)
    return Levels(levels=[lv for lv in (level_view(x, lang) for x in residents.levels()) if lv])


def _item(e: events.EventView, lang: Language | None = None) -> HistoryItem:
    """A history item; its verdict message in ``lang`` (None: as stored)."""
    return HistoryItem(
        event_id=e.event_id,
        kind=e.kind,
        mode=e.mode,
        status=e.status,
        occurred_at=e.occurred_at,
        recorded_at=e.recorded_at,
        operator_id=e.operator_id,
        distance_m=e.distance_m,
        reduction_g=e.reduction_g,
        points=e.points,
        methodology_version=e.methodology_version,
        reason_code=e.reason_code,
        reason=e.reason if lang is None else verdict_message(lang, e.reason_code, e.reason),
    )


async def history(
    conn: Any,
    resident_id: str,
    *,
    kind: str | None,
    status: str | None,
    cursor: str | None,
    limit: int,
    lang: Language | None = None,
) -> HistoryPage:
    """A page of the resident's events (behaviours.reads: keyset on (history time, id)), the
    verdict messages in ``lang`` (None: as stored)."""
    await residents.require_active(conn, resident_id)
    page = await events.events_page(
        conn, resident_id, kind=kind, status=status, cursor=cursor, limit=limit
    )
    return HistoryPage(items=[_item(e, lang) for e in page.items], next_cursor=page.next_cursor)


async def history_item(conn: Any, resident_id: str, event_id: str, lang: Language) -> HistoryItem:
    await residents.require_active(conn, resident_id)
    found = await events.event(conn, resident_id, event_id)
    if found is None:
        raise NotFound("No such event among yours.")
    return _item(found, lang)


async def monthly(
    conn: Any, resident_id: str, months: int, *, zone: ZoneInfo, now: datetime | None = None
) -> Monthly:
    """The last ``months`` calendar months in the programme's time zone ``zone``: per month
    and mode where there are activities, and one total per month (zeros for a month without
    any), newest first."""
    await residents.require_active(conn, resident_id)
    found = await events.monthly(conn, resident_id, months=months, zone=zone, now=now)
    figures = [
        MonthFigure(
            month=f.month,
            mode=f.mode,
            trips=f.trips,
            distance_m=f.distance_m,
            reduction_g=f.reduction_g,
            points=f.points,
        )
        for f in found.figures
    ]
    sums = {m: [0, 0, 0, 0] for m in found.months}
    for f in figures:
        row = sums[f.month]
        row[0] += f.trips
        row[1] += f.distance_m
        row[2] += f.reduction_g
        row[3] += f.points
    totals = [
        MonthTotal(month=m, trips=t, distance_m=d, reduction_g=g, points=p)
        for m, (t, d, g, p) in sums.items()
    ]
    return Monthly(months=figures, totals=totals, timezone=zone.key)


# --- data sources --------------------------------------------------------------------------


def _source(op: behaviours.OperatorInfo, link: behaviours.Link | None) -> DataSource:
    """The one builder of a ``DataSource`` (the list and the answer to a link agree)."""
    if link is None or link.revoked_at is not None:
        return DataSource(operator_id=op.id, name=op.name, kinds=[op.kind], scopes=op.scopes)
    return DataSource(
        operator_id=op.id,
        name=op.name,
        kinds=[op.kind],
        scopes=op.scopes,
        linked=True,
        scope=list(link.scope),
        subject_ref=link.subject_ref,
        linked_at=link.granted_at,
    )


async def data_sources(conn: Any, resident_id: str) -> list[DataSource]:
    """Operators the resident can link, with their links (the caller checked the resident)."""
    links = {ln.operator_id: ln for ln in await behaviours.resident_links(conn, resident_id)}
    return [_source(op, links.get(op.id)) for op in await behaviours.list_operators(conn)]


async def link(tx: Tx, resident_id: str, operator_id: str, scope: list[str]) -> DataSource:
    await residents.require_active(tx.conn, resident_id)
    ln = await behaviours.link_operator(tx, resident_id, operator_id, scope)
    log.info("operator linked", extra={"resident_id": resident_id, "operator_id": operator_id})
    [op] = [op for op in await behaviours.list_operators(tx.conn) if op.id == ln.operator_id]
    return _source(op, ln)


async def unlink(tx: Tx, resident_id: str, operator_id: str) -> None:
    await residents.require_active(tx.conn, resident_id)
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
    tx: Tx, policy: behaviours.IngestPolicy, resident_id: str, act: TrackActivity | StepsActivity
) -> Verdict:
    """Track checks first, then the behaviours pipeline. A track the checks refuse still goes
    through the pipeline, *prejudged*: stored as rejected with the first finding's code and
    message (so history shows it and why), never credited; a resend is a duplicate."""
    await residents.require_active(tx.conn, resident_id)
    event: CanonicalEvent
    measured: int | None = None
    findings: list[TrackFinding] = []
    prejudged: dict[str, tuple[str, str]] | None = None
    if isinstance(act, TrackActivity):
        ref = await policy.cache.get(tx.conn)
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
        tx, behaviours.app_source(resident_id), [event], policy=policy, prejudged=prejudged
    )
    # A duplicate repeats the first verdict, whose reason tells whether it was a rejection.
    rejected = v.status == "rejected" or (v.status == "duplicate" and v.reason_code is not None)
    return Verdict(
        event_id=v.event_id,
        status="rejected" if rejected else "accepted",
        reason_code=v.reason_code,
        reason=v.message,
        reduction_g=v.reduction_g,
        points=v.points,
        methodology_version=v.methodology_version,
        measured_distance_m=measured,
        findings=findings,
        duplicate=v.status == "duplicate",
    )


def verdict_view(v: Verdict, lang: Language) -> Verdict:
    """An activity's verdict with its messages in ``lang`` (after the idempotent replay, so a
    retry in another language reads its own)."""
    if lang == "en" or (v.reason_code is None and not v.findings):
        return v
    return msgspec.structs.replace(
        v,
        reason=verdict_message(lang, v.reason_code, v.reason),
        findings=[
            TrackFinding(code=f.code, message=verdict_message(lang, f.code, f.message) or "")
            for f in v.findings
        ],
    )


# --- export --------------------------------------------------------------------------------


def _day(at: datetime, zone: ZoneInfo) -> str:
    """``at``'s calendar day in the programme's time zone, ``YYYY-MM-DD``."""
    return at.astimezone(zone).date().isoformat()


async def export(
    conn: Any, resident_id: str, *, zone: ZoneInfo, lang: Language | None = None
) -> Export:
    """Everything kept about the resident; each activity and ledger entry with its ``day`` in
    the programme's time zone ``zone`` (times stay RFC 3339 with their offset)."""
    row = await residents.resident_row(conn, resident_id)
    items: list[ExportedEvent] = []
    cursor: str | None = None
    while True:
        page = await events.events_page(conn, resident_id, cursor=cursor, limit=500)
        items.extend(
            ExportedEvent(**msgspec.structs.asdict(_item(e, lang)), day=_day(e.occurred_at, zone))
            for e in page.items
        )
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
            ledger.extend(
                {"asset": asset, **msgspec.to_builtins(e), "day": _day(e.occurred_at, zone)}
                for e in spage.entries
            )
            if spage.next_cursor is None:
                break
            lcursor = spage.next_cursor
    bals = await points_service.balances(conn, "resident", resident_id)
    grams = int(next(b for b in bals if b.asset == "CO2E_G").posted)
    return Export(
        exported_at=datetime.now(UTC),
        timezone=zone.key,
        profile=await profile_view(conn, residents.profile_of(row, grams), lang or "en"),
        data_sources=[s for s in await data_sources(conn, resident_id) if s.linked],
        balances=[
            BalanceView(asset=b.asset, posted=b.posted, pending=b.pending, available=b.available)
            for b in bals
        ],
        history=items,
        ledger=ledger,
    )
