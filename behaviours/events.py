"""Canonical behaviour events: the one shape every source is turned into.

A tagged union on ``type``; each event carries the operator's own ``record_id`` (unique per
operator: the idempotency key of the record) and ``subject``, the operator's pseudonymous
reference of the resident (created when the resident links the operator). Times are RFC 3339
with an offset. Operators' other formats (CSV, NDJSON files) are turned into these by
``integrations.operator_records``.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

import msgspec
from msgspec import Meta, Struct

RecordId = Annotated[str, Meta(min_length=1, max_length=128)]
SubjectRef = Annotated[str, Meta(min_length=1, max_length=128)]
AwareDatetime = Annotated[datetime, Meta(tz=True)]
Lat = Annotated[float, Meta(ge=-90, le=90)]
Lon = Annotated[float, Meta(ge=-180, le=180)]
Meters = Annotated[int, Meta(ge=0, le=10_000_000)]
ShortText = Annotated[str, Meta(min_length=1, max_length=128)]

TransitMode = Literal["bus", "metro", "tram", "ferry"]
BikeMode = Literal["shared_bike", "e_bike", "own_bike"]
Utility = Literal["electricity", "gas", "water"]


class Point(Struct, frozen=True, forbid_unknown_fields=True):
    lat: Lat
    lon: Lon


class RoutePoint(Struct, frozen=True, forbid_unknown_fields=True):
    lat: Lat
    lon: Lon
    t: AwareDatetime


class _Event(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, tag_field="type"):
    record_id: RecordId
    subject: SubjectRef


class TransitTrip(_Event, frozen=True, tag="transit_trip"):
    """A ride on public transport, from tap-on to tap-off."""

    mode: TransitMode
    boarded_at: AwareDatetime
    alighted_at: AwareDatetime
    boarding_stop: ShortText | None = None
    alighting_stop: ShortText | None = None
    route_id: ShortText | None = None
    gtfs_trip_id: ShortText | None = None
    distance_m: Meters | None = None  # when the operator knows it; else GTFS shape distance


class BikeTrip(_Event, frozen=True, tag="bike_trip"):
    """A ride on a shared bike, e-bike or own bike (MDS-style: start/end, optional route)."""

    mode: BikeMode
    started_at: AwareDatetime
    ended_at: AwareDatetime
    start: Point
    end: Point
    distance_m: Meters | None = None
    route: list[RoutePoint] | None = None


class Walk(_Event, frozen=True, tag="walk"):
    """A tracked walk (navigation on)."""

    started_at: AwareDatetime
    ended_at: AwareDatetime
    start: Point
    end: Point
    distance_m: Meters | None = None
    route: list[RoutePoint] | None = None


class DailySteps(_Event, frozen=True, tag="daily_steps"):
    """A day's step count from the phone or a wearable."""

    day: date
    steps: Annotated[int, Meta(ge=0, le=200_000)]


class MeterReading(_Event, frozen=True, tag="meter_reading"):
    """Household consumption over a period, by utility account (Green Button-style)."""

    utility: Utility
    account: ShortText
    period_start: AwareDatetime
    period_end: AwareDatetime
    quantity: Annotated[float, Meta(ge=0)]  # kWh for electricity, m³ for gas and water
    household_size: Annotated[int, Meta(ge=1, le=20)] = 1


class VehicleMileage(_Event, frozen=True, tag="ev_mileage"):
    """A new-energy vehicle's distance and energy over a period."""

    vehicle: ShortText
    period_start: AwareDatetime
    period_end: AwareDatetime
    km: Annotated[float, Meta(ge=0, le=100_000)]
    kwh: Annotated[float, Meta(ge=0, le=100_000)]


CanonicalEvent = TransitTrip | BikeTrip | Walk | DailySteps | MeterReading | VehicleMileage


class EventBatch(Struct, frozen=True, forbid_unknown_fields=True):
    """The operator batch body: ``{"events": [...]}``."""

    events: list[CanonicalEvent]


class Source(Struct, frozen=True):
    """Who sends the events. Operators' subjects are resolved through residents' links; the
    resident's own app (``resident_id`` set) sends the resident's events directly."""

    operator_id: str
    resident_id: str | None = None


VerdictStatus = Literal["accepted", "duplicate", "rejected"]


class Verdict(Struct, frozen=True):
    """The answer for one record. ``duplicate`` repeats the first verdict's figures."""

    record_id: str
    status: VerdictStatus
    event_id: str | None = None
    reduction_g: int = 0
    points: int = 0
    reason_code: str | None = None
    message: str | None = None


class BatchResult(Struct, frozen=True):
    accepted: int
    duplicates: int
    rejected: int
    results: list[Verdict]


batch_decoder = msgspec.json.Decoder(EventBatch)
event_decoder: msgspec.json.Decoder[CanonicalEvent] = msgspec.json.Decoder(CanonicalEvent)
