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

import numpy as np
import shapely
from shapely import STRtree, wkb


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


# Stops on shapes (docs/behaviours.md, "GTFS feeds"). A stop's candidate positions on its trip's
# shape are the shape's closest approaches to it within this radius (every pass of a loop or of
# an out-and-back street), besides its nearest point overall; beyond it a stop is reported as
# far from the shape.
STOP_RADIUS_M = 100.0
# A stop_times' shape_dist_traveled is used when non-decreasing along the trip and the shape's
# point at it lies within STOP_RADIUS_M (plus the stop's own distance from the shape) of the stop.
_EPS_M = 1e-6
# Stops whose positions lie within this of the shape's start (end) extend it (Shape.locate).
_END_M = 1.0
# ... when further than this from the end (or from the previous such stop); nearer, at the end.
_END_SNAP_M = 20.0
# Ties between passes: each metre further along costs this much offset, so of two passes about
# as near a stop the earlier is taken (a 500 m later pass must be 5 m nearer to win).
EARLIER_PASS_M_PER_M = 0.01
# Partial assignments kept per stop (a beam): a stop's candidates include one per candidate of
# the previous stop, which would otherwise grow along the trip.
BEAM = 16


class Shape:
    """A shape in local metres (equirectangular around its own middle: exact to well under 0.1 %
    within a few hundred kilometres), with its segments; positions along it are metres from its
    first point. ``dists`` are the points' shape_dist_traveled (feed units), when usable."""

    __slots__ = ("a", "cum", "dists", "k", "length", "origin", "seglen", "v", "xy")

    def __init__(self, lonlat: Any, dists: Sequence[float] | None = None) -> None:
        pts = np.asarray(lonlat, dtype=np.float64)
        lon0, lat0 = float(pts[:, 0].mean()), float(pts[:, 1].mean())
        self.origin = (lon0, lat0)
        self.k = (111_320.0 * math.cos(math.radians(lat0)), 110_574.0)
        self.xy = self.local(pts[:, 0], pts[:, 1])
        self.a = self.xy[:-1]
        self.v = self.xy[1:] - self.a
        self.seglen = np.hypot(self.v[:, 0], self.v[:, 1])
        self.cum = np.concatenate(([0.0], np.cumsum(self.seglen)))
        self.length = float(self.cum[-1])
        d = np.asarray(dists, dtype=np.float64) if dists is not None else None
        self.dists = d if d is not None and len(d) == len(pts) and d[-1] > d[0] else None

    @classmethod
    def from_wkb(cls, geometry: bytes, dists: Sequence[float] | None = None) -> Shape:
        return cls(shapely.get_coordinates(wkb.loads(geometry)), dists)

    def local(self, lons: Any, lats: Any) -> Any:
        """(k, 2) local metres of lon/lat arrays."""
        lon0, lat0 = self.origin
        x = (np.asarray(lons, dtype=np.float64) - lon0) * self.k[0]
        y = (np.asarray(lats, dtype=np.float64) - lat0) * self.k[1]
        return np.column_stack((x, y))

    def point_at(self, pos: Any) -> Any:
        """(k, 2) local points at positions along the shape (clamped to its ends)."""
        p = np.clip(np.asarray(pos, dtype=np.float64), 0.0, self.length)
        return np.column_stack(
            (np.interp(p, self.cum, self.xy[:, 0]), np.interp(p, self.cum, self.xy[:, 1]))
        )

    def _closest(self, pt: Any) -> tuple[Any, Any, Any]:
        """Per segment: the parameter, distance and position of the closest point to ``pt``."""
        rel = pt - self.a
        sq = self.seglen * self.seglen
        t = (rel * self.v).sum(axis=1) / np.where(sq > 0, sq, 1.0)
        t = np.minimum(np.maximum(t, 0.0), 1.0)
        c = self.a + t[:, None] * self.v
        d = np.hypot(pt[0] - c[:, 0], pt[1] - c[:, 1])
        return t, d, self.cum[:-1] + t * self.seglen

    def offsets(self, pts: Any) -> Any:
        """Each point's distance from the shape."""
        return np.array([self._closest(p)[1].min() for p in pts])

    def locate(self, pts: Any, radius: float = STOP_RADIUS_M) -> tuple[Any, Any]:
        """Positions along the shape of a trip's stops (``pts``, local metres, in stop order)
        that never go backwards, and each stop's distance from its position.

        A monotone assignment of least total offset over each stop's candidates: the local
        minima of its distance to the shape within ``radius`` (each pass of a loop), its nearest
        point overall, the shape's two ends, and the nearest point at or after each of the
        previous stop's candidates (so an assignment always exists). Dynamic programming over
        the stops, keeping the ``BEAM`` cheapest partial assignments per stop, so a trip costs
        O(stops x segments) in vectorised arithmetic."""
        n_seg = len(self.seglen)
        cand_pos: list[Any] = []
        cand_d: list[Any] = []
        cost: Any = None
        back: list[Any] = []
        for i, pt in enumerate(pts):
            t, d, pos = self._closest(pt)
            left = np.concatenate(([np.inf], d[:-1]))
            right = np.concatenate((d[1:], [np.inf]))
            idx = np.flatnonzero((d <= left) & (d < right) & (d <= radius))
            ps = [pos[idx], [pos[int(d.argmin())]], [0.0, self.length]]
            ds = [
                d[idx],
                [d.min()],
                [
                    d[0] if t[0] == 0 else np.hypot(*(pt - self.xy[0])),
                    np.hypot(*(pt - self.xy[-1])),
                ],
            ]
            if i > 0:
                # the nearest point at or after each previous candidate: on its own segment
                # (clamped) or on a later one (suffix minima of the distances)
                prev = cand_pos[-1]
                s0 = np.minimum(
                    np.maximum(np.searchsorted(self.cum, prev, "right") - 1, 0), n_seg - 1
                )
                seg = self.seglen[s0]
                along = np.where(seg > 0, (prev - self.cum[s0]) / np.where(seg > 0, seg, 1.0), 0.0)
                t0 = np.minimum(np.maximum(t[s0], along), 1.0)
                c0 = self.a[s0] + t0[:, None] * self.v[s0]
                d0 = np.hypot(pt[0] - c0[:, 0], pt[1] - c0[:, 1])
                p0 = self.cum[s0] + t0 * seg
                suf_min = np.minimum.accumulate(d[::-1])[::-1]
                suf_arg = (n_seg - 1 - _running_argmin(d[::-1]))[::-1]
                nxt = np.minimum(s0 + 1, n_seg - 1)
                later = (s0 + 1 < n_seg) & (suf_min[nxt] < d0)
                ps.append(np.where(later, pos[suf_arg[nxt]], p0))
                ds.append(np.where(later, suf_min[nxt], d0))
            cp = np.concatenate([np.asarray(x, dtype=np.float64) for x in ps])
            cd = np.concatenate([np.asarray(x, dtype=np.float64) for x in ds])
            order = np.lexsort((cd, cp))
            cp, cd = cp[order], cd[order]
            keep = np.concatenate(([True], np.diff(cp) > 1e-3))
            cp, cd = cp[keep], cd[keep]
            score = cd + EARLIER_PASS_M_PER_M * cp
            if i == 0:
                cost = score
                back.append(np.zeros(len(cp), dtype=np.int64))
            else:
                feasible = cand_pos[-1][None, :] <= cp[:, None] + _EPS_M
                total = np.where(feasible, cost[None, :], np.inf)
                arg = total.argmin(axis=1)
                cost = total[np.arange(len(cp)), arg] + score
                if len(cp) > BEAM:  # the BEAM cheapest partial assignments (always feasible)
                    keep = np.sort(np.argpartition(cost, BEAM)[:BEAM])
                    cp, cd, cost, arg = cp[keep], cd[keep], cost[keep], arg[keep]
                back.append(arg)
            cand_pos.append(cp)
            cand_d.append(cd)
        k = len(cand_pos)
        out_pos = np.empty(k)
        out_d = np.empty(k)
        j = int(np.argmin(cost)) if k else 0
        for i in range(k - 1, -1, -1):
            out_pos[i], out_d[i] = cand_pos[i][j], cand_d[i][j]
            j = int(back[i][j])
        self._extend_ends(pts, out_pos)
        return out_pos, out_d

    def _extend_ends(self, pts: Any, pos: Any) -> None:
        """Stops before the shape's start (or after its end) all sit at that end: the trip's
        path is extended in straight lines through them, so their rides are not 0 m."""
        k = len(pos)
        lead = 0
        while lead < k and pos[lead] < _END_M:
            lead += 1
        anchor, at = self.xy[0], 0.0
        for i in range(lead - 1, -1, -1):
            step = float(np.hypot(*(pts[i] - anchor)))
            if step > _END_SNAP_M:  # else it sits at the end (a kerb's offset)
                at, anchor = at - step, pts[i]
            pos[i] = at
        trail = k
        while trail > lead and pos[trail - 1] > self.length - _END_M:
            trail -= 1
        anchor, at = self.xy[-1], self.length
        for i in range(trail, k):
            step = float(np.hypot(*(pts[i] - anchor)))
            if step > _END_SNAP_M:
                at, anchor = at + step, pts[i]
            pos[i] = at

    def from_distances(self, dists: Any, metres_per_unit: float) -> Any:
        """Positions of shape_dist_traveled values: through the shape's own distances when it
        has them (same unit, so the geometry decides the metres), else converted."""
        d = np.asarray(dists, dtype=np.float64)
        if self.dists is not None:
            return np.interp(d, self.dists, self.cum)
        return d * metres_per_unit

    def agrees(self, pts: Any, pos: Any, radius: float = STOP_RADIUS_M) -> bool:
        """Positions taken from a feed's distances are consistent with the geometry: never
        backwards, on the shape, each near its stop (within ``radius`` beyond the stop's own
        distance from the shape)."""
        pos = np.asarray(pos, dtype=np.float64)
        if not np.all(np.isfinite(pos)) or np.any(np.diff(pos) < -1.0):
            return False
        if pos.min() < -radius or pos.max() > self.length + radius:
            return False
        gap = np.hypot(*(self.point_at(pos) - pts).T)
        return bool(np.all(gap <= radius + self.offsets(pts)))


