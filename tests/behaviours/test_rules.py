"""The verification rules without a database: items built from canonical events, reference data
built in memory (methodologies, districts from the test GeoJSON)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from behaviours.events import BikeTrip, DailySteps, Point, TransitTrip, Walk
from behaviours.reference import Districts, Factor, Methodologies, Reference
from behaviours.rules import (
    Item,
    Reason,
    attach_methodology,
    attribute_districts,
    check_distance_speed,
    check_times,
    content_digest,
    programme_day,
    trip_key,
)
from integrations.districts import read_districts_file
from tests.behaviours.factories import DATA

ZONE = ZoneInfo("Asia/Shanghai")  # the programme's time zone (the default setting)
NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
SINCE = datetime(2020, 1, 1, tzinfo=UTC)


def factor(mode: str, behaviour: str, unit: str = "pkm", **kw: object) -> Factor:
    values: dict[str, object] = {
        "code": "low-carbon-travel",
        "version": 1,
        "mode": mode,
        "behaviour": behaviour,
        "unit": unit,
        "factor_g": 50.0,
        "project_g_per_kwh": None,
        "min_distance_m": 500,
        "max_distance_m": 50_000,
        "max_speed_kmh": 120.0,
        "effective_from": SINCE,
        "effective_to": None,
    }
    values.update(kw)
    return Factor(**values)  # type: ignore[arg-type]


def reference(*factors: Factor, districts: bool = True) -> Reference:
    rows = [(code, geom) for code, _, _, geom in read_districts_file(DATA / "districts.geojson")]
    return Reference(
        token="t",
        methodologies=Methodologies(factors, []),
        districts=Districts(rows if districts else []),
        networks={},
        operators={},
    )


def metro(start: datetime = NOW - timedelta(hours=2), minutes: int = 20, **kw: object) -> Item:
    values: dict[str, object] = {"distance_m": 10_000}
    values.update(kw)
    event = TransitTrip(
        record_id="r1",
        subject="s",
        mode="metro",
        boarded_at=start,
        alighted_at=start + timedelta(minutes=minutes),
        **values,  # type: ignore[arg-type]
    )
    return Item(0, event, ZONE)


def bike(a: tuple[float, float], b: tuple[float, float], distance_m: int = 4000) -> Item:
    start = NOW - timedelta(hours=2)
    return Item(
        0,
        BikeTrip(
            record_id="b1",
            subject="s",
            mode="shared_bike",
            started_at=start,
            ended_at=start + timedelta(minutes=20),
            start=Point(*a),
            end=Point(*b),
            distance_m=distance_m,
        ),
        ZONE,
    )


def test_items_normalise_every_kind_to_one_shape():
    it = metro()
    assert (it.kind, it.mode, it.behaviour, it.distance_source) == (
        "transit_trip",
        "metro",
        "transit",
        "operator",
    )
    steps = Item(0, DailySteps(record_id="d", subject="s", day=date(2025, 5, 31), steps=8000), ZONE)
    assert (steps.kind, steps.behaviour, steps.quantity) == ("daily_steps", "walking", 8000.0)
    assert steps.started_at == datetime(2025, 5, 31, tzinfo=ZONE)
    assert steps.ended_at - steps.started_at == timedelta(days=1)
    walk = Item(
        0,
        Walk(
            record_id="w",
            subject="s",
            started_at=NOW - timedelta(hours=1),
            ended_at=NOW,
            start=Point(22.55, 114.02),
            end=Point(22.56, 114.03),
        ),
        ZONE,
    )
    # No distance and no route: the straight line, which never overstates it.
    assert walk.distance_source == "straight_line" and 1400 < (walk.distance_m or 0) < 1600


def test_the_first_rejection_wins():
    it = metro()
    it.reject(Reason.TOO_OLD)
    it.reject(Reason.IN_FUTURE)
    assert it.reason == "too_old" and not it.ok
    assert it.message == "The activity is older than the claim window."


@pytest.mark.parametrize(
    ("start", "minutes", "reason"),
    [
        (NOW - timedelta(hours=2), -5, "time_range_invalid"),
        (NOW + timedelta(minutes=10), 20, "in_future"),
        (NOW - timedelta(days=8), 20, "too_old"),
        (NOW - timedelta(minutes=30), 30, None),  # ends exactly now
        (NOW - timedelta(minutes=20), 24, None),  # 4 minutes ahead: within the skew
    ],
)
def test_times(start, minutes, reason):
    it = metro(start, minutes)
    check_times([it], NOW, skew_s=300, window_days=7)
    assert it.reason == reason


def test_a_day_of_steps_is_in_the_future_only_when_it_starts_there():
    today = Item(0, DailySteps(record_id="d", subject="s", day=date(2025, 6, 1), steps=10), ZONE)
    tomorrow = Item(0, DailySteps(record_id="e", subject="s", day=date(2025, 6, 3), steps=10), ZONE)
    check_times([today, tomorrow], NOW, skew_s=300, window_days=7)
    assert today.ok and tomorrow.reason == "in_future"


def test_methodology_in_force_at_the_events_time():
    old = factor("metro", "transit", version=1, effective_to=datetime(2025, 1, 1, tzinfo=UTC))
    new = factor("metro", "transit", version=2, effective_from=datetime(2025, 1, 1, tzinfo=UTC))
    ref = reference(old, new)
    before, after = metro(datetime(2024, 12, 31, 10, tzinfo=UTC)), metro()
    bus = Item(
        0,
        TransitTrip(record_id="x", subject="s", mode="bus", boarded_at=NOW, alighted_at=NOW),
        ZONE,
    )
    attach_methodology([before, after, bus], ref)
    assert before.factor is not None and before.factor.version == 1
    assert after.factor is not None and after.factor.version == 2
    assert bus.reason == "no_methodology"


@pytest.mark.parametrize(
    ("distance_m", "minutes", "reason"),
    [
        (300, 20, "distance_too_short"),
        (60_000, 60, "distance_too_long"),
        (30_000, 10, "speed_implausible"),  # 180 km/h
        (10_000, 0, "speed_implausible"),  # instantaneous
        (10_000, 20, None),
    ],
)
def test_distance_and_speed(distance_m, minutes, reason):
    it = metro(minutes=minutes, distance_m=distance_m)
    attach_methodology([it], reference(factor("metro", "transit")))
    check_distance_speed([it])
    assert it.reason == reason


def test_districts_start_and_end_inside_or_refused():
    ref = reference(factor("shared_bike", "cycling"))
    inside = bike((22.55, 114.02), (22.55, 114.05))
    outside = bike((22.55, 114.02), (40.0, 116.4))
    attribute_districts([inside, outside], ref, {})
    assert inside.ok and inside.district is not None and inside.district.startswith("4403")
    assert outside.reason == "outside_region"


def test_no_districts_imported_refuses_trips_with_coordinates_only():
    ref = reference(districts=False)
    located = bike((22.55, 114.02), (22.55, 114.05))
    unlocated = metro()
    unlocated.resident_id = "r"
    attribute_districts([located, unlocated], ref, {"r": "440303"})
    assert located.reason == "region_not_configured"
    assert unlocated.ok and unlocated.district == "440303"  # the resident's home district


def test_content_digest_is_the_same_in_every_time_zone():
    utc = metro(datetime(2025, 5, 1, 0, 0, tzinfo=UTC))
    china = metro(datetime(2025, 5, 1, 8, 0, tzinfo=ZONE))
    other = metro(datetime(2025, 5, 1, 0, 1, tzinfo=UTC))
    assert content_digest(utc.event) == content_digest(china.event)
    assert content_digest(utc.event) != content_digest(other.event)


def test_programme_day_and_trip_keys():
    assert programme_day(datetime(2025, 5, 31, 16, 30, tzinfo=UTC), ZONE) == date(2025, 6, 1)
    a = trip_key(7, NOW, NOW + timedelta(minutes=10))
    b = trip_key(7, NOW + timedelta(minutes=10), NOW + timedelta(minutes=20))
    assert a[1] == a[3] == 7.0
    assert a[2] < b[0]  # back to back: the boxes do not touch
    assert trip_key(7, NOW, NOW) == (a[0], 7.0, a[0], 7.0)  # at least a second long
