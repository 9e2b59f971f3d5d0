"""Canonical behaviour events: the one shape every source is turned into.

A tagged union on ``type``; each event carries the operator's own ``record_id`` (unique per
operator: the idempotency key of the record) and ``subject``, the operator's pseudonymous
reference of the resident (created when the resident links the operator). Times are RFC 3339
with an offset. Operators' daily files (CSV, NDJSON) are turned into these by
``behaviours.records`` (the formats themselves: ``integrations.operator_records``).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Literal

import msgspec
from msgspec import Meta, Struct

from behaviours.errors import InvalidRecords
from kit.errors import FieldError

# Every text field is bounded and free of NUL (PostgreSQL refuses NUL in text: it must be a
# validation error here, not a database error later). The mobile API's schemas use the same.
NO_NUL = r"^[^\x00]*$"
RecordId = Annotated[str, Meta(min_length=1, max_length=128, pattern=NO_NUL)]
SubjectRef = Annotated[str, Meta(min_length=1, max_length=128, pattern=NO_NUL)]
AwareDatetime = Annotated[datetime, Meta(tz=True)]
Lat = Annotated[float, Meta(ge=-90, le=90)]
Lon = Annotated[float, Meta(ge=-180, le=180)]
Meters = Annotated[int, Meta(ge=0, le=10_000_000)]
ShortText = Annotated[str, Meta(min_length=1, max_length=128, pattern=NO_NUL)]

# Times and days must lie in [1970-01-01, 3000-01-01) UTC. Python's datetime stops at years 1 and
# 9999: "9999-12-31T23:59:59-05:00" has no UTC form at all, and the rules' arithmetic (a day
# later, two years earlier, the programme's time zone) overflowed on the edges: an OverflowError,
# a 500. Checked where the Structs are built (decoding calls ``__post_init__``; its ValueError
# is a ValidationError with the record's path).
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(3000, 1, 1, tzinfo=UTC)
TIME_RANGE = "1970-01-01 to 2999-12-31 (UTC)"


def check_times(*values: datetime | date | None) -> None:
    """Raise ``ValueError`` unless every time (aware) or day lies within :data:`TIME_RANGE`."""
    for value in values:
        if value is None:
            continue
        if isinstance(value, datetime):
            ok = EARLIEST <= value < LATEST  # aware comparisons never overflow
        else:
            ok = EARLIEST.date() <= value < LATEST.date()
        if not ok:
            raise ValueError(f"times must lie within {TIME_RANGE}")


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

    def __post_init__(self) -> None:
        check_times(self.t)


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
    # Where the resident boarded and alighted (the validator's or the phone's position), when
    # the operator knows it: the region check and district attribution use these, else the
    # named stops' coordinates. Last in the struct: content_digest leaves them out when absent,
    # so a record's digest is the one it had before these fields existed.
    boarding_point: Point | None = None
    alighting_point: Point | None = None

    def __post_init__(self) -> None:
        check_times(self.boarded_at, self.alighted_at)


class BikeTrip(_Event, frozen=True, tag="bike_trip"):
    """A ride on a shared bike, e-bike or own bike (MDS-style: start/end, optional route)."""

    mode: BikeMode
    started_at: AwareDatetime
    ended_at: AwareDatetime
    start: Point
    end: Point
    distance_m: Meters | None = None
    route: list[RoutePoint] | None = None

    def __post_init__(self) -> None:
        check_times(self.started_at, self.ended_at)


class Walk(_Event, frozen=True, tag="walk"):
    """A tracked walk (navigation on)."""

    started_at: AwareDatetime
    ended_at: AwareDatetime
    start: Point
    end: Point
    distance_m: Meters | None = None
    route: list[RoutePoint] | None = None

    def __post_init__(self) -> None:
        check_times(self.started_at, self.ended_at)


class DailySteps(_Event, frozen=True, tag="daily_steps"):
    """A day's step count from the phone or a wearable."""

    day: date
    steps: Annotated[int, Meta(ge=0, le=200_000)]

    def __post_init__(self) -> None:
        check_times(self.day)


class MeterReading(_Event, frozen=True, tag="meter_reading"):
    """Household consumption over a period, by utility account (Green Button-style)."""

    utility: Utility
    account: ShortText
    period_start: AwareDatetime
    period_end: AwareDatetime
    # kWh for electricity, m³ for gas and water; bounded (unbounded, 1.7e308 was accepted and
    # carried into the reduction's arithmetic).
    quantity: Annotated[float, Meta(ge=0, le=1_000_000)]
    household_size: Annotated[int, Meta(ge=1, le=20)] = 1

    def __post_init__(self) -> None:
        check_times(self.period_start, self.period_end)


class VehicleMileage(_Event, frozen=True, tag="ev_mileage"):
    """A new-energy vehicle's distance and energy over a period."""

    vehicle: ShortText
    period_start: AwareDatetime
    period_end: AwareDatetime
    km: Annotated[float, Meta(ge=0, le=100_000)]
    kwh: Annotated[float, Meta(ge=0, le=100_000)]

    def __post_init__(self) -> None:
        check_times(self.period_start, self.period_end)


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
    """The answer for one record. ``duplicate`` repeats the first verdict's figures.

    ``methodology_version``: the methodology the event was quantified with and its version,
    ``"<code>@<version>"`` as stored with the event (None when none applied), so no caller
    reads the event back for it."""

    record_id: str
    status: VerdictStatus
    event_id: str | None = None
    reduction_g: int = 0
    points: int = 0
    reason_code: str | None = None
    message: str | None = None
    methodology_version: str | None = None


class BatchResult(Struct, frozen=True):
    accepted: int
    duplicates: int
    rejected: int
    results: list[Verdict]


batch_decoder = msgspec.json.Decoder(EventBatch)


def decode_batch(body: bytes) -> EventBatch:
    """The operator batch body, strictly decoded; anything else is ``records_invalid`` (400):
    a schema mismatch with the path of the first error, bytes that are not JSON (invalid UTF-8
    included) or JSON nested deeper than msgspec follows."""
    try:
        return batch_decoder.decode(body)
    except msgspec.ValidationError as exc:
        message, _, path = str(exc).partition(" - at `")
        raise InvalidRecords(
            "The batch does not match the event schema; nothing was stored.",
            errors=[FieldError(path=path.rstrip("`") or "$", message=message)],
        ) from None
    except msgspec.DecodeError as exc:
        raise InvalidRecords(f"The body is not valid JSON: {exc}") from None
    except (UnicodeDecodeError, RecursionError):
        raise InvalidRecords("The body is not valid JSON (UTF-8, not nested too deep).") from None


event_decoder: msgspec.json.Decoder[CanonicalEvent] = msgspec.json.Decoder(CanonicalEvent)
