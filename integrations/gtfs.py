"""GTFS static import (stops, shapes, trips, stop_times) from a directory or a .zip.

Only what in-vehicle distances need is kept; the pipeline projects the boarding and alighting
stops onto the trip's shape (``behaviours.reference.TransitNetwork``).

    DATABASE_URL=... python -m integrations.gtfs <feed id> <gtfs dir or zip>
"""

from __future__ import annotations

import asyncio
import csv
import io
import os
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

from shapely import to_wkb
from shapely.geometry import LineString

from behaviours import service
from server.db import Tx, connect, transaction_on


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


async def import_feed(tx: Tx, feed: str, source: Path) -> dict[str, int]:
    stops, shapes, trips, stop_times = read_feed(source)
    await service.import_gtfs(tx, feed, stops, shapes, trips, stop_times)
    return {
        "stops": len(stops),
        "shapes": len(shapes),
        "trips": len(trips),
        "stop_times": len(stop_times),
    }


async def _main(feed: str, path: str) -> None:
    conn = await connect(os.environ["DATABASE_URL"])
    try:
        async with transaction_on(conn) as tx:
            counts = await import_feed(tx, feed, Path(path))
        sys.stdout.write(f"GTFS feed {feed!r} imported: {counts}\n")
    finally:
        await conn.close()


if __name__ == "__main__":
    asyncio.run(_main(sys.argv[1], sys.argv[2]))
