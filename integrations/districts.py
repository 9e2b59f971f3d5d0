"""District boundaries from GeoJSON: a FeatureCollection of (Multi)Polygons whose properties
carry the 6-digit administrative code (``code`` or ``adcode``), ``name`` and optionally
``parent`` (``parent_code``, or DataV's ``parent.adcode``).

    DATABASE_URL=... python -m integrations.districts <file.geojson>
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

from shapely import make_valid, to_wkb
from shapely.geometry import shape

from behaviours import service
from server.db import Tx, connect, transaction_on


class GeoJsonError(ValueError):
    pass


def read_districts(data: dict[str, Any]) -> list[tuple[str, str, str | None, bytes]]:
    if data.get("type") != "FeatureCollection":
        raise GeoJsonError("expected a GeoJSON FeatureCollection")
    rows: list[tuple[str, str, str | None, bytes]] = []
    for i, feature in enumerate(data.get("features", [])):
        props = feature.get("properties") or {}
        code = str(props.get("code") or props.get("adcode") or "")
        if not re.fullmatch(r"\d{6}", code):
            raise GeoJsonError(f"feature {i}: no 6-digit `code`/`adcode` property")
        parent = props.get("parent_code") or props.get("parent")
        if isinstance(parent, dict):
            parent = parent.get("adcode")
        geom = make_valid(shape(feature["geometry"]))
        if geom.geom_type not in ("Polygon", "MultiPolygon", "GeometryCollection"):
            raise GeoJsonError(f"feature {i}: {geom.geom_type} is not an area")
        rows.append(
            (
                code,
                str(props.get("name", code)),
                str(parent) if parent else None,
                bytes(to_wkb(geom)),
            )
        )
    return rows


async def import_file(tx: Tx, path: Path) -> int:
    return await service.import_districts(
        tx, read_districts(json.loads(path.read_text(encoding="utf-8")))
    )


async def _main(path: str) -> None:
    conn = await connect(os.environ["DATABASE_URL"])
    try:
        async with transaction_on(conn) as tx:
            n = await import_file(tx, Path(path))
        sys.stdout.write(f"{n} districts imported\n")
    finally:
        await conn.close()


if __name__ == "__main__":
    asyncio.run(_main(sys.argv[1]))
