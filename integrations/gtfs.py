"""GTFS static import (stops, shapes, trips, stop_times) from a directory or a .zip.

Only what in-vehicle distances need is kept; the pipeline projects the boarding and alighting
stops onto the trip's shape (``behaviours.reference.TransitNetwork``). Pure: files in, rows
out; ``tanpuhui import-gtfs FEED PATH`` stores them (behaviours.service.import_gtfs).
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Iterator
from pathlib import Path

from shapely import to_wkb
from shapely.geometry import LineString


class GtfsError(ValueError):
    pass


def _rows(source: Path, name: str) -> Iterator[dict[str, str]]:
    if source.suffix == ".zip":
        with zipfile.ZipFile(source) as z:
            if name not in z.namelist():
                raise GtfsError(f"{name} missing from {source}")
            text = z.read(name).decode("utf-8-sig")
    else:
        path = source / name
        if not path.exists():
            raise GtfsError(f"{name} missing from {source}")
        text = path.read_text(encoding="utf-8-sig")
    yield from csv.DictReader(io.StringIO(text))


def read_feed(
    source: Path,
) -> tuple[
    list[tuple[str, str, float, float]],
    list[tuple[str, bytes]],
    list[tuple[str, str, str | None]],
    list[tuple[str, int, str, float | None]],
]:
    stops = [
        (r["stop_id"], r.get("stop_name", ""), float(r["stop_lat"]), float(r["stop_lon"]))
        for r in _rows(source, "stops.txt")
    ]
    points: dict[str, list[tuple[int, float, float]]] = {}
    for r in _rows(source, "shapes.txt"):
        points.setdefault(r["shape_id"], []).append(
            (int(r["shape_pt_sequence"]), float(r["shape_pt_lon"]), float(r["shape_pt_lat"]))
        )
    shapes = [
        (sid, bytes(to_wkb(LineString([(x, y) for _, x, y in sorted(pts)]))))
        for sid, pts in points.items()
        if len(pts) >= 2
    ]
    trips = [
        (r["trip_id"], r["route_id"], r.get("shape_id") or None) for r in _rows(source, "trips.txt")
    ]
    stop_times = [
        (
            r["trip_id"],
            int(r["stop_sequence"]),
            r["stop_id"],
            float(r["shape_dist_traveled"]) if r.get("shape_dist_traveled") else None,
        )
        for r in _rows(source, "stop_times.txt")
    ]
    return stops, shapes, trips, stop_times
