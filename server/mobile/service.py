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
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec

import behaviours.service as behaviours
import points.service as points_service
import residents.service as residents
from behaviours import reads as events
from behaviours.events import BikeTrip, CanonicalEvent, DailySteps, Point, RoutePoint, Walk
from behaviours.tracks import Fix, check_track
from kit.db import Tx
from kit.errors import NotFound
from residents.settings import ResidentsConfig
from server.mobile.schemas import (
    BalanceView,
    DataSource,
    Export,
    HistoryItem,
    HistoryPage,
    Leaderboard,
    LeaderboardEntry,
    Levels,
    MonthFigure,
    Monthly,
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


# --- reads ---------------------------------------------------------------------------------


async def summary(conn: Any, redis: Any, resident_id: str, family_id: str | None) -> Summary:
    """Two SQL statements and one Redis pipeline (``residents.standing``)."""
    s = await residents.standing(conn, redis, resident_id, family_id)
    return Summary(
        total_reduction_g=s.ledger.grams,
        points_available=s.ledger.points_available,
        points_pending=s.ledger.points_pending,
        points_expiring_30d=s.ledger.points_expiring,
        district_code=s.district_code,
        district_rank=s.district_rank,
        district_residents=s.district_residents,
        level=s.level,
        next_level=s.next_level,
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
    )


async def levels(conn: Any, resident_id: str) -> Levels:
    await residents.require_active(conn, resident_id)
    return Levels(levels=list(residents.levels()))


def _item(e: events.EventView) -> HistoryItem:
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
        reason=e.reason,
    )


async def history(
    conn: Any,
    resident_id: str,
    *,
    kind: str | None,
    status: str | None,
    cursor: str | None,
    limit: int,
) -> HistoryPage:
    """A page of the resident's events (behaviours.reads: keyset on (history time, id))."""
    await residents.require_active(conn, resident_id)
    page = await events.events_page(
        conn, resident_id, kind=kind, status=status, cursor=cursor, limit=limit
    )
    return HistoryPage(items=[_item(e) for e in page.items], next_cursor=page.next_cursor)


async def history_item(conn: Any, resident_id: str, event_id: str) -> HistoryItem:
    await residents.require_active(conn, resident_id)
    found = await events.event(conn, resident_id, event_id)
    if found is None:
        raise NotFound("No such event among yours.")
    return _item(found)


async def monthly(conn: Any, resident_id: str, months: int) -> Monthly:
    await residents.require_active(conn, resident_id)
    now = datetime.now(UTC)
    since = (now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)) - timedelta(
        days=31 * (months - 1) + 1
    )
    figures = [
        MonthFigure(
            month=f.month,
            mode=f.mode,
            trips=f.trips,
            distance_m=f.distance_m,
            reduction_g=f.reduction_g,
            points=f.points,
        )
        for f in await events.monthly(conn, resident_id, since)
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


# --- export --------------------------------------------------------------------------------


async def export(conn: Any, resident_id: str) -> Export:
    row = await residents.resident_row(conn, resident_id)
    items: list[HistoryItem] = []
    cursor: str | None = None
    while True:
        page = await events.events_page(conn, resident_id, cursor=cursor, limit=500)
        items.extend(_item(e) for e in page.items)
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
    grams = int(next(b for b in bals if b.asset == "CO2E_G").posted)
    return Export(
        exported_at=datetime.now(UTC),
        profile=residents.profile_of(row, grams),
        data_sources=[s for s in await data_sources(conn, resident_id) if s.linked],
        balances=[
            BalanceView(asset=b.asset, posted=b.posted, pending=b.pending, available=b.available)
            for b in bals
        ],
        history=items,
        ledger=ledger,
    )
