"""Transit distances on a real GTFS feed no one here wrote (issue 16): Cairns' 2014 buses, whose
routes loop back past the same streets. Every consecutive stop pair of every trip gets a
distance, none negative, adding up to the trip's end-to-end distance; sampled pairs agree with an
independent stop-order projection; synthetic loops and out-and-back routes give the distance the
vehicle travels."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import shapely
from shapely.geometry import LineString

from behaviours import service
from behaviours.pipeline import ReferenceCache
from behaviours.reference import TransitNetwork
from integrations.gtfs import GtfsFeed, read_feed
from kit.db import transaction

CAIRNS = Path(__file__).resolve().parent / "data" / "cairns_gtfs.zip"  # see data/README.md


async def network(pool: Any, feed: str) -> Any:
    async with pool.acquire() as conn:
        return (await ReferenceCache().get(conn)).networks[feed]


@pytest.fixture(scope="module")
def cairns_rows() -> Any:
    return read_feed(CAIRNS)


@pytest.fixture
async def cairns(pool: Any) -> Any:
    feed = GtfsFeed(CAIRNS)
    try:
        async with transaction(pool) as tx:
            report = await service.import_gtfs(
                tx,
                "cairns",
                feed.stops(),
                feed.shapes(),
                feed.trips(),
                feed.stop_times(),
                report=feed.report,
            )
    finally:
        feed.close()
    return report, await network(pool, "cairns")


def reference_positions(shape_lonlat: Any, stops_lonlat: Any, step: float = 2.0) -> list[float]:
    """An independent stop-order projection: the shape sampled every ``step`` metres, each stop
    placed on a sample at or after the previous stop's, least total distance (Viterbi over the
    samples), with the documented rules: of two passes about as near, the earlier (0.01 m per
    m); stops past the shape's ends extend it in straight lines. Its own projection (around the
    shape's first point) and shapely's interpolation, not the production code's segment
    search."""
    lon0, lat0 = shape_lonlat[0]
    kx, ky = 111_320.0 * math.cos(math.radians(lat0)), 110_574.0

    def local(lonlat: Any) -> Any:
        a = np.asarray(lonlat, dtype=float)
        return np.column_stack(((a[:, 0] - lon0) * kx, (a[:, 1] - lat0) * ky))

    line = LineString(local(shape_lonlat))
    stops = local(stops_lonlat)
    at = np.linspace(0.0, line.length, max(2, int(line.length / step) + 1))
    samples = shapely.get_coordinates(shapely.line_interpolate_point(line, at))
    cost: Any = None
    backs: list[Any] = []
    for x, y in stops:
        d = np.hypot(samples[:, 0] - x, samples[:, 1] - y) + 0.01 * at
        if cost is None:
            cost, back = d, None
        else:
            best = np.minimum.accumulate(cost)
            back = np.maximum.accumulate(np.where(cost == best, np.arange(len(at)), 0))
            cost = best + d
        backs.append(back)
    j = int(np.argmin(cost))
    chosen = [0] * len(stops)
    for i in range(len(stops) - 1, -1, -1):
        chosen[i] = j
        if backs[i] is not None:
            j = int(backs[i][j])
    pos = [float(at[j]) for j in chosen]
    lead = 0
    while lead < len(pos) and pos[lead] < 1.0:
        lead += 1
    anchor, p = samples[0], 0.0
    for i in range(lead - 1, -1, -1):
        if (step := float(np.hypot(*(stops[i] - anchor)))) > 20.0:
            p, anchor = p - step, stops[i]
        pos[i] = p
    trail = len(pos)
    while trail > lead and pos[trail - 1] > line.length - 1.0:
        trail -= 1
    anchor, p = samples[-1], line.length
    for i in range(trail, len(pos)):
        if (step := float(np.hypot(*(stops[i] - anchor)))) > 20.0:
            p, anchor = p + step, stops[i]
        pos[i] = p
    return pos


class TestCairns:
    async def test_every_consecutive_pair_has_a_distance_adding_up_to_the_trip(self, cairns):
        report, net = cairns
        assert report.ok and report.counts["stop_times"] == 37_790
        assert len(net.stop_times) == 1_339
        pairs = 0
        for trip_id, times in net.stop_times.items():
            legs = [net.trip_distance_m(trip_id, i, i + 1) for i in range(len(times) - 1)]
            assert None not in legs, trip_id
            assert all(d >= 0 for d in legs), trip_id
            # 0 m only between a stop and itself (a stop listed twice in a row)
            for i, d in enumerate(legs):
                assert d > 0 or times[i][1] == times[i + 1][1], (trip_id, i)
            assert sum(legs) == net.trip_distance_m(trip_id, 0, len(times) - 1) > 0
            first, last = times[0][1], times[-1][1]
            if [s for _, s, _ in times].count(first) == 1 and first != last:
                assert net.distance_m(first, last, trip_id=trip_id) == sum(legs)
            pairs += len(legs)
        assert pairs == 37_790 - 1_339

    async def test_sampled_pairs_agree_with_a_stop_order_projection(self, cairns, cairns_rows):
        _, net = cairns
        stops, shapes, trips, _ = cairns_rows
        stop_ll = {s: (lon, lat) for s, _, lat, lon in stops}
        shape_ll = {s: shapely.get_coordinates(shapely.from_wkb(g)) for s, g, _ in shapes}
        shape_of = {t: sh for t, _, sh in trips}
        rnd = random.Random(16)
        trip_ids = sorted(net.stop_times)
        memo: dict[tuple[str, ...], list[float]] = {}  # per trip pattern
        errors, backwards = [], 0
        for _ in range(400):
            trip_id = rnd.choice(trip_ids)
            times = net.stop_times[trip_id]
            i = rnd.randrange(len(times) - 1)
            j = rnd.randrange(i + 1, len(times))
            line = shape_ll[shape_of[trip_id]]
            key = (shape_of[trip_id], *(s for _, s, _ in times))
            if key not in memo:
                memo[key] = reference_positions(line, [stop_ll[s] for s in key[1:]])
            expected = memo[key][j] - memo[key][i]
            got = net.trip_distance_m(trip_id, i, j)
            assert got is not None
            errors.append(abs(got - expected) / max(expected, 1.0))
            # the failure: on the whole shape, the alighting stop projects before
            whole = LineString(line)
            b, a = (shapely.Point(stop_ll[times[k][1]]) for k in (i, j))
            backwards += whole.project(a) <= whole.project(b)
        assert max(errors) <= 0.02, sorted(errors)[-5:]
        assert backwards >= 5  # the sample holds the loops that used to have no distance

    async def test_rows_stored_without_positions_are_located_when_loaded(self, cairns, cairns_rows):
        """Feeds imported before positions were stored (shape_dist_m NULL) get the same
        positions from the reference cache."""
        _, imported = cairns
        stops, shapes, trips, stop_times = cairns_rows
        legacy = TransitNetwork.build(
            [(s, lat, lon) for s, _, lat, lon in stops],
            [(s, g) for s, g, _ in shapes],
            trips,
            [(t, seq, stop, dist, None) for t, seq, stop, dist, _ in stop_times],
        )
        assert legacy.stop_times == imported.stop_times


def _lonlat(x: float, y: float) -> tuple[float, float]:
    return 114.0 + x / (111_320.0 * math.cos(math.radians(22.55))), 22.55 + y / 110_574.0


async def _synthetic(
    pool: Any, path_xy: Sequence[tuple[float, float]], stops: Sequence[tuple[str, float, float]]
) -> Any:
    """One trip along ``path_xy`` (metres east/north) stopping at ``stops`` [(id, x, y)]."""
    stop_rows: list[tuple[str, str, float, float]] = []
    for sid, x, y in stops:
        if sid not in {r[0] for r in stop_rows}:
            lon, lat = _lonlat(x, y)
            stop_rows.append((sid, sid, lat, lon))
    geometry = shapely.to_wkb(LineString([_lonlat(x, y) for x, y in path_xy]))
    async with transaction(pool) as tx:
        await service.import_gtfs(
            tx,
            "synthetic",
            stop_rows,
            [("SH", bytes(geometry))],
            [("T", "R", "SH")],
            [("T", n + 1, sid, None) for n, (sid, _, _) in enumerate(stops)],
        )
    return await network(pool, "synthetic")


class TestSyntheticRoutes:
    async def test_a_loop_back_along_the_first_street(self, pool):
        # A 1 km square driven anticlockwise from the origin, then the bottom street again.
        path = [(0, 0), (1000, 0), (1000, 1000), (0, 1000), (0, 0), (1000, 0)]
        stops = [
            ("A", 200, 5),
            ("B", 1005, 500),
            ("C", 500, 1005),
            ("D", -5, 500),
            ("E", 600, 5),  # on the bottom street, served on the second pass
        ]
        net = await _synthetic(pool, path, stops)
        assert net.distance_m("A", "E", trip_id="T") == pytest.approx(4400, abs=2)
        assert net.distance_m("D", "E", trip_id="T") == pytest.approx(1100, abs=2)
        assert net.distance_m("A", "B", trip_id="T") == pytest.approx(1300, abs=2)
        assert net.distance_m("E", "A", trip_id="T") is None  # not in this trip's direction

    async def test_out_and_back_on_one_street(self, pool):
        path = [(0, 0), (2000, 0), (0, 0)]  # the shape retraces itself
        stops = [("P", 500, 5), ("Q", 1500, 5), ("T", 2000, 0), ("Q", 1500, -5), ("P", 500, -5)]
        net = await _synthetic(pool, path, stops)
        assert [p for _, _, p in net.stop_times["T"]] == pytest.approx(
            [500, 1500, 2000, 2500, 3500], abs=2
        )
        assert net.distance_m("Q", "P", trip_id="T") == pytest.approx(1000, abs=2)  # inbound
        assert net.distance_m("P", "Q", trip_id="T") == pytest.approx(1000, abs=2)  # outbound
        assert net.distance_m("P", "T", trip_id="T") == pytest.approx(1500, abs=2)

    async def test_a_figure_eight_through_one_crossing(self, pool):
        # Two 1 km squares meeting at the origin; the crossing stop X is served twice.
        path = [(0, 0), (1000, 0), (1000, 1000), (0, 1000), (0, 0), (-1000, 0)]
        path += [(-1000, -1000), (0, -1000), (0, 0)]
        stops = [("X", 3, 3), ("N", 1005, 500), ("X", -3, 3), ("S", -1000, -500), ("Y", 5, -500)]
        net = await _synthetic(pool, path, stops)
        positions = [p for _, _, p in net.stop_times["T"]]
        assert positions == pytest.approx([3, 1500, 4000, 5500, 7500], abs=5)
        assert net.distance_m("X", "S", trip_id="T") == pytest.approx(1500, abs=5)  # 2nd X
        assert net.distance_m("N", "Y", trip_id="T") == pytest.approx(6000, abs=5)

    async def test_stops_beyond_the_shapes_ends_extend_it(self, pool):
        # The feed's first and last stops lie 200 m past the shape's ends (as in Cairns).
        stops = [("A", -200, 0), ("B", 0, 5), ("C", 1000, 5), ("D", 1200, 0)]
        net = await _synthetic(pool, [(0, 0), (1000, 0)], stops)
        assert net.distance_m("A", "B", trip_id="T") == pytest.approx(200, abs=2)
        assert net.distance_m("C", "D", trip_id="T") == pytest.approx(200, abs=2)
        assert net.distance_m("A", "D", trip_id="T") == pytest.approx(1400, abs=2)
        assert [p for _, _, p in net.stop_times["T"]] == pytest.approx([-200, 0, 1000, 1200], abs=2)


class TestPipeline:
    async def test_a_ride_the_whole_shape_projection_got_backwards_is_credited(
        self, pool, settings, cairns, cairns_rows
    ):
        """The issue's honest rider: boarding and alighting on a loop where the alighting stop
        projects onto the whole shape before the boarding stop (distance_unknown before)."""
        from shapely.geometry import box

        from tests.behaviours.factories import import_districts, linked, metro, operator, run

        _, net = cairns
        stops, shapes, trips, _ = cairns_rows
        stop_ll = {s: (lon, lat) for s, _, lat, lon in stops}
        whole = {s: LineString(shapely.get_coordinates(shapely.from_wkb(g))) for s, g, _ in shapes}
        shape_of = {t: sh for t, _, sh in trips}
        found = None
        for trip_id in sorted(net.stop_times):
            times = net.stop_times[trip_id]
            ids = [s for _, s, _ in times]
            line = whole[shape_of[trip_id]]
            for i in range(1, len(times) - 1):
                b, a = ids[i], ids[-2]
                if ids.count(b) == 1 and ids.count(a) == 1 and b != a:
                    pb = line.project(shapely.Point(stop_ll[b]))
                    if line.project(shapely.Point(stop_ll[a])) < pb:
                        found = (trip_id, b, a, net.trip_distance_m(trip_id, i, len(ids) - 2))
                        break
            if found:
                break
        assert found is not None
        trip_id, board, alight, expected = found
        await import_districts(pool)
        async with transaction(pool) as tx:  # a district around Cairns for the region check
            cairns_box = bytes(shapely.to_wkb(box(145.5, -17.2, 145.9, -16.6)))
            await service.import_districts(tx, [("440399", "Cairns", "440300", cairns_box)])
        await operator(pool, "buses", feed="cairns")
        _, subject = await linked(pool, "buses")
        [verdict] = await run(
            pool,
            settings,
            [
                metro(
                    subject,
                    mode="bus",
                    distance_m=None,
                    minutes=60,
                    boarding_stop=board,
                    alighting_stop=alight,
                    gtfs_trip_id=trip_id,
                )
            ],
            op_id="buses",
        )
        assert verdict.status == "accepted", verdict
        async with pool.acquire() as conn:
            row = await conn.fetchrow("SELECT distance_m, distance_source FROM behaviour_events")
        assert (row["distance_m"], row["distance_source"]) == (expected, "gtfs")
        assert expected > 1000
