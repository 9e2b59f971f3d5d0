"""Quantification without a database: reductions per unit, household baselines, caps and the
usage totals they keep."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from behaviours.events import DailySteps, MeterReading, TransitTrip, VehicleMileage
from behaviours.quantify import (
    Usage,
    apply_caps,
    decode_usage,
    encode_usage,
    household,
    quantify,
    whole_grams,
)
from behaviours.reference import Districts, Methodologies, Reference
from behaviours.rules import Item, attach_methodology
from behaviours.settings import IngestSettings
from tests.behaviours.test_rules import NOW, ZONE, factor, metro


def ref(*factors, caps=()) -> Reference:
    return Reference(
        token="t",
        methodologies=Methodologies(factors, caps),
        districts=Districts([]),
        networks={},
        operators={},
    )


def attached(items, reference):
    attach_methodology(items, reference)
    return items


def test_whole_grams_round_down_after_float_dust():
    assert whole_grams(50 * 570.3) == 28_515
    assert whole_grams(9.9999) == 9
    assert whole_grams(-3.0) == 0


def test_per_kilometre_and_per_step():
    [trip] = attached([metro(distance_m=12_345)], ref(factor("metro", "transit", factor_g=40.0)))
    quantify(trip)
    assert trip.reduction_g == 493  # 40 g/pkm x 12.345 km, rounded down
    steps = Item(0, DailySteps(record_id="d", subject="s", day=date(2025, 5, 31), steps=8000), ZONE)
    attached([steps], ref(factor("steps", "walking", unit="step", factor_g=0.03)))
    quantify(steps)
    assert steps.reduction_g == 240


def test_a_trip_that_avoids_less_than_a_gram_is_no_reduction():
    [trip] = attached([metro(distance_m=10)], ref(factor("metro", "transit", factor_g=0.05)))
    quantify(trip)
    assert trip.reason == "no_reduction"


def test_vehicles_subtract_the_project_emissions():
    ev = Item(
        0,
        VehicleMileage(
            record_id="v",
            subject="s",
            vehicle="car",
            period_start=NOW - timedelta(days=7),
            period_end=NOW,
            km=100,
            kwh=15,
        ),
        ZONE,
    )
    f = factor("nev", "vehicle", unit="km", factor_g=180.0, project_g_per_kwh=570.0)
    attached([ev], ref(f))
    quantify(ev)
    assert ev.reduction_g == 18_000 - 8_550


def _meter(quantity: float, start: datetime, days: int = 30, size: int = 1) -> Item:
    return Item(
        0,
        MeterReading(
            record_id="m",
            subject="s",
            utility="electricity",
            account="a1",
            period_start=start,
            period_end=start + timedelta(days=days),
            quantity=quantity,
            household_size=size,
        ),
        ZONE,
    )


ELECTRICITY = factor("electricity", "household", unit="kwh", factor_g=570.3)


def test_household_without_history_uses_the_per_capita_baseline():
    it = _meter(100, datetime(2025, 4, 1, tzinfo=UTC), size=2)
    attached([it], ref(ELECTRICITY))
    household([it], [], IngestSettings(baseline_kwh_per_person_day=2.5))
    assert it.reduction_g == whole_grams((2.5 * 2 * 30 - 100) * 570.3)


def test_household_against_the_same_months_of_earlier_years():
    start = datetime(2025, 4, 1, tzinfo=UTC)
    history = [
        {
            "mode": "electricity",
            "account": "a1",
            "started_at": start.replace(year=y),
            "ended_at": start.replace(year=y) + timedelta(days=30),
            "quantity": q,
        }
        for y, q in ((2024, 120.0), (2023, 140.0))
    ]
    it = _meter(100, start)
    attached([it], ref(ELECTRICITY))
    household([it], history, IngestSettings())
    assert it.reduction_g == whole_grams((130 - 100) * 570.3)
    more = _meter(200, start)
    attached([more], ref(ELECTRICITY))
    household([more], history, IngestSettings())
    assert more.reason == "no_reduction" and "same months of the previous 2 year(s)" in (
        more.message or ""
    )


def capped(daily_g=None, yearly_g=None, events=None) -> Reference:
    return ref(
        factor("metro", "transit"),
        caps=[("low-carbon-travel", 1, "transit", daily_g, yearly_g, events)],
    )


def _trips(reference: Reference, n: int, grams: int, first: int = 0) -> list[Item]:
    out = []
    for i in range(first, first + n):
        start = NOW - timedelta(hours=6) + timedelta(minutes=30 * i)
        it = Item(
            i,
            TransitTrip(
                record_id=f"r{i}",
                subject="s",
                mode="metro",
                boarded_at=start,
                alighted_at=start + timedelta(minutes=20),
                distance_m=10_000,
            ),
            ZONE,
        )
        it.resident_id = "res"
        out.append(it)
    attached(out, reference)
    for it in out:
        it.reduction_g = grams
    return out


def test_daily_cap_clips_then_refuses():
    reference = capped(daily_g=1000)
    items = _trips(reference, 3, 400)
    usage: dict[str, Usage] = {}
    assert apply_caps(items, reference, usage, ZONE) == {"res"}
    assert [it.reduction_g for it in items] == [400, 400, 200]  # clipped to the day's rest
    [more] = _trips(reference, 1, 400, first=3)
    assert apply_caps([more], reference, usage, ZONE) == set()
    assert more.reason == "daily_cap_reached"


def test_daily_event_count_cap():
    reference = capped(events=2)
    items = _trips(reference, 3, 10)
    apply_caps(items, reference, {}, ZONE)
    assert [it.reason for it in items] == [None, None, "daily_events_cap"]


def test_yearly_cap():
    reference = capped(yearly_g=500)
    items = _trips(reference, 3, 300)
    year = str((NOW - timedelta(hours=6)).astimezone(ZONE).year)
    usage = {"res": Usage(y={year: {"transit": 100}})}
    apply_caps(items, reference, usage, ZONE)
    assert [it.reduction_g for it in items[:2]] == [300, 100]
    assert items[2].reason == "yearly_cap_reached"
    assert usage["res"].y[year]["transit"] == 500


def test_usage_round_trips_and_forgets_old_days():
    u = Usage(
        y={"2023": {"transit": 5}, "2025": {"transit": 7}},
        d={"2025-05-01": {"transit": [5, 1]}, "2025-05-30": {"transit": [7, 1]}},
    )
    text = encode_usage(u, date(2025, 6, 1), keep_days=7)
    again = decode_usage(text)
    assert again.y == {"2025": {"transit": 7}}
    assert again.d == {"2025-05-30": {"transit": [7, 1]}}
    assert decode_usage(None) == Usage() and decode_usage("{}") == Usage()
