"""Importing GTFS feeds (issue 16): the validation report an operator reads (errors name file and
line and refuse the feed whole, warnings are reported and imported), shape_dist_traveled's unit
inferred or given, and `tanpuhui import-gtfs` itself (--help, exit status, atomic replace)."""

from __future__ import annotations

import math
import zipfile
from pathlib import Path
from typing import Any

import pytest

from behaviours import service
from behaviours.pipeline import ReferenceCache
from integrations.gtfs import GtfsError, GtfsFeed, infer_unit, read_feed
from kit.db import transaction
from tests.server.processes import python, run, store_env

TANPUHUI = python("-m", "server.cli")
LAT = 22.55
# metres per degree of longitude at LAT (the importer's local projection around the shape)
M_PER_DEG_LON = 111_320.0 * math.cos(math.radians(LAT))

STOPS = (
    "stop_id,stop_name,stop_lat,stop_lon\nA,A,22.55,114.00\nB,B,22.55,114.01\nC,C,22.55,114.03\n"
)
SHAPES = (
    "shape_id,shape_pt_lat,shape_pt_lon,shape_pt_sequence\n"
    "L,22.55,114.00,1\nL,22.55,114.02,2\nL,22.55,114.03,3\n"
)
TRIPS = "route_id,service_id,trip_id,shape_id\nR,WK,T1,L\n"
STOP_TIMES = (
    "trip_id,arrival_time,departure_time,stop_id,stop_sequence\n"
    "T1,08:00:00,08:00:00,A,1\nT1,08:05:00,08:05:00,B,2\nT1,08:10:00,08:10:00,C,3\n"
)


def write_feed(path: Path, **files: str | None) -> Path:
    """A .zip feed of the default files, with ``files`` (name without .txt) replacing them."""
    content: dict[str, str | None] = {
        "stops": STOPS,
        "shapes": SHAPES,
        "trips": TRIPS,
        "stop_times": STOP_TIMES,
    }
    content.update(files)
    with zipfile.ZipFile(path, "w") as z:
        for name, text in content.items():
            if text is not None:
                z.writestr(f"{name}.txt", text)
    return path


def read_report(path: Path) -> Any:
    feed = GtfsFeed(path)
    try:
        feed.check_files()
        if not feed.report.ok:  # as the command: nothing more is read
            return feed.report
        for rows in (feed.stops(), feed.shapes(), feed.trips(), feed.stop_times()):
            for _ in rows:
                pass
    finally:
        feed.close()
    return feed.report


async def network(pool: Any, feed: str) -> Any:
    async with pool.acquire() as conn:
        return (await ReferenceCache().get(conn)).networks[feed]


async def import_path(pool: Any, feed_id: str, path: Path, unit: str | None = None) -> Any:
    feed = GtfsFeed(path)
    try:
        async with transaction(pool) as tx:
            return await service.import_gtfs(
                tx,
                feed_id,
                feed.stops(),
                feed.shapes(),
                feed.trips(),
                feed.stop_times(),
                distance_unit=unit,
                report=feed.report,
            )
    finally:
        feed.close()


