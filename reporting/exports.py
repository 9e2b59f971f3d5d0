"""Exports in open formats, cut from the same disclosure-controlled answers as the API (a
suppressed cell is empty in CSV, with a status column saying ``suppressed``; never 0):

- CSV of a travel series by district and mode (UTF-8, header row, RFC 4180 quoting);
- a Frictionless Data Package (zip: ``datapackage.json`` + CSV resources) of a year: the
  monthly series by district x mode, enterprises' emissions by district and industry, the
  grade distribution, and the annual summary. Each resource has a Table Schema with its
  fields, types, primary key and ``missingValues: [""]`` (the suppressed cells);
- the annual summary (JSON), what a ministry asks for: the year's totals, by district and
  mode, enterprises, grades, the programme's liability and the dual-carbon index.
"""

from __future__ import annotations

import csv
import io
import json
import zipfile
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Any

from msgspec import Struct, to_builtins

from reporting import reports
from reporting.disclosure import Cell
from reporting.rollups import periods
from reporting.schemas import (
    ByDistrict,
    ByMode,
    DualCarbonIndex,
    EnterpriseTable,
    Figures,
    Grades,
    Liability,
    Totals,
)
from reporting.settings import ReportingSettings

MEASURES = ("trips", "participants", "grams", "points")
ENTERPRISE_MEASURES = ("enterprises", "emissions_t", "energy_tce", "offsets_t")
STATUS_FIELD = {
    "name": "status",
    "type": "string",
    "constraints": {"required": True, "enum": ["ok", "suppressed"]},
    "description": "suppressed: withheld by disclosure control (the figures are empty)",
}


class AnnualSummary(Struct, kw_only=True):
    year: int
    generated_at: datetime
    min_contributors: int
    travel: Totals
    by_district: ByDistrict
    by_mode: ByMode
    enterprises_by_district: EnterpriseTable
    enterprises_by_industry: EnterpriseTable
    grades: Grades
    liability: Liability
    index: DualCarbonIndex


def _v(c: Cell) -> str:
    return "" if c.value is None else str(c.value)


def _status(cells: Iterable[Cell]) -> str:
    return "suppressed" if any(c.status == "suppressed" for c in cells) else "ok"


def _csv(header: Sequence[str], rows: Iterable[Sequence[str]]) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue().encode("utf-8")


def _figure_row(prefix: Sequence[str], f: Figures) -> list[str]:
    cells = [getattr(f, m) for m in MEASURES]
    return [*prefix, *(_v(c) for c in cells), _status(cells)]


TRAVEL_HEADER = ("period", "district", "mode", *MEASURES, "status")


async def travel_rows(
    conn: Any, grain: str, start: date, end: date, s: ReportingSettings
) -> list[list[str]]:
    """Every period's district x mode table with margins ('*': all), in the API's pattern."""
    out = []
    for p in reports.check_range(grain, start, end, s):
        t = await reports.district_mode(conn, grain, p)
        day = p.isoformat()
        for d in t.districts:
            for m in t.modes:
                f = t.cells.get(d, {}).get(m)
                if f is not None:
                    out.append(_figure_row((day, d, m), f))
            out.append(_figure_row((day, d, "*"), t.district_totals[d]))
        for m in t.modes:
            out.append(_figure_row((day, "*", m), t.mode_totals[m]))
        out.append(_figure_row((day, "*", "*"), t.total))
    return out


async def travel_csv(conn: Any, grain: str, start: date, end: date, s: ReportingSettings) -> bytes:
    return _csv(TRAVEL_HEADER, await travel_rows(conn, grain, start, end, s))


def _field(name: str, type_: str, description: str) -> dict[str, Any]:
    return {"name": name, "type": type_, "description": description}


TRAVEL_FIELDS = [
    _field("period", "date", "first day of the month (programme time zone)"),
    _field("district", "string", "GB/T 2260 district code; '*' all; 'unknown' none"),
    _field("mode", "string", "travel mode; '*' all"),
    _field("trips", "integer", "trip events credited"),
    _field("participants", "integer", "distinct residents of the cell and month"),
    _field("grams", "integer", "verified reduction, g CO2e"),
    _field("points", "integer", "points issued for them"),
    STATUS_FIELD,
]
ENTERPRISE_FIELDS = [
    _field("year", "integer", "calendar year"),
    _field("by", "string", "district or industry"),
    _field("key", "string", "district code or GB/T 4754 industry; '*' all"),
    _field("enterprises", "integer", "enterprises with emissions"),
    _field("emissions_t", "number", "t CO2, net, the programme's factor basis"),
    _field("energy_tce", "number", "t of standard coal equivalent"),
    _field("offsets_t", "number", "verified reductions credited and offsets retired, t CO2e"),
    STATUS_FIELD,
]
GRADE_FIELDS = [
    _field("year", "integer", "calendar year"),
    _field("district", "string", "district code; '*' all"),
    _field("grade", "string", "1-5 (carbon-efficiency grade), ungraded, or '*' all"),
    _field("enterprises", "integer", "enterprises"),
    STATUS_FIELD,
]


