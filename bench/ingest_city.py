"""A synthetic city for the ingestion benchmark: districts, GTFS-like lines (stops + shapes),
operators with signing keys, residents linked to operators (COPY, set-wise)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from shapely import to_wkb
from shapely.geometry import LineString, box

from behaviours import service
from behaviours.service import OperatorKind
from kit.db import transaction
from residents import service as residents_service
from server.settings import PrivacySettings

LON0, LAT0 = 113.80, 22.45
GRID = 4  # GRID x GRID districts
CELL_LON, CELL_LAT = 0.15, 0.075
LINES, STOPS_PER_LINE = 20, 25
SECRET = "bench-secret-0123456789abcdef"
OPERATORS: tuple[tuple[str, OperatorKind, str | None], ...] = (
    ("metro", "transit", "city"),
    ("bikes", "bike_share", None),
)


def stops_of_line(line: int) -> list[tuple[str, float, float]]:
    """Horizontal lines for even numbers, vertical for odd, spread over the city."""
    out = []
    for k in range(STOPS_PER_LINE):
        f = (k + 0.5) / STOPS_PER_LINE
        g = (line // 2 + 0.5) / (LINES // 2)
        if line % 2 == 0:
            lon, lat = LON0 + f * GRID * CELL_LON, LAT0 + g * GRID * CELL_LAT
        else:
            lon, lat = LON0 + g * GRID * CELL_LON, LAT0 + f * GRID * CELL_LAT
        out.append((f"L{line}S{k}", round(lat, 6), round(lon, 6)))
    return out


async def build(pool: Any, residents: int) -> list[str]:
    """Build the city; returns resident ids (subject ref of resident i is ``s{i}``)."""
    async with transaction(pool) as tx:
        rows = []
        for i in range(GRID):
            for j in range(GRID):
                code = f"4403{i * GRID + j + 1:02d}"
                geom = box(
                    LON0 + i * CELL_LON,
                    LAT0 + j * CELL_LAT,
                    LON0 + (i + 1) * CELL_LON,
                    LAT0 + (j + 1) * CELL_LAT,
                )
                rows.append((code, f"District {code}", "440300", bytes(to_wkb(geom))))
        await service.import_districts(tx, rows)
        stops, shapes, trips, stop_times = [], [], [], []
        for line in range(LINES):
            ls = stops_of_line(line)
            stops += [(sid, sid, lat, lon) for sid, lat, lon in ls]
            shapes.append((f"SH{line}", bytes(to_wkb(LineString([(x, y) for _, y, x in ls])))))
            trips.append((f"T{line}", f"R{line}", f"SH{line}"))
            stop_times += [(f"T{line}", k, sid, None) for k, (sid, _, _) in enumerate(ls)]
        await service.import_gtfs(tx, "city", stops, shapes, trips, stop_times)
        for op, kind, feed in OPERATORS:
            await service.register_operator(
                tx, op, name=op, kind=kind, region_code="440300", gtfs_feed=feed
            )
            await service.add_signing_key(tx, op, "k1", SECRET, privacy=PrivacySettings())
    granted = datetime.now(UTC) - timedelta(days=30)
    async with pool.acquire() as conn:
        ids = await residents_service.create_residents(
            conn, [f"4403{(i % (GRID * GRID)) + 1:02d}" for i in range(residents)]
        )
    async with transaction(pool) as tx:
        for op, _, _ in OPERATORS:
            pairs = [(f"s{i}", r) for i, r in enumerate(ids)]
            await service.import_links(tx, op, pairs, ["*"], granted)
    async with pool.acquire() as conn:
        await conn.execute("ANALYZE")
    return ids
