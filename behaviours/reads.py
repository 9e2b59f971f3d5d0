"""Reads of a resident's events that behaviours publishes (the mobile history, one event, the
monthly figures). Read-only; the SQL is behaviours/repository.py's (its last section). Callers
check that the resident exists (``residents.service``); these reads only ever return the
resident's own events."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

import msgspec
from msgspec import Meta

from behaviours import repository as repo
from behaviours.rules import TRIP_KINDS
from kit import cursor as cursors


class EventView(msgspec.Struct, kw_only=True):
    """One event as its resident sees it, with its verdict."""

    event_id: str
    kind: str
    mode: str | None = None
    status: str
    occurred_at: datetime
    recorded_at: datetime | None = None
    operator_id: str | None = None
    distance_m: int | None = None
    reduction_g: int = 0
    points: int = 0
    methodology_version: str | None = None
    reason_code: str | None = None
    reason: str | None = None


class EventPage(msgspec.Struct, frozen=True):
    items: list[EventView]
    next_cursor: str | None  # None at the end


class MonthFigures(msgspec.Struct, frozen=True):
    month: Annotated[str, Meta(pattern=r"^[0-9]{4}-[0-9]{2}$")]  # programme month, YYYY-MM
    mode: str
    trips: int
    distance_m: int
    reduction_g: int
    points: int


class Monthly(msgspec.Struct, frozen=True):
    """The last N calendar months of the programme's time zone, newest first (every one of
    them, with or without events), and the accepted events' figures per month and mode (only
    the pairs that have events; newest month first, then by mode)."""

    months: list[str]  # YYYY-MM
    figures: list[MonthFigures]


def last_months(now: datetime, zone: ZoneInfo, n: int) -> list[tuple[int, int]]:
    """(year, month) of the ``n`` calendar months ending with ``now``'s in ``zone``, newest
    first."""
    local = now.astimezone(zone)
    index = local.year * 12 + local.month - 1
    return [divmod(i, 12) for i in range(index, index - n, -1)]


def _month_start(year: int, month0: int, zone: ZoneInfo) -> datetime:
    """The first instant of the month (``month0``: 0 to 11) in ``zone``, in UTC."""
    year, month0 = year + month0 // 12, month0 % 12
    return datetime(year, month0 + 1, 1, tzinfo=zone).astimezone(UTC)


class _Position(msgspec.Struct, frozen=True):
    """A history cursor: the last (history_at, id) seen. Field names are the published
    cursors' (``{"s": ..., "i": ...}``): cursors given out before keep decoding."""

    s: datetime
    i: str


def _after(cursor: str) -> tuple[datetime, str]:
    pos = cursors.decode(cursor, _Position)
    try:
        uuid.UUID(pos.i)
    except ValueError:
        raise cursors.invalid() from None
    if pos.s.tzinfo is None:
        raise cursors.invalid()
    return pos.s, pos.i


def _view(row: Any) -> EventView:
    return EventView(
        event_id=row["event_id"],
        kind=row["kind"],
        mode=row["mode"],
        status=row["status"],
        occurred_at=row["occurred_at"],
        recorded_at=row["recorded_at"],
        operator_id=row["operator_id"],
        distance_m=row["distance_m"],
        reduction_g=row["reduction_g"],
        points=row["points"],
        methodology_version=row["methodology_version"],
        reason_code=row["reason_code"],
        reason=row["reason"],
    )


async def events_page(
    conn: Any,
    resident_id: str,
    *,
    kind: str | None = None,
    status: str | None = None,
    cursor: str | None = None,
    limit: int = 20,
) -> EventPage:
    """The resident's events, newest first by history time (the reported start, or the receipt
    when that is earlier), keyset-paginated on (history time, id): ties are never skipped.
    ``cursor`` is a ``next_cursor`` of an earlier page (``CursorInvalid`` otherwise)."""
    before = _after(cursor) if cursor else None
    rows = await repo.events_page(
        conn, resident_id, kind=kind, status=status, before=before, limit=limit + 1
    )
    page = rows[:limit]
    more = len(rows) > limit
    last = page[-1] if page else None
    return EventPage(
        items=[_view(r) for r in page],
        next_cursor=(
            cursors.encode(_Position(last["history_at"], last["event_id"]))
            if more and last is not None
            else None
        ),
    )


async def event(conn: Any, resident_id: str, event_id: str) -> EventView | None:
    """One of the resident's events; None when the id is not one of theirs (or not an id)."""
    try:
        uuid.UUID(event_id)
    except ValueError:
        return None
    row = await repo.event_view(conn, resident_id, event_id)
    return None if row is None else _view(row)


async def monthly(
    conn: Any, resident_id: str, *, months: int, zone: ZoneInfo, now: datetime | None = None
) -> Monthly:
    """The resident's accepted events in the last ``months`` calendar months of the
    programme's time zone ``zone`` (the current one included; a month starts at midnight on
    its first day there), per month and mode. Never the machine's zone: ``now`` is aware."""
    calendar = last_months(now or datetime.now(UTC), zone, months)
    newest, oldest = calendar[0], calendar[-1]
    since = _month_start(oldest[0], oldest[1], zone)
    until = _month_start(newest[0], newest[1] + 1, zone)
    figures = [
        MonthFigures(
            month=r["month"],
            mode=r["mode"],
            trips=int(r["trips"]),
            distance_m=int(r["distance_m"]),
            reduction_g=int(r["reduction_g"]),
            points=int(r["points"]),
        )
        for r in await repo.events_monthly(conn, resident_id, since, until, zone.key)
    ]
    return Monthly(months=[f"{y:04d}-{m + 1:02d}" for y, m in calendar], figures=figures)


class TravelCell(msgspec.Struct, frozen=True, kw_only=True):
    """Accepted events of one period and cell of district x mode x methodology; ``None`` in a
    dimension means "all" (a margin). ``participants``: distinct residents of the cell."""

    period: date  # the first day of the period, in the programme's calendar
    district: str | None  # 'unknown': events without a district
    mode: str | None
    methodology: str | None  # '<code>@<version>'
    trips: int  # trip events (transit, bike, walk)
    participants: int
    grams: int  # verified reduction credited
    points: int


async def travel_cube(
    conn: Any,
    *,
    unit: Literal["day", "month", "year"],
    since: datetime,
    until: datetime,
    timezone: str,
) -> list[TravelCell]:
    """Accepted events started in [since, until) per ``unit`` of the calendar in ``timezone``,
    with every margin (district, mode, methodology) in one set-wise statement
    (reporting's rollups read this; never events)."""
    rows = await repo.travel_cube(conn, unit, since, until, timezone, sorted(TRIP_KINDS))
    return [
        TravelCell(
            period=r["period"],
            district=None if r["all_districts"] else r["district"],
            mode=None if r["all_modes"] else r["mode"],
            methodology=None if r["all_methodologies"] else r["methodology"],
            trips=int(r["trips"]),
            participants=int(r["participants"]),
            grams=int(r["grams"]),
            points=int(r["points"]),
        )
        for r in rows
    ]
