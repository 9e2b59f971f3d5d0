"""GTFS static feeds (stops, shapes, trips, stop_times) from a directory or a .zip, streamed and
validated as an operator needs it (docs/behaviours.md, "GTFS feeds").

Pure: files in, rows and a :class:`Report` out; ``tanpuhui import-gtfs FEED PATH`` stores them
(``behaviours.service.import_gtfs``), which also locates every stop on its trip's shape.

Memory: each file is read row by row through ``csv`` over the zip member's stream; what is kept
is what the checks need (stop coordinates, the shapes' points, one entry per trip), never the
stop_times, whose rows are handed on as they are read.
"""

from __future__ import annotations

import csv
import io
import itertools
import math
import statistics
import zipfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from shapely import linestrings, to_wkb

# shape_dist_traveled's possible units (GTFS leaves it to the feed), in metres.
UNITS: dict[str, float] = {"m": 1.0, "km": 1000.0, "mi": 1609.344, "ft": 0.3048}
# A unit is inferred when the feed's distances over the shapes' lengths, converted to metres,
# have a median within this factor of 1 (the candidates are >= 1.6 apart, except ft/m: 3.3).
UNIT_RATIO_TOLERANCE = 1.25

REQUIRED: dict[str, tuple[str, ...]] = {
    "stops.txt": ("stop_id", "stop_lat", "stop_lon"),
    "shapes.txt": ("shape_id", "shape_pt_lat", "shape_pt_lon", "shape_pt_sequence"),
    "trips.txt": ("route_id", "trip_id"),
    "stop_times.txt": ("trip_id", "stop_id", "stop_sequence"),
}
OPTIONAL_FILES = ("shapes.txt",)
EXAMPLES = 10  # issues of one kind listed in the report; the rest are counted


@dataclass(frozen=True, slots=True)
class Issue:
    kind: str  # stable, e.g. "stop_unknown"
    file: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"{self.file} line {self.line}" if self.line is not None else self.file
        return f"{where}: {self.message}"


@dataclass(slots=True)
class Report:
    """What an import found: errors (the feed is refused), warnings (imported, reported),
    counts and notes (the distance unit, how stops were placed)."""

    errors: list[Issue] = field(default_factory=list)
    warnings: list[Issue] = field(default_factory=list)
    error_counts: dict[str, int] = field(default_factory=dict)
    warning_counts: dict[str, int] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)  # phase -> seconds

    def error(self, kind: str, file: str, line: int | None, message: str) -> None:
        n = self.error_counts.get(kind, 0)
        self.error_counts[kind] = n + 1
        if n < EXAMPLES:
            self.errors.append(Issue(kind, file, line, message))

    def warn(self, kind: str, file: str, line: int | None, message: str) -> None:
        n = self.warning_counts.get(kind, 0)
        self.warning_counts[kind] = n + 1
        if n < EXAMPLES:
            self.warnings.append(Issue(kind, file, line, message))

    @property
    def ok(self) -> bool:
        return not self.error_counts

    def format(self) -> str:
        lines = [
            "feed: " + ", ".join(f"{self.counts.get(k, 0)} {k.replace('_', ' ')}" for k in _COUNTED)
        ]
        lines += self.notes
        if self.timings:
            lines.append("time: " + ", ".join(f"{k} {v:.1f} s" for k, v in self.timings.items()))
        for title, issues, counts in (
            ("errors", self.errors, self.error_counts),
            ("warnings", self.warnings, self.warning_counts),
        ):
            total = sum(counts.values())
            if not total:
                continue
            lines.append(f"{title} ({total}):")
            for kind, n in counts.items():
                shown = [i for i in issues if i.kind == kind]
                lines += [f"  {i}" for i in shown]
                if n > len(shown):
                    lines.append(f"  ... and {n - len(shown)} more {kind}")
        return "\n".join(lines)


_COUNTED = ("stops", "shapes", "trips", "stop_times")


class GtfsError(ValueError):
    """The feed cannot be imported; ``report`` says why (file and line)."""

    def __init__(self, report: Report) -> None:
        self.report = report
        first = report.errors[0] if report.errors else "invalid feed"
        super().__init__(str(first))