class TestValidationReport:
    def test_a_missing_column_and_an_unknown_stop_name_file_and_line(self, tmp_path):
        bad = write_feed(
            tmp_path / "bad.zip",
            shapes=SHAPES.replace("shape_pt_lon,", "lon,"),
            stop_times=STOP_TIMES + "T1,08:20:00,08:20:00,NOPE,4\n",
        )
        report = read_report(bad)
        assert not report.ok
        assert report.format().splitlines()[-3:] == [
            "errors (2):",
            "  shapes.txt line 1: required column shape_pt_lon is missing",
            "  stop_times.txt line 5: trip 'T1': stop_id 'NOPE' is not in stops.txt",
        ]

    def test_an_unreadable_file_is_one_error_not_one_per_reference(self, tmp_path):
        bad = write_feed(tmp_path / "bad.zip", stops="stop_id,stop_name,stop_lat\nA,A,22.55\n")
        report = read_report(bad)
        assert [str(e) for e in report.errors] == [
            "stops.txt line 1: required column stop_lon is missing"
        ]

    def test_an_unknown_trip_and_shape_repeated_ids_and_bad_numbers(self, tmp_path):
        bad = write_feed(
            tmp_path / "bad.zip",
            stops=STOPS + "B,again,22.56,114.01\nD,D,north,114.0\n",
            trips=TRIPS + "R,WK,T2,NOSHAPE\nR,WK,T1,L\n",
            stop_times=STOP_TIMES + "T9,08:20:00,08:20:00,A,1\nT1,x,x,A,four\n",
        )
        report = read_report(bad)
        lines = {str(i) for i in report.errors}
        assert lines == {
            "stops.txt line 5: stop_id 'B' repeated",
            "stops.txt line 6: stop 'D': no usable lat/lon",
            "trips.txt line 3: trip 'T2': shape_id 'NOSHAPE' is not in shapes.txt",
            "trips.txt line 4: trip_id 'T1' repeated",
            "stop_times.txt line 5: trip_id 'T9' is not in trips.txt",
            "stop_times.txt line 6: trip 'T1': stop_sequence or shape_dist_traveled is not a "
            "number",
        }

    def test_a_refused_trip_is_one_error_not_one_per_stop_time(self, tmp_path):
        bad = write_feed(
            tmp_path / "bad.zip",
            trips=TRIPS + "R,WK,T2,NOSHAPE\n",
            stop_times=STOP_TIMES + "T2,08:20:00,08:20:00,A,1\nT2,08:30:00,08:30:00,B,2\n",
        )
        assert [str(e) for e in read_report(bad).errors] == [
            "trips.txt line 3: trip 'T2': shape_id 'NOSHAPE' is not in shapes.txt"
        ]  # its stop times are not reported as naming a trip that is not in trips.txt

    def test_a_stop_without_a_position_may_exist_but_not_be_served(self, tmp_path):
        stops = "stop_id,stop_name,stop_lat,stop_lon,location_type\n" + "".join(
            line + ",0\n" for line in STOPS.splitlines()[1:]
        )
        bad = write_feed(
            tmp_path / "n.zip",
            stops=stops + "N,node,,,3\n",
            stop_times=STOP_TIMES + "T1,08:20:00,08:20:00,N,4\n",
        )
        assert [str(e) for e in read_report(bad).errors] == [
            "stop_times.txt line 5: trip 'T1': stop_id 'N' has no position in stops.txt"
        ]

    def test_a_missing_required_file(self, tmp_path):
        report = read_report(write_feed(tmp_path / "f.zip", trips=None))
        assert [str(i) for i in report.errors] == ["trips.txt: trips.txt is missing from the feed"]

    def test_warnings_are_not_errors(self, tmp_path):
        feed = write_feed(
            tmp_path / "w.zip",
            trips=TRIPS + "R,WK,T2,L\n",
            stop_times=STOP_TIMES + "T2,09:00:00,09:00:00,A,1\n",
        )
        report = read_report(feed)
        assert report.ok
        assert [str(w) for w in report.warnings] == [
            "trips.txt line 3: trip 'T2' has 1 stop time(s): no distance can be measured"
        ]

    def test_many_errors_of_a_kind_are_counted_not_all_listed(self, tmp_path):
        rows = "".join(f"T1,08:00:00,08:00:00,X{i},{i + 10}\n" for i in range(25))
        report = read_report(write_feed(tmp_path / "m.zip", stop_times=STOP_TIMES + rows))
        assert report.error_counts == {"stop_unknown": 25}
        assert "... and 15 more stop_unknown" in report.format()

    def test_read_feed_raises_with_the_report(self, tmp_path):
        with pytest.raises(GtfsError) as caught:
            read_feed(write_feed(tmp_path / "b.zip", stop_times=STOP_TIMES + "T1,,,NOPE,9\n"))
        assert "stop_times.txt line 5" in str(caught.value)


