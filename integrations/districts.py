"""District boundaries from GeoJSON: a FeatureCollection of (Multi)Polygons whose properties
carry the 6-digit administrative code (``code`` or ``adcode``), ``name`` and optionally
``parent`` (``parent_code``, or DataV's ``parent.adcode``).

    python -m integrations.districts <file.geojson>    (--help: how it finds the database)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from shapely import make_valid, to_wkb
from shapely.geometry import shape

from behaviours import service
from kit.db import Tx, connect, transaction_on
from server.settings import Settings


class GeoJsonError(ValueError):
    pass


def read_districts(data: dict[str, Any]) -> list[tuple[str, str, str | None, bytes]]:
    if data.get("type") != "FeatureCollection":
        raise GeoJsonError("expected a GeoJSON FeatureCollection")
    rows: list[tuple[str, str, str | None, bytes]] = []
    for i, feature in enumerate(data.get("features", [])):
        props = feature.get("properties") or {}
        code = str(props.get("code") or props.get("adcode") or "")
        if not re.fullmatch(r"[0-9]{6}", code):  # not \d: it matches any Unicode digit
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


async def _import(url: str, path: Path) -> list[tuple[str, str, str | None, bytes]]:
    rows = read_districts(json.loads(path.read_text(encoding="utf-8")))
    conn = await connect(url)
    try:
        async with transaction_on(conn) as tx:
            await service.import_districts(tx, rows)
    finally:
        await conn.close()
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m integrations.districts FILE``: import (insert or replace, by code) the
    districts of a GeoJSON file; prints each district imported."""
    from server.cli import with_database

    prog = "python -m integrations.districts"
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Import district boundaries from a GeoJSON FeatureCollection into "
        "DATABASE_URL (unset: the embedded PostgreSQL of TANPUHUI_EMBEDDED_DATA_DIR, as "
        "`make run` uses it). A district already there (same code) is replaced.",
    )
    parser.add_argument("file", type=Path, help="the .geojson file")
    args = parser.parse_args(argv)

    def run(settings: Settings) -> int:
        assert settings.database.url
        try:
            rows = asyncio.run(_import(settings.database.url, args.file))
        except (GeoJsonError, ValueError, KeyError, TypeError) as exc:
            sys.stderr.write(f"{prog}: {args.file}: not usable GeoJSON districts: {exc}\n")
            return 1
        for code, name, parent, _ in rows:
            sys.stdout.write(f"  {code} {name}" + (f" (in {parent})" if parent else "") + "\n")
        sys.stdout.write(f"{len(rows)} districts imported (inserted or replaced): {args.file}\n")
        return 0

    return with_database(run, prog=prog)


if __name__ == "__main__":
    sys.exit(main())