def _resource(name: str, fields: list[dict[str, Any]], key: list[str], title: str) -> Any:
    return {
        "name": name,
        "path": f"{name}.csv",
        "title": title,
        "profile": "tabular-data-resource",
        "format": "csv",
        "mediatype": "text/csv",
        "encoding": "utf-8",
        "schema": {"fields": fields, "primaryKey": key, "missingValues": [""]},
    }


async def annual_summary(
    conn: Any, year: int, s: ReportingSettings, now: datetime
) -> AnnualSummary:
    first = date(year, 1, 1)
    return AnnualSummary(
        year=year,
        generated_at=now,
        min_contributors=s.min_contributors,
        travel=await reports.totals(conn, "year", first),
        by_district=await reports.by_district(conn, "year", first),
        by_mode=await reports.by_mode(conn, "year", first),
        enterprises_by_district=await reports.enterprise_table(conn, "year", first, "district"),
        enterprises_by_industry=await reports.enterprise_table(conn, "year", first, "industry"),
        grades=await reports.grade_distribution(conn, year, "district"),
        liability=await reports.liability(conn, "year"),
        index=await reports.dual_carbon_index(conn, year, s),
    )


def _enterprise_rows(year: int, t: EnterpriseTable) -> list[list[str]]:
    out = []
    for key, f in [*sorted(t.rows.items()), ("*", t.total)]:
        cells = [getattr(f, m) for m in ENTERPRISE_MEASURES]
        out.append([str(year), t.by, key, *(_v(c) for c in cells), _status(cells)])
    return out


def _grade_rows(year: int, g: Grades) -> list[list[str]]:
    out = []
    for district, dist in [*g.groups.items(), ("*", g.total)]:
        for grade, c in [*dist.grades.items(), ("*", dist.total)]:
            out.append([str(year), district, grade, _v(c), c.status])
    return out


async def datapackage(conn: Any, year: int, s: ReportingSettings, now: datetime) -> bytes:
    """The year as a Frictionless Data Package (zip)."""
    summary = await annual_summary(conn, year, s, now)
    months = periods("month", date(year, 1, 1), date(year, 12, 1))
    travel = await travel_rows(conn, "month", months[0], months[-1], s)
    enterprise = _enterprise_rows(year, summary.enterprises_by_district) + _enterprise_rows(
        year, summary.enterprises_by_industry
    )
    grade = _grade_rows(year, summary.grades)
    descriptor = {
        "profile": "tabular-data-package",
        "name": f"tanpuhui-{year}",
        "title": f"Carbon-inclusion programme, {year} (disclosure-controlled)",
        "created": now.isoformat(),
        "licenses": [{"name": "CC-BY-4.0", "path": "https://creativecommons.org/licenses/by/4.0/"}],
        "description": (
            f"Cells with fewer than {s.min_contributors} residents (enterprise tables: "
            f"{s.enterprise_min_contributors} enterprises, or dominated by "
            f"{s.dominance_n} of them at {s.dominance_k:.0%}) are suppressed with their "
            "complements: empty figures, status 'suppressed'."
        ),
        "resources": [
            _resource(
                "travel_monthly", TRAVEL_FIELDS, ["period", "district", "mode"],
                "Green travel by month, district and mode",
            ),
            _resource(
                "enterprise_emissions", ENTERPRISE_FIELDS, ["year", "by", "key"],
                "Enterprises' emissions by district and by industry",
            ),
            _resource(
                "enterprise_grades", GRADE_FIELDS, ["year", "district", "grade"],
                "Enterprises per carbon-efficiency grade",
            ),
            {
                "name": "annual_summary",
                "path": "annual_summary.json",
                "format": "json",
                "mediatype": "application/json",
                "title": "Annual summary",
            },
        ],
    }  # fmt: skip
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("datapackage.json", json.dumps(descriptor, ensure_ascii=False, indent=2))
        z.writestr("travel_monthly.csv", _csv([f["name"] for f in TRAVEL_FIELDS], travel))
        z.writestr(
            "enterprise_emissions.csv", _csv([f["name"] for f in ENTERPRISE_FIELDS], enterprise)
        )
        z.writestr("enterprise_grades.csv", _csv([f["name"] for f in GRADE_FIELDS], grade))
        z.writestr(
            "annual_summary.json",
            json.dumps(to_builtins(summary), ensure_ascii=False, indent=2, default=str),
        )
    return buf.getvalue()
