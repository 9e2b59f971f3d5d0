"""Transit distances checked against evidence (issue 10, item 2): the GTFS shape's in-vehicle
distance bounds a claimed distance (within the tolerance as claimed, beyond it clipped), a
claim nothing can check is capped by the mode's typical trip length and marked, and a trip's
boarding / alighting coordinates feed the region check and district attribution."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import pytest

from behaviours.events import Point, TransitTrip, decode_batch
from behaviours.rules import content_digest
from tests.behaviours.factories import (
    co2e_balance,
    import_districts,
    import_gtfs,
    linked,
    metro,
    now,
    operator,
    run,
)

# S1 -> S3 along the shape of tests/integrations/data/gtfs (test_pipeline.TestGtfsDistance).
SHAPE_M = 7197


async def _rows(pool: Any) -> dict[str, dict[str, Any]]:
    async with pool.acquire() as conn:
        return {
            r["record_id"]: dict(r)
            for r in await conn.fetch(
                "SELECT record_id, distance_m, distance_source, district_code, reason_message "
                "FROM behaviour_events"
            )
        }


@pytest.fixture
async def city(pool):
    await import_gtfs(pool, "city")
    await import_districts(pool)
    await operator(pool, "metro", feed="city")


class TestTolerance:
    async def test_within_tolerance_as_claimed_beyond_clipped_to_the_shape(
        self, pool, settings, city
    ):
        rid, subject = await linked(pool)
        near, inflated = await run(
            pool,
            settings,
            [
                # 8,500 m is 18 % above the shape's 7,197 m: credited as claimed.
                metro(subject, "near", distance_m=8500, boarding_stop="S1", alighting_stop="S3"),
                # The case: 30 km claimed between stops about 7 km apart.
                metro(
                    subject,
                    "inflated",
                    distance_m=30_000,
                    boarding_stop="S1",
                    alighting_stop="S3",
                    start=now() - timedelta(hours=5),
                ),
            ],
        )
        rows = await _rows(pool)
        assert near.status == "accepted" and near.reduction_g == int(46.7 * 8.5)
        assert rows["near"]["distance_m"] == 8500
        assert rows["near"]["distance_source"] == "operator"
        assert near.message is None

        assert inflated.status == "accepted"
        clipped = rows["inflated"]["distance_m"]
        assert clipped == pytest.approx(SHAPE_M, abs=15)
        assert rows["inflated"]["distance_source"] == "gtfs_clipped"
        assert inflated.reduction_g == int(46.7 * clipped / 1000) < 1401 // 3
        assert inflated.message and "clipped" in inflated.message
        assert rows["inflated"]["reason_message"] == inflated.message  # the resident reads it
        assert (await co2e_balance(pool, rid))[0] == near.reduction_g + inflated.reduction_g

    async def test_the_tolerance_is_a_setting(self, pool, settings, city):
        ingest = msgspec.structs.replace(settings.ingest, distance_tolerance=0.05)
        strict = msgspec.structs.replace(settings, ingest=ingest)
        _, subject = await linked(pool)
        [v] = await run(
            pool,
            strict,
            [metro(subject, "near", distance_m=8500, boarding_stop="S1", alighting_stop="S3")],
        )
        assert v.status == "accepted" and (await _rows(pool))["near"]["distance_source"] == (
            "gtfs_clipped"
        )


class TestWithoutEvidence:
    async def test_capped_by_the_typical_trip_and_marked(self, pool, settings):
        await operator(pool, "buses")
        _, subject = await linked(pool, "buses")
        long_claim, short_claim = await run(
            pool,
            settings,
            [
                # The case: a bus trip with no stops claiming 50 km (100 min, 30 km/h).
                metro(subject, "long", mode="bus", distance_m=50_000, minutes=100),
                metro(
                    subject,
                    "short",
                    mode="bus",
                    distance_m=6000,
                    start=now() - timedelta(hours=5),
                ),
            ],
            op_id="buses",
        )
        rows = await _rows(pool)
        assert long_claim.status == "accepted"
        assert rows["long"]["distance_m"] == 10_000  # the bus's typical_trip_m
        assert rows["long"]["distance_source"] == "typical_cap"
        assert long_claim.reduction_g == int(26.9 * 10)
        assert long_claim.message and "typical" in long_claim.message
        assert rows["long"]["reason_message"] == long_claim.message

        assert short_claim.status == "accepted"
        assert short_claim.reduction_g == int(26.9 * 6)
        assert rows["short"]["distance_source"] == "unverified"
        assert short_claim.message is None  # credited as claimed: only the source marks it

    async def test_the_speed_check_judges_the_claim_not_the_cap(self, pool, settings):
        await operator(pool, "buses")
        _, subject = await linked(pool, "buses")
        # 50 km in 20 minutes is 150 km/h: implausible, even though 10 km would not be.
        [v] = await run(
            pool,
            settings,
            [metro(subject, "fast", mode="bus", distance_m=50_000, minutes=20)],
            op_id="buses",
        )
        assert v.reason_code == "speed_implausible"

    def test_methodology_data_documents_typical_trips(self):
        from behaviours.service import DATA_DIR

        data = json.loads((DATA_DIR / "methodologies.json").read_text(encoding="utf-8"))
        travel = next(m for m in data["methodologies"] if m["code"] == "low-carbon-travel")
        transit = [f for f in travel["factors"] if f["behaviour"] == "transit"]
        assert {f["mode"] for f in transit} == {"bus", "metro", "tram", "ferry"}
        for f in transit:
            assert f["typical_trip_m"] > 0 and f["typical_trip_source"]
            assert f["min_distance_m"] < f["typical_trip_m"] <= f["max_distance_m"]


class TestCoordinates:
    async def test_boarding_and_alighting_points_feed_the_region_check(self, pool, settings, city):
        _, subject = await linked(pool)  # home district 440303
        inside, outside, far_stop = await run(
            pool,
            settings,
            [
                metro(
                    subject,
                    "in",
                    boarding_point=Point(22.55, 114.15),
                    alighting_point=Point(22.55, 114.18),
                ),
                metro(
                    subject,
                    "out",
                    boarding_point=Point(22.55, 114.18),
                    alighting_point=Point(22.70, 114.18),
                    start=now() - timedelta(hours=5),
                ),
                # Without points, the named stops' coordinates: X9 lies outside the region.
                metro(
                    subject,
                    "stop",
                    distance_m=None,
                    boarding_stop="S1",
                    alighting_stop="X9",
                    start=now() - timedelta(hours=8),
                ),
            ],
        )
        assert inside.status == "accepted"
        assert (await _rows(pool))["in"]["district_code"] == "440304"  # not the home district
        assert outside.status == "rejected" and outside.reason_code == "outside_region"
        assert far_stop.status == "rejected"
        assert far_stop.reason_code in ("outside_region", "distance_unknown")

    def test_points_are_optional_fields_of_the_wire_format(self):
        at = datetime(2026, 3, 1, 8, tzinfo=UTC)
        body = {
            "events": [
                {
                    "type": "transit_trip",
                    "record_id": "1",
                    "subject": "s",
                    "mode": "bus",
                    "boarded_at": at.isoformat(),
                    "alighted_at": (at + timedelta(minutes=20)).isoformat(),
                    "distance_m": 4000,
                    "boarding_point": {"lat": 22.55, "lon": 114.15},
                }
            ]
        }
        [ev] = decode_batch(json.dumps(body).encode()).events
        assert isinstance(ev, TransitTrip)
        assert ev.boarding_point == Point(22.55, 114.15) and ev.alighting_point is None

    def test_a_trip_without_points_keeps_its_earlier_digest(self):
        at = datetime(2026, 3, 1, 8, tzinfo=UTC)
        trip = TransitTrip(
            record_id="r", subject="s", mode="bus", boarded_at=at, alighted_at=at, distance_m=5
        )
        earlier = msgspec.json.encode(trip).replace(
            b',"boarding_point":null,"alighting_point":null', b""
        )
        assert b"boarding_point" not in earlier
        assert content_digest(trip) == hashlib.sha256(earlier).digest()
        with_point = msgspec.structs.replace(trip, boarding_point=Point(22.5, 114.0))
        assert content_digest(with_point) != content_digest(trip)
