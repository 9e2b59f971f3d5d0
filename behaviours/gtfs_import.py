"""Importing a GTFS feed: rows streamed into the database in chunks, then every trip's stops
located along its shape once (docs/behaviours.md, "GTFS feeds").

Memory is bounded by the feed's stops, shapes and trips, never by its stop_times: those go to a
staging table as they are read (COPY, ``CHUNK`` rows at a time), come back ordered by shape and
trip through a cursor, and leave again, located, in chunks. Trips of one shape that stop at the
same stops (a trip pattern) are located once.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterable, Iterator
from itertools import islice
from typing import Any

import numpy as np

from behaviours import repository as repo
from behaviours.reference import STOP_RADIUS_M, Shape
from integrations.gtfs import UNITS, Report, infer_unit

CHUNK = 20_000


class _Writer:
    """Buffers rows per table and COPYs them by chunks; writes nothing once the report has an
    error (the import will be refused and rolled back, but the reading goes on so the report
    lists every problem)."""

    def __init__(self, conn: Any, report: Report) -> None:
        self.conn, self.report = conn, report
        self.buffers: dict[str, list[tuple[Any, ...]]] = {}

    async def copy(self, table: str, rows: Iterable[tuple[Any, ...]]) -> int:
        """COPY all of ``rows`` (an iterator is consumed CHUNK rows at a time); their count."""
        it, n = iter(rows), 0
        while chunk := list(islice(it, CHUNK)):
            n += len(chunk)
            if self.report.ok:
                await repo.copy_gtfs(self.conn, table, chunk)
        return n

    async def flush(self, table: str) -> None:
        buf = self.buffers.get(table)
        if buf and self.report.ok:
            await repo.copy_gtfs(self.conn, table, buf)
        if buf:
            buf.clear()


async def import_feed(
    conn: Any,
    feed: str,
    stops: Iterable[tuple[str, str, float, float]],
    shapes: Iterable[tuple[Any, ...]],
    trips: Iterable[tuple[str, str, str | None]],
    stop_times: Iterable[tuple[Any, ...]],
    *,
    report: Report,
    distance_unit: str | None = None,
) -> Report:
    """Replace ``feed`` by these rows, read once and in this order (generators are fine).
    ``shapes``: (shape_id, WKB lon/lat[, the points' shape_dist_traveled]); ``stop_times``:
    (trip_id, stop_sequence, stop_id, shape_dist_traveled[, line]). Problems go to
    ``report``; with an error in it nothing is left written once the caller rolls back."""
    started = time.perf_counter()
    await repo.begin_gtfs_replace(conn, feed)
    out = _Writer(conn, report)

    coords: dict[str, tuple[float, float]] = {}

    def stop_rows() -> Iterator[tuple[Any, ...]]:
        for stop_id, name, lat, lon in stops:
            coords[stop_id] = (lon, lat)
            yield feed, stop_id, name, lat, lon

    report.counts.setdefault("stops", await out.copy("gtfs_stops", stop_rows()))

    geometries: dict[str, tuple[bytes, list[float] | None]] = {}
    lengths: dict[str, float] = {}
    evidence: list[tuple[float, float]] = []

    def shape_rows() -> Iterator[tuple[Any, ...]]:
        for row in shapes:
            sid, geometry = row[0], row[1]
            dists = row[2] if len(row) > 2 else None
            shape = Shape.from_wkb(geometry, dists)
            geometries[sid], lengths[sid] = (geometry, dists), shape.length
            if shape.dists is not None:
                evidence.append((float(shape.dists[-1] - shape.dists[0]), shape.length))
            yield feed, sid, geometry

    report.counts.setdefault("shapes", await out.copy("gtfs_shapes", shape_rows()))
    trip_rows = ((feed, trip_id, route_id, shape_id) for trip_id, route_id, shape_id in trips)
    report.counts.setdefault("trips", await out.copy("gtfs_trips", trip_rows))

    with_dist = 0

    def staged() -> Iterator[tuple[Any, ...]]:
        nonlocal with_dist
        for row in stop_times:
            if row[3] is not None:
                with_dist += 1
            yield row[0], row[1], row[2], row[3], row[4] if len(row) > 4 else None

    report.counts.setdefault("stop_times", await out.copy("gtfs_stop_times_import", staged()))
    report.timings["read and staged"] = time.perf_counter() - started
    if not report.ok:
        return report

    metres_per_unit = None
    if with_dist:
        metres_per_unit = await _distance_unit(conn, feed, report, evidence, lengths, distance_unit)
    else:
        report.notes.append("shape_dist_traveled: absent; every stop located on its shape")
    await _locate(conn, feed, report, out, coords, geometries, metres_per_unit)
    return report


async def _distance_unit(
    conn: Any,
    feed: str,
    report: Report,
    evidence: list[tuple[float, float]],
    lengths: dict[str, float],
    given: str | None,
) -> float | None:
    """Metres per shape_dist_traveled unit: the given one, else inferred from the shapes'
    lengths (their points' distances, and the largest distance of each shape's stop times)."""
    for shape_id, span in await repo.gtfs_import_distance_spans(conn, feed):
        if shape_id in lengths:
            evidence.append((span, lengths[shape_id]))
    inferred = infer_unit(evidence)
    if given is not None:
        note = f"shape_dist_traveled: in {given} (--distance-unit)"
        if inferred is not None and inferred[0] != given:
            report.warn(
                "distance_unit_mismatch",
                "stop_times.txt",
                None,
                f"--distance-unit {given}, but the shapes' lengths suggest {inferred[0]} "
                f"(median ratio {inferred[1]:.3f}); trips whose distances disagree with their "
                "shape are located on it instead",
            )
        report.notes.append(note)
        return UNITS[given]
    if inferred is None:
        report.warn(
            "distance_unit_unknown",
            "stop_times.txt",
            None,
            "the unit of shape_dist_traveled cannot be inferred from the shapes' lengths: "
            "ignored (stops located on their shapes); give it with --distance-unit",
        )
        return None
    report.notes.append(
        f"shape_dist_traveled: in {inferred[0]} (inferred: distance / shape length = "
        f"{inferred[1]:.3f} over {len(evidence)} shapes)"
    )
    return UNITS[inferred[0]]


async def _locate(
    conn: Any,
    feed: str,
    report: Report,
    out: _Writer,
    coords: dict[str, tuple[float, float]],
    geometries: dict[str, tuple[bytes, list[float] | None]],
    metres_per_unit: float | None,
) -> None:
    """Each trip's stop pattern (its stop sequences, stops and distances, aggregated by the
    database, trips ordered by shape) is placed once; the stop times are then written by one
    INSERT ... SELECT joining every staged row to its pattern's position at its stop_sequence
    (hash joins, no sort), so no stop time passes through Python a second time."""
    counts = {"shape": 0, "distance": 0, "no_shape": 0, "unknown": 0}
    current: str | None = None
    shape: Shape | None = None
    patterns: dict[tuple[Any, ...], tuple[int, str]] = {}  # of the current shape
    n_patterns = 0

    started = time.perf_counter()
    cursor = await repo.gtfs_import_trip_patterns(conn, feed)
    while trips := await cursor.fetch(CHUNK // 10):
        assigned, placed = [], []
        for trip_id, shape_id, seqs, stops, dists, lines in trips:
            if shape_id != current or (shape is None and shape_id in geometries):
                current = shape_id
                patterns.clear()
                shape = Shape.from_wkb(*geometries[shape_id]) if shape_id in geometries else None
            repeated = [i for i in range(1, len(seqs)) if seqs[i] == seqs[i - 1]]
            for i in repeated[:1]:
                report.error(
                    "stop_sequence_repeated",
                    "stop_times.txt",
                    lines[i],
                    f"trip {trip_id!r}: stop_sequence {seqs[i]} repeated "
                    f"(also line {lines[i - 1]})",
                )
            if repeated:
                continue
            usable = metres_per_unit is not None and None not in dists
            key = (tuple(seqs), tuple(stops), tuple(dists) if usable else None)
            known = patterns.get(key)
            if known is None:
                n_patterns += 1
                positions, how = _place(
                    shape,
                    shape_id,
                    trip_id,
                    stops,
                    dists,
                    lines,
                    coords,
                    usable,
                    metres_per_unit,
                    report,
                )
                known = patterns[key] = (n_patterns, how)
                ps = positions if positions is not None else [None] * len(seqs)
                placed += [(n_patterns, q, p) for q, p in zip(seqs, ps, strict=True)]
            assigned.append((trip_id, known[0]))
            counts[known[1]] += len(seqs)
        await out.copy("gtfs_import_pattern_stops", placed)
        await out.copy("gtfs_import_trip_patterns", assigned)
    report.timings["trip patterns placed"] = time.perf_counter() - started
    if not report.ok:
        return
    started = time.perf_counter()
    await repo.gtfs_import_finish(conn, feed)
    report.timings["stop times written"] = time.perf_counter() - started
    report.notes.append(
        f"positions: {counts['shape']} stop times located on their shapes in stop order "
        f"({n_patterns} trip patterns), {counts['distance']} from shape_dist_traveled, "
        f"{counts['no_shape']} from shape_dist_traveled without a shape, "
        f"{counts['unknown']} unknown (no shape, no usable shape_dist_traveled)"
    )


def _place(
    shape: Shape | None,
    shape_id: str | None,
    trip_id: str,
    stops: list[str],
    dists: list[float | None],
    lines: list[int | None],
    coords: dict[str, tuple[float, float]],
    usable: bool,
    metres_per_unit: float | None,
    report: Report,
) -> tuple[list[float] | None, str]:
    """One trip pattern's positions (metres) and how they were found: from
    shape_dist_traveled when consistent with the shape, else located on it in stop order;
    without a shape, shape_dist_traveled converted (never backwards) or unknown. Stops far
    from the shape are reported."""
    if shape is None:
        if usable and all(a <= b for a, b in itertools.pairwise(dists)):  # type: ignore[operator]
            return [d * metres_per_unit for d in dists], "no_shape"  # type: ignore[operator]
        return None, "unknown"
    lons, lats = zip(*(coords[s] for s in stops), strict=True)
    pts = shape.local(lons, lats)
    if usable:
        assert metres_per_unit is not None
        pos = shape.from_distances(dists, metres_per_unit)
        if shape.agrees(pts, pos):
            return np.clip(pos, 0.0, shape.length).tolist(), "distance"
        report.warn(
            "distance_inconsistent",
            "stop_times.txt",
            lines[0],
            f"trip {trip_id!r}: shape_dist_traveled disagrees with shape {shape_id!r} "
            "(backwards, off the shape or far from its stops): located on the shape instead",
        )
    pos, offsets = shape.locate(pts)
    for stop_id, line, off in zip(stops, lines, offsets.tolist(), strict=True):
        if off > STOP_RADIUS_M:
            report.warn(
                "stop_far_from_shape",
                "stop_times.txt",
                line,
                f"trip {trip_id!r}: stop {stop_id!r} is {off:.0f} m from shape {shape_id!r} "
                f"(tolerance {STOP_RADIUS_M:.0f} m)",
            )
    return pos.tolist(), "shape"
