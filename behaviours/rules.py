"""Verification rules: each with a stable reason code (the table in docs/behaviours.md).

Events are first *normalised* into :class:`Item` (one shape for every kind: times, mode,
behaviour, distance, points, activity keys); the rules then run over lists of items in Python,
with everything they need from the database loaded beforehand, set-wise, by the pipeline.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from enum import StrEnum
from typing import Any, Literal, NamedTuple, cast, get_args

import msgspec

from behaviours.events import (
    BikeTrip,
    CanonicalEvent,
    DailySteps,
    MeterReading,
    RoutePoint,
    TransitTrip,
    VehicleMileage,
    Walk,
)
from behaviours.reference import Factor, Reference, haversine_m

TripKey = tuple[float, float, float, float]  # see trip_key()


class Reason(StrEnum):
    UNKNOWN_SUBJECT = "unknown_subject"
    CONSENT_REVOKED = "consent_revoked"
    SCOPE_NOT_GRANTED = "scope_not_granted"
    SCOPE_NOT_ALLOWED = "scope_not_allowed"
    BEFORE_CONSENT = "before_consent"
    INVALID_TIME_RANGE = "time_range_invalid"
    IN_FUTURE = "in_future"
    TOO_OLD = "too_old"
    NO_METHODOLOGY = "no_methodology"
    DISTANCE_UNKNOWN = "distance_unknown"
    DISTANCE_TOO_SHORT = "distance_too_short"
    DISTANCE_TOO_LONG = "distance_too_long"
    SPEED_IMPLAUSIBLE = "speed_implausible"
    OUTSIDE_REGION = "outside_region"
    REGION_NOT_CONFIGURED = "region_not_configured"
    OVERLAPPING_ACTIVITY = "overlapping_activity"
    CLAIM_OUTRANKED = "claim_outranked"
    SUPERSEDED_BY_SOURCE = "superseded_by_source"
    DISPLACEMENT_POINTS_SPENT = "displacement_points_spent"
    ALREADY_CREDITED = "activity_already_credited"
    STEPS_NOT_INCREASED = "steps_not_increased"
    RECORD_ID_REUSED = "record_id_reused"
    NO_REDUCTION = "no_reduction"
    DAILY_EVENTS_CAP = "daily_events_cap"
    DAILY_CAP_REACHED = "daily_cap_reached"
    YEARLY_CAP_REACHED = "yearly_cap_reached"


REASON_TEXT: dict[Reason, str] = {
    Reason.UNKNOWN_SUBJECT: "The subject is not linked to any resident of the programme.",
    Reason.CONSENT_REVOKED: "The resident revoked this operator's link.",
    Reason.SCOPE_NOT_GRANTED: "The resident's consent does not cover this behaviour.",
    Reason.SCOPE_NOT_ALLOWED: "This operator is not registered to report this behaviour.",
    Reason.BEFORE_CONSENT: "The activity happened before the resident linked this operator.",
    Reason.INVALID_TIME_RANGE: "The activity ends before it starts.",
    Reason.IN_FUTURE: "The activity ends in the future (beyond the allowed clock skew).",
    Reason.TOO_OLD: "The activity is older than the claim window.",
    Reason.NO_METHODOLOGY: "No methodology in force covers this mode at the activity's time.",
    Reason.DISTANCE_UNKNOWN: "No distance given and none derivable (unknown stops or route).",
    Reason.DISTANCE_TOO_SHORT: "The distance is below the minimum for the mode.",
    Reason.DISTANCE_TOO_LONG: "The distance is above the maximum for the mode.",
    Reason.SPEED_IMPLAUSIBLE: "The average speed is implausible for the mode.",
    Reason.OUTSIDE_REGION: "The activity starts or ends outside the programme's region.",
    Reason.REGION_NOT_CONFIGURED: (
        "The programme has no districts imported, so an activity with coordinates cannot be "
        "placed in its region; it is refused until the districts are imported."
    ),
    Reason.OVERLAPPING_ACTIVITY: (
        "The resident already has a credited trip overlapping this time (another source "
        "reported the same trip)."
    ),
    Reason.CLAIM_OUTRANKED: (
        "Another trip of the resident overlapping this time is credited instead: it comes from "
        "a more trusted source, or from an equally trusted one claiming a smaller reduction."
    ),
    Reason.SUPERSEDED_BY_SOURCE: (
        "A more trusted source (or an equally trusted, more conservative one) reported an "
        "overlapping trip later; it is credited instead, and this trip's credit was reversed."
    ),
    Reason.DISPLACEMENT_POINTS_SPENT: (
        "An overlapping trip from a less trusted source was already credited and its points "
        "were spent, so its credit cannot be reversed; this trip is not credited."
    ),
    Reason.ALREADY_CREDITED: "This meter period or vehicle period was already credited.",
    Reason.STEPS_NOT_INCREASED: "The day's step count is not above the count already credited.",
    Reason.RECORD_ID_REUSED: (
        "This record id was already used for a record with different content; nothing was "
        "credited. Give every new record a new id."
    ),
    Reason.NO_REDUCTION: "The activity avoided no emissions against its baseline.",
    Reason.DAILY_EVENTS_CAP: "The resident reached the most rewarded activities for the day.",
    Reason.DAILY_CAP_REACHED: "The resident reached the daily cap for this behaviour.",
    Reason.YEARLY_CAP_REACHED: "The resident reached the yearly cap for this behaviour.",
}

_TEXT_OF_CODE: dict[str, str] = {str(k): v for k, v in REASON_TEXT.items()}

# Rejections for want of the resident's consent: such a record is kept only as its verdict
# (operator, record id, reason, received time), never with its subject, times or places
# (migration 0022 checks it).
WITHOUT_CONSENT = frozenset(
    {
        Reason.UNKNOWN_SUBJECT,
        Reason.CONSENT_REVOKED,
        Reason.SCOPE_NOT_GRANTED,
        Reason.SCOPE_NOT_ALLOWED,
        Reason.BEFORE_CONSENT,
    }
)

BEHAVIOUR_OF_MODE = {
    "bus": "transit",
    "metro": "transit",
    "tram": "transit",
    "ferry": "transit",
    "shared_bike": "cycling",
    "e_bike": "cycling",
    "own_bike": "cycling",
    "walk": "walking",
    "steps": "walking",
    "electricity": "household",
    "gas": "household",
    "water": "household",
    "nev": "vehicle",
}
TRIP_KINDS = frozenset({"transit_trip", "bike_trip", "walk"})
# The behaviours, which are also the consent scopes residents grant and operators are registered
# for (operators.scopes).
Scope = Literal["transit", "cycling", "walking", "household", "vehicle"]
SCOPES: tuple[str, ...] = get_args(Scope)
assert set(BEHAVIOUR_OF_MODE.values()) == set(SCOPES)


class Item:
    """One event on its way through the pipeline (mutable, slot-based: hot path)."""

    __slots__ = (
        "account",
        "activity_key",
        "behaviour",
        "claim_g",
        "digest",
        "distance_m",
        "distance_source",
        "district",
        "end_pt",
        "ended_at",
        "event",
        "event_id",
        "factor",
        "household_size",
        "kind",
        "kwh",
        "message",
        "mode",
        "points",
        "pos",
        "quantity",
        "reason",
        "reduction_g",
        "resident_id",
        "start_pt",
        "started_at",
        "trip_key",
    )

    def __init__(self, pos: int, event: CanonicalEvent, zone: tzinfo) -> None:
        """``zone``: the programme's time zone (``IngestPolicy.zone``); a day's steps span
        that day there."""
        self._blank(pos, event)
        _normalise(self, event, zone)
        self.behaviour = BEHAVIOUR_OF_MODE[self.mode]

    @classmethod
    def stored(cls, row: Any, factor: Factor, reduction_g: int) -> Item:
        """A trip claim already stored (a ``repository.trip_claims`` row) that the resolution
        credits again: only the caps and the ledger see it, so it carries no event."""
        it = cls.__new__(cls)
        it._blank(-1, cast(CanonicalEvent, None))
        it.event_id = row["id"]
        it.resident_id = row["resident_id"]
        it.kind, it.mode, it.behaviour = row["kind"], row["mode"], row["behaviour"]
        it.started_at, it.ended_at = row["started_at"], row["ended_at"]
        it.distance_m, it.district = row["distance_m"], row["district_code"]
        it.factor, it.reduction_g = factor, reduction_g
        return it

    def _blank(self, pos: int, event: CanonicalEvent) -> None:
        self.pos = pos
        self.event = event
        self.event_id = ""
        self.resident_id: str | None = None
        self.reason: str | None = None  # a Reason, or a caller's own code (prejudged)
        self.message: str | None = None
        self.distance_m: int | None = None
        self.distance_source: str | None = None
        self.quantity: float | None = None
        self.account: str | None = None
        self.kwh = 0.0
        self.household_size = 1
        self.start_pt: tuple[float, float] | None = None  # (lon, lat)
        self.end_pt: tuple[float, float] | None = None
        self.district: str | None = None
        self.factor: Factor | None = None
        self.reduction_g = 0
        self.claim_g: int | None = None  # a trip's reduction before the caps (the resolution)
        self.points = 0
        self.trip_key: TripKey | None = None
        self.activity_key: str | None = None
        self.digest = b""  # content_digest(event), set by the pipeline
        self.kind = ""
        self.mode = ""
        self.started_at = _EPOCH
        self.ended_at = _EPOCH
        self.behaviour = ""

    @property
    def without_consent(self) -> bool:
        return self.reason in WITHOUT_CONSENT

    def reject(self, reason: Reason | str, message: str | None = None) -> None:
        if self.reason is None:
            reason = str(reason)
            self.reason = reason
            self.message = message or _TEXT_OF_CODE.get(reason, reason)

    @property
    def ok(self) -> bool:
        return self.reason is None


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _route_length(route: list[Any]) -> float:
    return sum(haversine_m(a.lat, a.lon, b.lat, b.lon) for a, b in itertools.pairwise(route))


def _normalise(it: Item, ev: CanonicalEvent, zone: tzinfo) -> None:
    if isinstance(ev, TransitTrip):
        it.kind, it.mode = "transit_trip", ev.mode
        it.started_at, it.ended_at = ev.boarded_at, ev.alighted_at
        if ev.distance_m is not None:
            it.distance_m, it.distance_source = ev.distance_m, "operator"
    elif isinstance(ev, BikeTrip | Walk):
        it.kind = "bike_trip" if isinstance(ev, BikeTrip) else "walk"
        it.mode = ev.mode if isinstance(ev, BikeTrip) else "walk"
        it.started_at, it.ended_at = ev.started_at, ev.ended_at
        it.start_pt, it.end_pt = (ev.start.lon, ev.start.lat), (ev.end.lon, ev.end.lat)
        if ev.distance_m is not None:
            it.distance_m, it.distance_source = ev.distance_m, "operator"
        elif ev.route and len(ev.route) > 1:
            it.distance_m, it.distance_source = int(_route_length(ev.route)), "route"
        else:
            # No route: the straight line, which never overstates the distance.
            it.distance_m = int(haversine_m(ev.start.lat, ev.start.lon, ev.end.lat, ev.end.lon))
            it.distance_source = "straight_line"
    elif isinstance(ev, DailySteps):
        it.kind, it.mode = "daily_steps", "steps"
        # From midnight to the next midnight there (a day of daylight saving is 23 or 25
        # hours long), in UTC: arithmetic on two times of one zone object is wall-clock time.
        it.started_at = datetime.combine(ev.day, time(0), tzinfo=zone).astimezone(UTC)
        next_day = ev.day + timedelta(days=1)
        it.ended_at = datetime.combine(next_day, time(0), tzinfo=zone).astimezone(UTC)
        it.quantity = float(ev.steps)
    elif isinstance(ev, MeterReading):
        it.kind, it.mode = "meter_reading", ev.utility
        it.started_at, it.ended_at = ev.period_start, ev.period_end
        it.quantity, it.account, it.household_size = ev.quantity, ev.account, ev.household_size
    elif isinstance(ev, VehicleMileage):
        it.kind, it.mode = "ev_mileage", "nev"
        it.started_at, it.ended_at = ev.period_start, ev.period_end
        it.quantity, it.kwh, it.account = ev.km, ev.kwh, ev.vehicle


def check_times(items: list[Item], now: datetime, skew_s: int, window_days: int) -> None:
    latest = now + timedelta(seconds=skew_s)
    oldest = now - timedelta(days=window_days)
    for it in items:
        if not it.ok:
            continue
        if it.ended_at < it.started_at:
            it.reject(Reason.INVALID_TIME_RANGE)
        elif (it.ended_at > latest and it.kind != "daily_steps") or (
            it.kind == "daily_steps" and it.started_at > latest
        ):
            it.reject(Reason.IN_FUTURE)
        elif it.ended_at < oldest:
            it.reject(Reason.TOO_OLD, f"The activity is older than the {window_days}-day window.")


def attach_methodology(items: list[Item], ref: Reference) -> None:
    for it in items:
        if it.ok:
            it.factor = ref.methodologies.factor(it.mode, it.started_at)
            if it.factor is None:
                it.reject(Reason.NO_METHODOLOGY)


# distance_source of a transit trip's credited distance (stored with the event):
#   gtfs        no distance claimed: the in-vehicle distance along the GTFS shape
#   operator    the claim, checked: within the tolerance of the GTFS distance (or below it)
#   gtfs_clipped  the claim exceeded the GTFS distance by more than the tolerance: clipped to it
#   unverified  no stops or shape to check the claim: credited as claimed, at most the mode's
#               typical trip length
#   typical_cap the same, the claim being longer than that: credited as the typical length
UNVERIFIED = "unverified"


def derive_transit(
    items: list[Item], ref: Reference, feed: str | None, tolerance: float = 0.2
) -> None:
    """Coordinates and distances of transit trips, checked against the evidence.

    Coordinates: the trip's boarding / alighting points, else its named stops' (the region
    check and district attribution use them). Distance: the in-vehicle distance along the GTFS
    shape between the named stops is the evidence; a claim more than ``tolerance`` above it is
    clipped to it (``gtfs_clipped``, with a note). A claim nothing can check is marked
    ``unverified`` (capped later by :func:`cap_unverified`, after the speed check has judged
    the claim itself)."""
    net = ref.networks.get(feed) if feed else None
    if net is None and len(ref.networks) == 1:
        net = next(iter(ref.networks.values()))
    for it in items:
        ev = it.event
        if not it.ok or not isinstance(ev, TransitTrip):
            continue
        evidence = None
        board = alight = None
        if net is not None and ev.boarding_stop and ev.alighting_stop:
            board = net.stops.get(ev.boarding_stop)
            alight = net.stops.get(ev.alighting_stop)
            evidence = net.distance_m(
                ev.boarding_stop, ev.alighting_stop, ev.route_id, ev.gtfs_trip_id
            )
        start = (ev.boarding_point.lon, ev.boarding_point.lat) if ev.boarding_point else board
        end = (ev.alighting_point.lon, ev.alighting_point.lat) if ev.alighting_point else alight
        it.start_pt, it.end_pt = (start, end) if start is not None else (end, None)
        claimed = it.distance_m
        if evidence is not None:
            if claimed is None:
                it.distance_m, it.distance_source = evidence, "gtfs"
            elif claimed > evidence * (1 + tolerance):
                it.distance_m, it.distance_source = evidence, "gtfs_clipped"
                it.message = (
                    f"Distance clipped to {evidence} m, the in-vehicle distance along the route "
                    f"between the stops (claimed {claimed} m, more than {tolerance:.0%} above)."
                )
        elif claimed is not None:
            it.distance_source = UNVERIFIED
        if it.distance_m is None:
            it.reject(Reason.DISTANCE_UNKNOWN)


def cap_unverified(items: list[Item]) -> None:
    """Transit trips whose claimed distance no stops or shape could check: credited at most
    the mode's typical trip length (the methodology's ``typical_trip_m``; conservativeness: an
    unverifiable claim earns no more than a typical ride). Marked by ``distance_source``
    (``unverified``, ``typical_cap``); a capped one also with a note the resident reads."""
    for it in items:
        f = it.factor
        if not it.ok or it.distance_source != UNVERIFIED or f is None or it.distance_m is None:
            continue
        typical = f.typical_trip_m
        if typical is not None and it.distance_m > typical:
            it.message = (
                f"Distance not verifiable (no known stops or route): credited as the typical "
                f"{it.mode} trip of {typical} m instead of the claimed {it.distance_m} m."
            )
            it.distance_m, it.distance_source = typical, "typical_cap"


def check_distance_speed(items: list[Item]) -> None:
    for it in items:
        f = it.factor
        if not it.ok or f is None or it.kind not in TRIP_KINDS or it.distance_m is None:
            continue
        if f.min_distance_m is not None and it.distance_m < f.min_distance_m:
            it.reject(
                Reason.DISTANCE_TOO_SHORT,
                f"{it.distance_m} m is below the {f.min_distance_m} m minimum for {it.mode}.",
            )
        elif f.max_distance_m is not None and it.distance_m > f.max_distance_m:
            it.reject(
                Reason.DISTANCE_TOO_LONG,
                f"{it.distance_m} m is above the {f.max_distance_m} m maximum for {it.mode}.",
            )
        elif f.max_speed_kmh is not None:
            seconds = (it.ended_at - it.started_at).total_seconds()
            kmh = it.distance_m / 1000 / (seconds / 3600) if seconds > 0 else float("inf")
            if kmh > f.max_speed_kmh:
                shown = "instantaneous" if seconds <= 0 else f"{kmh:.1f} km/h"
                it.reject(
                    Reason.SPEED_IMPLAUSIBLE,
                    f"Average speed {shown} is above {f.max_speed_kmh:g} km/h for {it.mode}.",
                )


def attribute_districts(items: list[Item], ref: Reference, homes: dict[str, str | None]) -> None:
    """District of each start point; outside every district -> ``outside_region``; no
    districts imported at all -> ``region_not_configured`` (a programme that cannot tell where
    a trip was credits none with coordinates). Items without a location take the resident's
    home district (the caller's default otherwise)."""
    located = [it for it in items if it.ok and it.start_pt is not None]
    if ref.districts.empty:
        for it in located:
            it.reject(Reason.REGION_NOT_CONFIGURED)
    elif located:
        lons = [p[0] for it in located for p in (it.start_pt, it.end_pt or it.start_pt) if p]
        lats = [p[1] for it in located for p in (it.start_pt, it.end_pt or it.start_pt) if p]
        found = ref.districts.locate(lons, lats)
        for i, it in enumerate(located):
            start, end = found[2 * i], found[2 * i + 1]
            if start is None or end is None:
                it.reject(Reason.OUTSIDE_REGION)
            else:
                it.district = start
    for it in items:
        if it.ok and it.district is None and it.resident_id is not None:
            it.district = homes.get(it.resident_id)


_digest_encoder = msgspec.json.Encoder()


def content_digest(ev: CanonicalEvent) -> bytes:
    """SHA-256 of the record's canonical form: the decoded event encoded again as JSON (fields
    in schema order, absent optional fields as null), its times in UTC. The same record read
    from an NDJSON line, a CSV row or an API batch has the same digest."""
    changes: dict[str, Any] = {}
    try:
        for name in ev.__struct_fields__:
            t = getattr(ev, name)
            if isinstance(t, datetime) and t.utcoffset():
                changes[name] = t.astimezone(UTC)
        route = getattr(ev, "route", None)
        if route and any(p.t.utcoffset() for p in route):
            changes["route"] = [
                RoutePoint(lat=p.lat, lon=p.lon, t=p.t.astimezone(UTC)) for p in route
            ]
    except OverflowError:  # a time at the edge of the calendar: as sent
        changes = {}
    if changes:
        ev = msgspec.structs.replace(ev, **changes)
    raw = _digest_encoder.encode(ev)
    if isinstance(ev, TransitTrip) and ev.boarding_point is None and ev.alighting_point is None:
        # Without the optional points (added later): the form the record had before they
        # existed, so a record stored earlier keeps its digest. The bytes cannot occur inside
        # a string value (its quotes would be escaped), so the one match is the fields'.
        raw = raw.replace(_NO_POINTS, b"", 1)
    return hashlib.sha256(raw).digest()


_NO_POINTS = b',"boarding_point":null,"alighting_point":null'


def programme_day(at: datetime, zone: tzinfo) -> date:
    """The calendar day of ``at`` in the programme's time zone (``IngestPolicy.zone``): the
    day of the daily caps and of the daily steps. Never the machine's zone."""
    return at.astimezone(zone).date()


_KEY_EPOCH = 1_577_836_800  # 2020-01-01T00:00:00Z


def trip_key(seq: int, started_at: datetime, ended_at: datetime) -> TripKey:
    """The box (x1, y1, x2, y2) of migration 0021: x = [start, end - 1] whole seconds since
    2020, y = the resident's sequence number. Two trips of one person overlap exactly when
    their boxes (closed) intersect; different residents' boxes never do."""
    start = int(started_at.timestamp()) - _KEY_EPOCH
    end = max(int(ended_at.timestamp()) - _KEY_EPOCH, start + 1)
    return float(start), float(seq), float(end - 1), float(seq)


# --- overlapping trip claims: one rule, whatever the order (docs/behaviours.md) ---------------


class Claim(NamedTuple):
    """One trip claim as the resolution sees it. ``start`` / ``end``: whole seconds, as
    :func:`trip_key` counts them (``end`` exclusive, at least ``start + 1``), so two claims
    overlap here exactly when the exclusion constraint would refuse both credited."""

    ref: str  # the caller's identity of the claim (the event id)
    resident: str
    start: int
    end: int
    trust: int  # the source's tier: 0 is the most trusted (IngestSettings.source_ranking)
    grams: int  # the claim's reduction before the caps
    digest: bytes  # content_digest of the record
    operator: str
    record_id: str
    mode: str


def claim_span(started_at: datetime, ended_at: datetime) -> tuple[int, int]:
    """(start, end) whole seconds of a trip, as :func:`trip_key` and :class:`Claim` count."""
    start = int(started_at.timestamp())
    return start, max(int(ended_at.timestamp()), start + 1)


def claim_rank(c: Claim) -> tuple[int, int, bytes, str, str]:
    """The total order of claims, best first: the more trusted source, then the smaller
    reduction (conservativeness), then the smaller content digest; (operator, record id), unique
    per record, only orders two records of identical content. Never arrival order or event id."""
    return (c.trust, c.grams, c.digest, c.operator, c.record_id)


def resolve(claims: Iterable[Claim], pinned: frozenset[str] = frozenset()) -> dict[str, str | None]:
    """Which claims are credited: ``ref -> None`` for a credited claim, else the ref of the
    best credited claim it overlaps (the one holding its time).

    Greedy over the total order :func:`claim_rank`: a claim is credited when it overlaps no
    better claim already credited. It depends only on the *set* of claims, so any order of
    arrival, any split into batches and any interleaving of concurrent streams that ends with
    the same set ends with the same credits. An overlap chain (A overlaps B, B overlaps C, A
    not C) is settled by the same walk: with B best, B alone; with A best, A and then C unless
    C overlaps something better. Every credited claim is better than each claim it excludes,
    so a low-trust claim can never take a credit from a better one.

    ``pinned``: claims credited first whatever their rank (stored credits that cannot be
    reversed, their points having been spent: the ledger's policy)."""
    out: dict[str, str | None] = {}
    chosen: dict[str, list[Claim]] = {}
    for c in sorted(claims, key=lambda c: (c.ref not in pinned, claim_rank(c))):
        held = chosen.setdefault(c.resident, [])
        holder = next((h for h in held if h.start < c.end and c.start < h.end), None)
        if holder is None:
            held.append(c)
            out[c.ref] = None
        else:
            out[c.ref] = holder.ref
    return out