class TestDistanceUnit:
    @pytest.mark.parametrize(
        ("unit", "factor"), [("m", 1.0), ("km", 1000.0), ("mi", 1609.344), ("ft", 0.3048)]
    )
    def test_inferred_from_lengths(self, unit, factor):
        evidence = [(length * 0.98 / factor, length) for length in (5_000.0, 12_000.0, 800.0)]
        inferred = infer_unit(evidence)
        assert inferred is not None and inferred[0] == unit
        assert inferred[1] == pytest.approx(0.98)

    def test_nothing_near_one_is_no_unit(self):
        assert infer_unit([(2.3, 1000.0)]) is None  # 2.3 km over 1 km, 1.43 mi ...
        assert infer_unit([]) is None


def km_feed(tmp_path: Path, with_shape_distances: bool) -> Path:
    """Stop B is 1.0 km along the shape by shape_dist_traveled (in km) but only 0.01 deg of
    longitude (about 1.03 km) from A: the feed's distances are used, not the projection."""
    shapes = SHAPES
    if with_shape_distances:
        shapes = (
            "shape_id,shape_pt_lat,shape_pt_lon,shape_pt_sequence,shape_dist_traveled\n"
            "L,22.55,114.00,1,0\nL,22.55,114.02,2,2.06\nL,22.55,114.03,3,3.09\n"
        )
    stop_times = (
        "trip_id,arrival_time,departure_time,stop_id,stop_sequence,shape_dist_traveled\n"
        "T1,08:00:00,08:00:00,A,1,0\nT1,08:05:00,08:05:00,B,2,1.0\n"
        "T1,08:10:00,08:10:00,C,3,3.0\n"
    )
    return write_feed(tmp_path / "km.zip", shapes=shapes, stop_times=stop_times)


class TestImport:
    async def test_kilometres_are_inferred_and_used(self, pool, tmp_path):
        report = await import_path(pool, "km", km_feed(tmp_path, with_shape_distances=False))
        assert report.ok
        assert any("in km (inferred" in n for n in report.notes), report.notes
        net = await network(pool, "km")
        assert net.distance_m("A", "B", trip_id="T1") == 1000  # 1.0 km, not 1 m
        assert net.distance_m("A", "C", trip_id="T1") == 3000
        # not the geometric projection of B (0.01 deg of longitude)
        assert abs(0.01 * M_PER_DEG_LON - 1000) > 20

    async def test_shape_point_distances_map_stop_distances_onto_the_geometry(self, pool, tmp_path):
        await import_path(pool, "km", km_feed(tmp_path, with_shape_distances=True))
        net = await network(pool, "km")
        length = 0.03 * M_PER_DEG_LON
        # 1.0 of 3.09 along the shape's own distances: that share of its geometric length
        assert net.distance_m("A", "B", trip_id="T1") == round(length * 1.0 / 3.09)
        assert net.distance_m("A", "C", trip_id="T1") == round(length * 3.0 / 3.09)

    async def test_a_given_unit_wins_and_a_disagreeing_trip_is_located_instead(
        self, pool, tmp_path
    ):
        report = await import_path(
            pool, "km", km_feed(tmp_path, with_shape_distances=False), unit="m"
        )
        assert "shape_dist_traveled: in m (--distance-unit)" in report.notes
        kinds = set(report.warning_counts)
        assert kinds == {"distance_unit_mismatch", "distance_inconsistent"}
        net = await network(pool, "km")
        # 3.0 "metres" cannot be the shape's 3.08 km: located on the shape
        assert net.distance_m("A", "C", trip_id="T1") == round(0.03 * M_PER_DEG_LON)

    async def test_stops_far_from_the_shape_are_warned_and_still_located(self, pool, tmp_path):
        stops = STOPS.replace("B,B,22.55,114.01", "B,B,22.552,114.01")  # ~220 m north
        report = await import_path(pool, "far", write_feed(tmp_path / "f.zip", stops=stops))
        assert report.ok
        [warning] = report.warnings
        assert warning.kind == "stop_far_from_shape" and warning.line == 3
        assert "stop 'B' is 221 m from shape 'L' (tolerance 100 m)" in str(warning)
        net = await network(pool, "far")
        assert net.distance_m("A", "B", trip_id="T1") == round(0.01 * M_PER_DEG_LON)

    async def test_a_refused_feed_leaves_the_previous_one_whole(self, pool, tmp_path):
        await import_path(pool, "city", write_feed(tmp_path / "good.zip"))
        bad = write_feed(tmp_path / "bad.zip", stop_times=STOP_TIMES + "T1,08:20:00,08:20:00,C,3\n")
        with pytest.raises(GtfsError) as caught:
            await import_path(pool, "city", bad)
        assert [str(e) for e in caught.value.report.errors] == [
            "stop_times.txt line 5: trip 'T1': stop_sequence 3 repeated (also line 4)"
        ]
        async with pool.acquire() as conn:
            kept = await conn.fetchval("SELECT count(*) FROM gtfs_stop_times WHERE feed = 'city'")
        assert kept == 3

    async def test_a_feed_without_shapes_uses_its_distances(self, pool, tmp_path):
        stop_times = (
            "trip_id,stop_id,stop_sequence,shape_dist_traveled\n"
            "T1,A,1,0\nT1,B,2,1100\nT1,C,3,3300\n"
        )
        feed = write_feed(
            tmp_path / "n.zip",
            shapes=None,
            trips="route_id,trip_id\nR,T1\n",
            stop_times=stop_times,
        )
        report = await import_path(pool, "n", feed, unit="m")
        assert report.ok
        net = await network(pool, "n")
        assert net.distance_m("B", "C", trip_id="T1") == 2200


