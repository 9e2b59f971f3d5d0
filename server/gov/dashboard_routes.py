"""The government dashboard (``/dashboard``) and the district polygons its map draws.

The page is static (server/gov/static/: dashboard.html, its script and style, Apache ECharts
vendored at a pinned version with its licence): it signs in through ``POST
/api/gov/v1/sessions`` and renders from the reports API, so it needs no template and no Node at
run time. Every answer of the page's router carries a Content-Security-Policy without
``'unsafe-inline'`` for scripts (docs/dashboard.md, "Security headers").

``GET /api/gov/v1/reports/districts.geojson`` (gov analysts and admins) answers the imported
districts as a GeoJSON FeatureCollection (``code`` and ``name`` in each feature's properties,
the geometry simplified to about 10 m), read from the districts' owner (behaviours).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import shapely
from litestar import MediaType, Response, Router, get
from litestar.datastructures import CacheControlHeader, ResponseHeader
from litestar.di import NamedDependency
from litestar.static_files import create_static_files_router
from shapely.geometry import mapping

from behaviours import service as behaviours
from server.gov.guards import GOV_READ

STATIC = Path(__file__).resolve().parent / "static"
PAGE = STATIC / "dashboard.html"
ECHARTS_VERSION = "6.1.0"

# Scripts only from the app itself (files, never inline, never eval); styles from the app plus
# ECharts' own inline styles (tooltips are HTML with style attributes); data only from the API.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; font-src 'self'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = [
    ResponseHeader(name="Content-Security-Policy", value=CSP),
    ResponseHeader(name="X-Content-Type-Options", value="nosniff"),
    ResponseHeader(name="Referrer-Policy", value="no-referrer"),
    ResponseHeader(name="X-Frame-Options", value="DENY"),
]
# The map's polygons: within about 10 m of the imported ones (a choropleth, not a survey).
SIMPLIFY_DEG = 0.0001
GEOJSON = "application/geo+json"


@get(
    "/dashboard",
    include_in_schema=False,
    media_type=MediaType.HTML,
    cache_control=CacheControlHeader(no_cache=True),
)
async def dashboard_page() -> Response[bytes]:
    """The dashboard's page (sign-in form and the charts' containers; everything else is the
    script's work)."""
    return Response(content=PAGE.read_bytes(), media_type=MediaType.HTML)


async def _secured(response: Response[Any]) -> Response[Any]:
    """The page's security headers on its files too (a nested Router does not inherit them)."""
    for header in SECURITY_HEADERS:
        response.headers[header.name] = header.value or ""
    return response


def feature_collection(areas: list[tuple[str, str, Any]]) -> dict[str, Any]:
    """(code, name, shapely geometry) rows as a GeoJSON FeatureCollection for ECharts'
    ``registerMap``: the feature's ``name`` property is what a map series' data names."""
    features = []
    for code, name, geom in areas:
        simple = shapely.set_precision(geom.simplify(SIMPLIFY_DEG, preserve_topology=True), 1e-6)
        features.append(
            {
                "type": "Feature",
                "id": code,
                "properties": {"code": code, "name": name},
                "geometry": mapping(simple),
            }
        )
    return {"type": "FeatureCollection", "features": features}


@get(
    "/api/gov/v1/reports/districts.geojson",
    guards=[GOV_READ],
    summary="辖区边界（GeoJSON，供地图使用） · The districts' boundaries (GeoJSON, for the map)",
    media_type=GEOJSON,
    cache_control=CacheControlHeader(private=True, max_age=300),
    tags=["gov"],
    security=[{"BearerToken": []}],
)
async def districts_geojson(pool: NamedDependency[Any]) -> Response[bytes]:
    """Every imported district as a GeoJSON Feature: ``id`` and ``properties.code`` the 6-digit
    GB/T 2260 code, ``properties.name`` its name; geometry simplified to about 10 m. An empty
    FeatureCollection when none are imported (`tanpuhui import-districts`)."""
    async with pool.acquire() as conn:
        ref = await behaviours.default_cache().get(conn)
        codes = list(ref.districts.codes)
        names = await behaviours.district_names(conn, codes)
    areas = [
        (code, names.get(code, code), geom)
        for code, geom in zip(codes, ref.districts.geoms, strict=True)
    ]
    return Response(content=msgspec.json.encode(feature_collection(areas)), media_type=GEOJSON)


_assets = create_static_files_router(
    path="/dashboard/static",
    directories=[STATIC],
    name="dashboard-static",
    cache_control=CacheControlHeader(max_age=300),
    include_in_schema=False,
    after_request=_secured,
)

# One Router for the page, its files and the map's districts: the security headers on all.
dashboard_router = Router(
    path="/",
    route_handlers=[dashboard_page, districts_geojson, _assets],
    response_headers=SECURITY_HEADERS,
)
