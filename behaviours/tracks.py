"""Checks on a GPS track recorded by the app, run before the activity enters the behaviours
pipeline (which then applies the same rules as to operators' trips). Pure functions; each finding
has a stable reason code that the resident sees in the answer and in the API's documentation."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

# Limits per mode: the largest plausible speed of one segment (m/s), sustained or not.
MAX_SEGMENT_SPEED_MS = {"cycling": 12.5, "walking": 3.5}  # 45 km/h, 12.6 km/h
JUMP_M = 500.0  # a single step this long, at a speed no bicycle or walker reaches, is a jump
JUMP_SPEED_MS = 30.0
SPIKE_MIN_M = 25.0  # shorter segments are GPS jitter, not evidence
LENGTH_TOLERANCE = 0.25  # claimed vs measured length: more than 25 % apart is refused
LENGTH_SLACK_M = 100.0

REASONS: dict[str, str] = {
    "track_time_order": "The track's timestamps do not increase.",
    "track_jump": "The track jumps: a point lies far from the previous one after a moment.",
    "track_speed_spike": "A part of the track is faster than the mode allows.",
    "track_length_mismatch": "The claimed distance differs from the track's measured length.",
    "track_outside_region": "Part of the track lies outside the programme's region.",
}


@dataclass(frozen=True, slots=True)
class Fix:
    t: datetime
    lat: float
    lon: float


@dataclass(frozen=True, slots=True)
class Finding:
    code: str
    message: str


@dataclass(frozen=True, slots=True)
class TrackReport:
    measured_m: float
    findings: list[Finding]

    @property
    def ok(self) -> bool:
        return not self.findings


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    r = 6_371_008.8
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * r * math.asin(math.sqrt(min(1.0, a)))


def _finding(code: str, detail: str) -> Finding:
    return Finding(code, f"{REASONS[code]} {detail}".strip())


def check_track(
    mode: str,
    points: Sequence[Fix],
    claimed_m: int,
    inside_region: Callable[[list[float], list[float]], list[bool]] | None = None,
) -> TrackReport:
    """Measure the track and list what is wrong with it (empty: plausible).

    ``inside_region(lons, lats)`` says for each point whether it lies in the region; None when
    the region has no geometry loaded (the check is then skipped).
    """
    findings: list[Finding] = []
    measured = 0.0
    limit = MAX_SEGMENT_SPEED_MS[mode]
    order_bad = jump = spike = False
    for a, b in itertools.pairwise(points):
        dt = (b.t - a.t).total_seconds()
        d = haversine_m(a.lat, a.lon, b.lat, b.lon)
        measured += d
        if dt <= 0:
            order_bad = True
            continue
        speed = d / dt
        if d >= JUMP_M and speed >= JUMP_SPEED_MS:
            jump = True
        elif d >= SPIKE_MIN_M and speed > limit:
            spike = True
    if order_bad:
        findings.append(_finding("track_time_order", ""))
    if jump:
        findings.append(_finding("track_jump", ""))
    if spike:
        findings.append(
            _finding("track_speed_spike", f"Limit for {mode}: {round(limit * 3.6)} km/h.")
        )
    if abs(claimed_m - measured) > max(LENGTH_SLACK_M, LENGTH_TOLERANCE * measured):
        findings.append(
            _finding(
                "track_length_mismatch", f"Claimed {claimed_m} m, measured {round(measured)} m."
            )
        )
    if inside_region is not None:
        inside = inside_region([p.lon for p in points], [p.lat for p in points])
        if not all(inside):
            findings.append(_finding("track_outside_region", ""))
    return TrackReport(measured_m=measured, findings=findings)
