"""The GPS-track checks (behaviours/tracks.py): pure functions, no database, no network."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from behaviours.tracks import REASONS, Fix, check_track, haversine_m


def fixes(points: int = 12, step_deg: float = 0.0009, seconds: int = 20) -> list[Fix]:
    """A ride northwards in Shenzhen: ~100 m per step."""
    t0 = datetime(2025, 6, 1, 8, 0, tzinfo=UTC)
    return [
        Fix(t0 + timedelta(seconds=i * seconds), 22.54 + i * step_deg, 114.05)
        for i in range(points)
    ]


def codes(mode: str, track: list[Fix], claimed: int, inside=None) -> list[str]:
    return [f.code for f in check_track(mode, track, claimed, inside).findings]


class TestPlausibleTracks:
    def test_a_plausible_ride_is_measured_and_passes(self):
        report = check_track("cycling", fixes(), 1100)
        assert report.ok and 1050 < report.measured_m < 1150

    def test_a_walk_at_walking_pace_passes(self):
        walk = fixes(step_deg=0.0002, seconds=20)  # ~22 m per 20 s: 1.1 m/s
        report = check_track("walking", walk, round(check_track("walking", walk, 1).measured_m))
        assert report.ok

    def test_inside_the_region_passes(self):
        assert codes("cycling", fixes(), 1100, lambda lons, lats: [True] * len(lons)) == []


class TestFindings:
    def test_a_jump_and_the_length_it_adds(self):
        track = fixes()
        track[5] = Fix(track[5].t, track[5].lat + 0.05, track[5].lon)  # 5.5 km away and back
        found = codes("cycling", track, 1100)
        assert "track_jump" in found and "track_length_mismatch" in found

    def test_a_speed_spike(self):
        assert codes("cycling", fixes(seconds=5), 1100) == ["track_speed_spike"]  # 72 km/h

    def test_a_pace_fine_for_a_bicycle_is_a_spike_for_a_walker(self):
        ride = fixes()  # 5 m/s
        assert codes("cycling", ride, 1100) == []
        assert "track_speed_spike" in codes("walking", ride, 1100)

    def test_a_claimed_length_far_from_the_measured_one(self):
        assert codes("cycling", fixes(), 3000) == ["track_length_mismatch"]

    def test_outside_the_region(self):
        outside = codes("cycling", fixes(), 1100, lambda lons, lats: [False] * len(lons))
        assert outside == ["track_outside_region"]

    def test_times_out_of_order(self):
        track = fixes()
        track[3], track[4] = track[4], track[3]
        assert "track_time_order" in codes("cycling", track, 1100)

    def test_every_finding_has_a_documented_reason(self):
        track = fixes()
        track[5] = Fix(track[5].t, track[5].lat + 0.05, track[5].lon)
        for finding in check_track("cycling", track, 1100).findings:
            assert finding.code in REASONS
            assert finding.message.startswith(REASONS[finding.code])


def test_haversine_one_degree_of_latitude():
    assert 111_000 < haversine_m(22.0, 114.0, 23.0, 114.0) < 111_400