# Rows handed on (the shapes' WKB is lon/lat; ``dists`` the points' shape_dist_traveled).
StopRow = tuple[str, str, float, float]  # stop_id, name, lat, lon
ShapeRow = tuple[str, bytes, "list[float] | None"]  # shape_id, WKB, point distances
TripRow = tuple[str, str, "str | None"]  # trip_id, route_id, shape_id
StopTimeRow = tuple[str, int, str, "float | None", int]  # trip, seq, stop, dist, line


def _number(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(text)
    return value


class GtfsFeed:
    """One feed, read in the order the checks need: stops, shapes, trips, stop_times (each a
    generator; read each once, in that order). Problems go to ``report``."""

    def __init__(self, source: Path, report: Report | None = None) -> None:
        self.source = source
        self.report = report if report is not None else Report()
        self._stop_ids: set[str] = set()
        self._shape_ids: set[str] = set()
        self._trips: dict[str, list[int]] = {}  # trip_id -> [trips.txt line, stop times]
        self._refused_trips: set[str] = set()  # in trips.txt but refused (their error told)
        self._dropped_shapes: set[str] = set()  # fewer than 2 points: their trips get none
        self._unreadable: set[str] = set()  # references to these files are not checked
        self._nodes: set[str] = set()  # stops without a position: no stop time may use them
        self._zip: zipfile.ZipFile | None = None
        self._members: dict[str, str] = {}
        if source.suffix.lower() == ".zip":
            self._zip = zipfile.ZipFile(source)
            for info in self._zip.infolist():  # a feed zipped inside a folder is accepted
                base = info.filename.rsplit("/", 1)[-1]
                if base in REQUIRED and (base not in self._members or "/" not in info.filename):
                    self._members[base] = info.filename
        elif not source.is_dir():
            raise FileNotFoundError(f"{source}: neither a directory nor a .zip")

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()

    def has(self, name: str) -> bool:
        if self._zip is not None:
            return name in self._members
        return (self.source / name).is_file()

    def check_files(self) -> None:
        """Every required file present (before anything is read)."""
        for name in REQUIRED:
            if name not in OPTIONAL_FILES and not self.has(name):
                self.report.error("file_missing", name, None, f"{name} is missing from the feed")

    @contextmanager
    def _open(self, name: str) -> Iterator[io.TextIOBase]:
        if self._zip is not None:
            with self._zip.open(self._members[name]) as raw:
                yield io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")
        else:
            with (self.source / name).open(encoding="utf-8-sig", newline="") as f:
                yield f

    def _rows(
        self, name: str, optional: Sequence[str] = ()
    ) -> Iterator[tuple[int, list[str], dict[str, int]]]:
        """(line, cells, column index) of each data row; nothing when the file or a required
        column is missing (reported)."""
        if not self.has(name):
            return
        with self._open(name) as f:
            reader = csv.reader(f)
            try:
                header = [h.strip() for h in next(reader)]
            except StopIteration:
                self.report.error("file_empty", name, 1, f"{name} has no header line")
                return
            cols = {h: i for i, h in enumerate(header)}
            missing = [c for c in REQUIRED[name] if c not in cols]
            for c in missing:
                self.report.error("column_missing", name, 1, f"required column {c} is missing")
            if missing:
                self._unreadable.add(name)
                return
            width = max(cols[c] for c in (*REQUIRED[name], *optional) if c in cols) + 1
            for cells in reader:
                if len(cells) < width:
                    if not any(c.strip() for c in cells):
                        continue  # a blank line
                    cells = cells + [""] * (width - len(cells))
                yield reader.line_num, cells, cols

    def stops(self) -> Iterator[StopRow]:
        name = "stops.txt"
        for line, cells, cols in self._rows(name, ("stop_name", "location_type")):
            stop_id = cells[cols["stop_id"]]
            lat_s, lon_s = cells[cols["stop_lat"]].strip(), cells[cols["stop_lon"]].strip()
            kind = cells[cols["location_type"]].strip() if "location_type" in cols else ""
            if not stop_id:
                self.report.error("stop_id_empty", name, line, "stop_id is empty")
                continue
            if stop_id in self._stop_ids or stop_id in self._nodes:
                self.report.error("stop_duplicate", name, line, f"stop_id {stop_id!r} repeated")
                continue
            if not lat_s and not lon_s and kind in ("3", "4"):
                self._nodes.add(stop_id)  # generic nodes and boarding areas may have no position
                continue
            self._stop_ids.add(stop_id)
            try:
                lat, lon = _number(lat_s), _number(lon_s)
            except ValueError:
                self.report.error(
                    "stop_position_invalid", name, line, f"stop {stop_id!r}: no usable lat/lon"
                )
                continue
            if not (-90 <= lat <= 90 and -180 <= lon <= 180):
                self.report.error(
                    "stop_position_invalid", name, line, f"stop {stop_id!r}: lat/lon out of range"
                )
                continue
            stop_name = cells[cols["stop_name"]] if "stop_name" in cols else ""
            yield stop_id, stop_name, lat, lon
            self.report.counts["stops"] = self.report.counts.get("stops", 0) + 1

    def shapes(self) -> Iterator[ShapeRow]:
        """Each shape once its points are all read (shapes.txt need not be sorted: the points
        are held, 24 bytes each, then ordered by shape_pt_sequence)."""
        name = "shapes.txt"
        points: dict[str, list[tuple[int, float, float, float | None]]] = {}
        first_line: dict[str, int] = {}
        for line, cells, cols in self._rows(name, ("shape_dist_traveled",)):
            sid = cells[cols["shape_id"]]
            try:
                seq = int(cells[cols["shape_pt_sequence"]])
                lat = _number(cells[cols["shape_pt_lat"]])
                lon = _number(cells[cols["shape_pt_lon"]])
                d = (
                    cells[cols["shape_dist_traveled"]].strip()
                    if "shape_dist_traveled" in cols
                    else ""
                )
                dist = _number(d) if d else None
            except ValueError:
                self.report.error(
                    "shape_point_invalid", name, line, f"shape {sid!r}: a field is not a number"
                )
                continue
            points.setdefault(sid, []).append((seq, lon, lat, dist))
            first_line.setdefault(sid, line)
        for sid, pts in points.items():
            pts.sort()
            if len(pts) < 2:
                self.report.warn(
                    "shape_too_short",
                    name,
                    first_line[sid],
                    f"shape {sid!r} has fewer than 2 points: ignored (its trips have no shape)",
                )
                continue
            if any(a[0] == b[0] for a, b in itertools.pairwise(pts)):
                self.report.error(
                    "shape_sequence_repeated",
                    name,
                    first_line[sid],
                    f"shape {sid!r} repeats a shape_pt_sequence",
                )
                continue
            dists = [p[3] for p in pts if p[3] is not None]
            usable = len(dists) == len(pts) and all(a <= b for a, b in itertools.pairwise(dists))
            self._shape_ids.add(sid)
            yield (
                sid,
                bytes(to_wkb(linestrings([(x, y) for _, x, y, _ in pts]))),
                dists if usable else None,
            )
            self.report.counts["shapes"] = self.report.counts.get("shapes", 0) + 1
        self._dropped_shapes = {s for s in points if s not in self._shape_ids}

    def trips(self) -> Iterator[TripRow]:
        name = "trips.txt"
        dropped = self._dropped_shapes
        for line, cells, cols in self._rows(name, ("shape_id",)):
            trip_id, route_id = cells[cols["trip_id"]], cells[cols["route_id"]]
            shape_id = (cells[cols["shape_id"]].strip() if "shape_id" in cols else "") or None
            if not trip_id:
                self.report.error("trip_id_empty", name, line, "trip_id is empty")
                continue
            if trip_id in self._trips:
                self.report.error("trip_duplicate", name, line, f"trip_id {trip_id!r} repeated")
                continue
            if shape_id is not None and shape_id not in self._shape_ids:
                if shape_id in dropped or "shapes.txt" in self._unreadable:
                    shape_id = None
                else:
                    self.report.error(
                        "shape_unknown",
                        name,
                        line,
                        f"trip {trip_id!r}: shape_id {shape_id!r} is not in shapes.txt",
                    )
                    self._refused_trips.add(trip_id)  # its stop times: this one error
                    continue
            self._trips[trip_id] = [line, 0]
            yield trip_id, route_id, shape_id
            self.report.counts["trips"] = self.report.counts.get("trips", 0) + 1

    def stop_times(self) -> Iterator[StopTimeRow]:
        name = "stop_times.txt"
        trips, stops, report = self._trips, self._stop_ids, self.report
        check_stops = "stops.txt" not in self._unreadable
        if "trips.txt" in self._unreadable:
            return
        n = 0
        index: tuple[int, int, int, int] | None = None
        for line, cells, cols in self._rows(name, ("shape_dist_traveled",)):
            if index is None:  # the hot loop of a large feed: positions looked up once
                index = (
                    cols["trip_id"],
                    cols["stop_id"],
                    cols["stop_sequence"],
                    cols.get("shape_dist_traveled", -1),
                )
            i_trip, i_stop, i_seq, i_dist = index
            trip_id, stop_id = cells[i_trip], cells[i_stop]
            trip = trips.get(trip_id)
            if trip is None:
                if trip_id not in self._refused_trips:
                    report.error(
                        "trip_unknown", name, line, f"trip_id {trip_id!r} is not in trips.txt"
                    )
                continue
            if check_stops and stop_id not in stops:
                report.error(
                    "stop_unknown",
                    name,
                    line,
                    f"trip {trip_id!r}: stop_id {stop_id!r} is not in stops.txt"
                    if stop_id not in self._nodes
                    else f"trip {trip_id!r}: stop_id {stop_id!r} has no position in stops.txt",
                )
                continue
            try:
                seq = int(cells[i_seq])
                d = cells[i_dist] if i_dist >= 0 else ""
                dist = _number(d) if d and not d.isspace() else None
            except ValueError:
                report.error(
                    "stop_time_invalid",
                    name,
                    line,
                    f"trip {trip_id!r}: stop_sequence or shape_dist_traveled is not a number",
                )
                continue
            trip[1] += 1
            n += 1
            yield trip_id, seq, stop_id, dist, line
        report.counts["stop_times"] = n
        for trip_id, (line, count) in trips.items():
            if count < 2:
                report.warn(
                    "trip_too_short",
                    "trips.txt",
                    line,
                    f"trip {trip_id!r} has {count} stop time(s): no distance can be measured",
                )


def infer_unit(evidence: Sequence[tuple[float, float]]) -> tuple[str, float] | None:
    """The unit of shape_dist_traveled from (feed distance, length in metres) pairs of the same
    stretch (a shape's last point or a trip's last stop against the shape's length): the unit
    whose median ratio is nearest 1, if within ``UNIT_RATIO_TOLERANCE``; with that ratio."""
    pairs = [(d, m) for d, m in evidence if d > 0 and m > 0]
    if not pairs:
        return None
    best: tuple[float, str, float] | None = None
    for unit, metres in UNITS.items():
        ratio = statistics.median(d * metres / m for d, m in pairs)
        score = abs(math.log(ratio))
        if best is None or score < best[0]:
            best = (score, unit, ratio)
    assert best is not None
    if best[0] > math.log(UNIT_RATIO_TOLERANCE):
        return None
    return best[1], best[2]


def read_feed(
    source: Path,
) -> tuple[list[StopRow], list[ShapeRow], list[TripRow], list[StopTimeRow]]:
    """The whole feed as lists (small feeds, tests); GtfsError when it has errors."""
    feed = GtfsFeed(source)
    try:
        feed.check_files()
        if not feed.report.ok:
            raise GtfsError(feed.report)
        stops = list(feed.stops())
        shapes = list(feed.shapes())
        trips = list(feed.trips())
        stop_times = list(feed.stop_times())
    finally:
        feed.close()
    if not feed.report.ok:
        raise GtfsError(feed.report)
    return stops, shapes, trips, stop_times
