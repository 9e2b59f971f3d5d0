"""Reference data held in memory by each process: methodologies, districts, GTFS.

Loaded from the database (never from constants), kept while the ``behaviour_reference`` token
stays the same: seeds and imports replace the token, and the pipeline compares it once per batch.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import shapely
from shapely import STRtree, wkb
from shapely.geometry import LineString, Point


@dataclass(frozen=True, slots=True)
class Factor:
    code: str
    version: int
    mode: str
    behaviour: str
    unit: str
    factor_g: float
    project_g_per_kwh: float | None
    min_distance_m: int | None
    max_distance_m: int | None
    max_speed_kmh: float | None
    effective_from: datetime
    effective_to: datetime | None
    # Transit: the most credited for a trip whose distance no stops or shape can check.
    typical_trip_m: int | None = None


@dataclass(frozen=True, slots=True)
class Caps:
    daily_cap_g: int | None
    yearly_cap_g: int | None
    daily_max_events: int | None


class Methodologies:
    """Factors by mode and caps by behaviour, each with its validity period."""

    def __init__(self, factors: Iterable[Factor], caps: Iterable[tuple[Any, ...]]) -> None:
        self._by_mode: dict[str, list[Factor]] = {}
        for f in sorted(factors, key=lambda f: f.effective_from):
            self._by_mode.setdefault(f.mode, []).append(f)
        self._starts = {m: [f.effective_from for f in fs] for m, fs in self._by_mode.items()}
        # (code, version, behaviour) -> Caps
        self._caps: dict[tuple[str, int, str], Caps] = {}
        for code, version, behaviour, daily, yearly, max_events in caps:
            self._caps[(code, version, behaviour)] = Caps(daily, yearly, max_events)

    def factor(self, mode: str, at: datetime) -> Factor | None:
        """The factor of the methodology version in force for ``mode`` at ``at``."""
        factors = self._by_mode.get(mode)
        if not factors:
            return None
        i = bisect.bisect_right(self._starts[mode], at) - 1
        while i >= 0:
            f = factors[i]
            if f.effective_to is None or at < f.effective_to:
                return f
            i -= 1
        return None

    def caps(self, f: Factor) -> Caps:
        return self._caps.get((f.code, f.version, f.behaviour), Caps(None, None, None))


class Districts:
    """District attribution: an STRtree over prepared district polygons."""

    def __init__(self, rows: Sequence[tuple[str, bytes]]) -> None:
        self.codes = [code for code, _ in rows]
        self.geoms = [wkb.loads(g) for _, g in rows]
        for g in self.geoms:
            shapely.prepare(g)
        self.tree = STRtree(self.geoms) if self.geoms else None

    @property
    def empty(self) -> bool:
        return self.tree is None

    def locate(self, lons: Sequence[float], lats: Sequence[float]) -> list[str | None]:
        """The district code containing each point (None outside every district), set-wise."""
        out: list[str | None] = [None] * len(lons)
        if self.tree is None or not lons:
            return out
        points = shapely.points(lons, lats)
        pairs = self.tree.query(points, predicate="intersects")
        for point_i, geom_i in zip(pairs[0].tolist(), pairs[1].tolist(), strict=True):
            if out[point_i] is None:
                out[point_i] = self.codes[geom_i]
        return out


@dataclass(slots=True)
class TransitNetwork:
    """GTFS stops, shapes and stop sequences of one feed: in-vehicle distance along the shape."""

    stops: dict[str, tuple[float, float]]  # stop_id -> (lon, lat)
    shapes: dict[str, LineString]  # in local metres
    trips: dict[str, tuple[str, str | None]]  # trip_id -> (route_id, shape_id)
    # trip_id -> [(seq, stop_id, shape_dist_traveled)]
    stop_times: dict[str, list[tuple[int, str, float | None]]]
    by_stop: dict[str, set[str]] = field(default_factory=dict)
    origin: tuple[float, float] = (0.0, 0.0)
    _memo: dict[tuple[str, str, str | None, str | None], int | None] = field(default_factory=dict)

    @classmethod
    def build(
        cls,
        stops: Sequence[tuple[str, float, float]],
        shapes: Sequence[tuple[str, bytes]],
        trips: Sequence[tuple[str, str, str | None]],
        stop_times: Sequence[tuple[str, int, str, float | None]],
    ) -> TransitNetwork:
        stop_map = {s: (lon, lat) for s, lat, lon in stops}
        lat0 = sum(lat for _, lat, _ in stops) / len(stops) if stops else 0.0
        lon0 = sum(lon for _, _, lon in stops) / len(stops) if stops else 0.0
        net = cls(stops=stop_map, shapes={}, trips={}, stop_times={}, origin=(lon0, lat0))
        for sid, geometry in shapes:
            line = wkb.loads(geometry)
            net.shapes[sid] = LineString([net.to_local(x, y) for x, y in line.coords])
        for trip_id, route_id, shape_id in trips:
            net.trips[trip_id] = (route_id, shape_id)
        for trip_id, seq, stop_id, dist in stop_times:
            net.stop_times.setdefault(trip_id, []).append((seq, stop_id, dist))
            net.by_stop.setdefault(stop_id, set()).add(trip_id)
        for seq_list in net.stop_times.values():
            seq_list.sort()
        return net

    def to_local(self, lon: float, lat: float) -> tuple[float, float]:
        """Equirectangular metres around the feed's centre: exact enough within a city."""
        lon0, lat0 = self.origin
        k = 111_320.0
        return ((lon - lon0) * k * math.cos(math.radians(lat0)), (lat - lat0) * 110_574.0)

    def distance_m(
        self, board: str, alight: str, route_id: str | None = None, trip_id: str | None = None
    ) -> int | None:
        key = (board, alight, route_id, trip_id)
        if key not in self._memo:
            self._memo[key] = self._distance(board, alight, route_id, trip_id)
        return self._memo[key]

    def _distance(
        self, board: str, alight: str, route_id: str | None, trip_id: str | None
    ) -> int | None:
        if board not in self.stops or alight not in self.stops or board == alight:
            return None
        candidates = (
            [trip_id]
            if trip_id is not None
            else sorted(self.by_stop.get(board, set()) & self.by_stop.get(alight, set()))
        )
        for tid in candidates:
            if tid not in self.trips:
                continue
            rid, shape_id = self.trips[tid]
            if route_id is not None and trip_id is None and rid != route_id:
                continue
            seq = self.stop_times.get(tid, [])
            b = next((x for x in seq if x[1] == board), None)
            a = next((x for x in seq if x[1] == alight and b is not None and x[0] > b[0]), None)
            if b is None or a is None:
                continue
            line = self.shapes.get(shape_id) if shape_id else None
            if line is None:  # no shape: shape_dist_traveled (taken as metres)
                if b[2] is not None and a[2] is not None:
                    return round(a[2] - b[2])
                continue
            pb = line.project(Point(self.to_local(*self.stops[board])))
            pa = line.project(Point(self.to_local(*self.stops[alight])))
            if pa <= pb:
                continue
            return round(float(pa - pb))
        return None


@dataclass(slots=True)
class Reference:
    token: str
    methodologies: Methodologies
    districts: Districts
    networks: dict[str, TransitNetwork]
    operators: dict[str, Any]


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    r = 6_371_008.8
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * r * math.asin(math.sqrt(a))
