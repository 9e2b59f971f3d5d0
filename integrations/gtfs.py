"""GTFS static import (stops, shapes, trips, stop_times) from a directory or a .zip.

Only what in-vehicle distances need is kept; the pipeline projects the boarding and alighting
stops onto the trip's shape (``behaviours.reference.TransitNetwork``).

    python -m integrations.gtfs <feed id> <gtfs dir or zip>    (--help: how it finds the database)
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import sys
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path

from shapely import to_wkb
from shapely.geometry import LineString

from behaviours import service
from kit.db import Tx, connect, transaction_on
from server.settings import Settings


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


async def _import(url: str, feed: str, path: Path) -> dict[str, int]:
    conn = await connect(url)
    try:
        async with transaction_on(conn) as tx:
            return await import_feed(tx, feed, path)
    finally:
        await conn.close()


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m integrations.gtfs FEED PATH``: replace the GTFS feed ``FEED``; prints what
    the feed now holds."""
    from server.cli import with_database

    prog = "python -m integrations.gtfs"
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Import a GTFS static feed (stops, shapes, trips, stop_times) into "
        "DATABASE_URL (unset: the embedded PostgreSQL of TANPUHUI_EMBEDDED_DATA_DIR, as "
        "`make run` uses it). A feed of the same id is replaced whole.",
    )
    parser.add_argument("feed", help="the feed's id, e.g. shenzhen-metro")
    parser.add_argument("path", type=Path, help="the GTFS directory or .zip")
    args = parser.parse_args(argv)

    def run(settings: Settings) -> int:
        assert settings.database.url
        if not args.path.exists():
            sys.stderr.write(f"{prog}: {args.path}: no such file or directory\n")
            return 1
        try:
            counts = asyncio.run(_import(settings.database.url, args.feed, args.path))
        except (GtfsError, ValueError, KeyError, zipfile.BadZipFile) as exc:
            sys.stderr.write(f"{prog}: {args.path}: not a usable GTFS feed: {exc!r}\n")
            return 1
        sys.stdout.write(
            f"GTFS feed {args.feed!r} replaced from {args.path}: {counts['stops']} stops, "
            f"{counts['shapes']} shapes, {counts['trips']} trips, "
            f"{counts['stop_times']} stop times\n"
        )
        return 0

    return with_database(run, prog=prog)


if __name__ == "__main__":
    sys.exit(main())