def _running_argmin(x: Any) -> Any:
    """Index of the minimum of x[:i+1] for each i."""
    best = np.minimum.accumulate(x)
    idx = np.where(x == best, np.arange(len(x)), 0)
    return np.maximum.accumulate(idx)


@dataclass(slots=True)
class TransitNetwork:
    """GTFS stops and trips of one feed: in-vehicle distance between two stops of a trip, from
    each stop time's position along the trip's shape (metres, located at import in stop order)."""

    stops: dict[str, tuple[float, float]]  # stop_id -> (lon, lat)
    trips: dict[str, tuple[str, str | None]]  # trip_id -> (route_id, shape_id)
    # trip_id -> [(seq, stop_id, metres along the trip, rounded)], in stop order
    stop_times: dict[str, list[tuple[int, str, int | None]]]
    by_stop: dict[str, set[str]] = field(default_factory=dict)
    _memo: dict[tuple[str, str, str | None, str | None], int | None] = field(default_factory=dict)

    @classmethod
    def build(
        cls,
        stops: Sequence[tuple[str, float, float]],
        shapes: Sequence[tuple[str, bytes]],
        trips: Sequence[tuple[str, str, str | None]],
        stop_times: Sequence[tuple[Any, ...]],
    ) -> TransitNetwork:
        """``stop_times`` rows: (trip_id, seq, stop_id, shape_dist_traveled, shape_dist_m).
        Rows stored before positions were (shape_dist_m NULL) are located here, once per trip
        pattern; without a shape their shape_dist_traveled is taken as metres, as it was."""
        stop_map = {s: (lon, lat) for s, lat, lon in stops}
        net = cls(stops=stop_map, trips={}, stop_times={})
        for trip_id, route_id, shape_id in trips:
            net.trips[trip_id] = (route_id, shape_id)
        raw: dict[str, list[tuple[Any, ...]]] = {}
        for row in stop_times:
            raw.setdefault(row[0], []).append(row)
        geometries = dict(shapes)
        decoded: dict[str, Shape] = {}
        patterns: dict[tuple[str, tuple[str, ...]], list[float]] = {}
        for trip_id, rows in raw.items():
            rows.sort(key=lambda r: r[1])
            positions: list[float | None] = [r[4] if len(r) > 4 else None for r in rows]
            if any(p is None for p in positions):
                shape_id = net.trips.get(trip_id, ("", None))[1]
                if shape_id in geometries and all(r[2] in stop_map for r in rows):
                    key = (shape_id, tuple(r[2] for r in rows))
                    if key not in patterns:
                        shape = decoded.get(shape_id)
                        if shape is None:
                            shape = decoded[shape_id] = Shape.from_wkb(geometries[shape_id])
                        pts = shape.local(*zip(*(stop_map[s] for s in key[1]), strict=True))
                        patterns[key] = shape.locate(pts)[0].tolist()
                    positions = list(patterns[key])
                elif shape_id not in geometries:
                    positions = [r[3] for r in rows]
            net.stop_times[trip_id] = [
                (r[1], r[2], None if p is None else round(p))
                for r, p in zip(rows, positions, strict=True)
            ]
            for r in rows:
                net.by_stop.setdefault(r[2], set()).add(trip_id)
        return net

    def distance_m(
        self, board: str, alight: str, route_id: str | None = None, trip_id: str | None = None
    ) -> int | None:
        key = (board, alight, route_id, trip_id)
        if key not in self._memo:
            self._memo[key] = self._distance(board, alight, route_id, trip_id)
        return self._memo[key]

    def trip_distance_m(self, trip_id: str, i: int, j: int) -> int | None:
        """Between the trip's i-th and j-th stop times (0-based, i < j)."""
        seq = self.stop_times.get(trip_id, [])
        if not 0 <= i < j < len(seq):
            return None
        a, b = seq[i][2], seq[j][2]
        return None if a is None or b is None else b - a

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
            rid, _ = self.trips[tid]
            if route_id is not None and trip_id is None and rid != route_id:
                continue
            # A stop served twice (loops): the ride from the latest boarding before each
            # alighting; the shortest such ride.
            boarded: int | None = None
            best: int | None = None
            for _, stop_id, pos in self.stop_times.get(tid, []):
                if stop_id == alight and boarded is not None and pos is not None:
                    best = pos - boarded if best is None else min(best, pos - boarded)
                if stop_id == board:
                    boarded = pos
            if best is not None:
                return best
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
