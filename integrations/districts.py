"""District boundaries from GeoJSON: a FeatureCollection of (Multi)Polygons whose properties
carry the 6-digit administrative code (``code`` or ``adcode``), ``name`` and optionally
``parent`` (``parent_code``, or DataV's ``parent.adcode``). Pure: GeoJSON in, rows out;
``tanpuhui import-districts FILE`` stores them (behaviours.service.import_districts).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from shapely import make_valid, to_wkb
from shapely.geometry import shape


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


def read_districts_file(path: Path) -> list[tuple[str, str, str | None, bytes]]:
    """The districts of a GeoJSON file (:func:`read_districts`)."""
    return read_districts(json.loads(path.read_text(encoding="utf-8")))