class TestCommand:
    def test_help_documents_the_validation_and_the_unit(self):
        proc = run([*TANPUHUI, "import-gtfs", "--help"], store_env_free(), timeout=60)
        assert proc.returncode == 0, proc.stderr
        text = " ".join(proc.stdout.split())
        assert "--distance-unit {ft,km,m,mi}" in text
        assert "errors naming file and line" in text and "warnings" in text

    async def test_planted_errors_exit_1_with_the_report_nothing_imported(
        self, pool, settings, tmp_path
    ):
        bad = write_feed(
            tmp_path / "bad.zip",
            shapes=SHAPES.replace("shape_pt_lon,", "lon,"),
            stop_times=STOP_TIMES + "T1,08:20:00,08:20:00,NOPE,4\n",
        )
        proc = run([*TANPUHUI, "import-gtfs", "city", str(bad)], store_env(settings))
        assert proc.returncode == 1, proc.stdout
        assert "GTFS feed refused, nothing imported" in proc.stderr
        assert "shapes.txt line 1: required column shape_pt_lon is missing" in proc.stderr
        assert "stop_times.txt line 5: trip 'T1': stop_id 'NOPE' is not in stops.txt" in (
            proc.stderr
        )
        assert "Traceback" not in proc.stderr
        async with pool.acquire() as conn:
            assert await conn.fetchval("SELECT count(*) FROM gtfs_stops") == 0

    async def test_a_good_feed_prints_counts_and_the_report(self, pool, settings, tmp_path):
        good = write_feed(tmp_path / "good.zip")
        proc = run([*TANPUHUI, "import-gtfs", "city", str(good)], store_env(settings))
        assert proc.returncode == 0, proc.stderr
        assert "GTFS feed 'city' replaced" in proc.stdout and "3 stop times" in proc.stdout
        assert "shape_dist_traveled: absent" in proc.stdout
        net = await network(pool, "city")
        assert net.distance_m("A", "C", trip_id="T1") == round(0.03 * M_PER_DEG_LON)


def store_env_free() -> dict[str, str]:
    from tests.server.processes import base_env

    return base_env()
