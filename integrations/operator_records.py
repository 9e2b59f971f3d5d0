"""Operators' file formats, pure: NDJSON (one JSON event per line) into the lines' bytes, CSV
(flat columns) into plain dicts shaped as the canonical events, with a per-line error for a
line that is not a record of the format. Imports nothing of the programme's: the decoding into
canonical events (and their verdicts) is behaviours.records'.

One hostile line never stops a file: whatever a line holds (invalid UTF-8, a NUL, deep nesting,
an oversized CSV field, a number that is not one, a time at the edge of the calendar) it
becomes that line's error, in the programme's words, and the lines after it are read. Only a
CSV header the programme cannot read refuses the whole file (:class:`FileFormatError`, once,
at upload).
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

import msgspec

CSV_COLUMNS = [
    "type",
    "record_id",
    "subject",
    "mode",
    "started_at",
    "ended_at",
    "boarding_stop",
    "alighting_stop",
    "route_id",
    "distance_m",
    "start_lat",
    "start_lon",
    "end_lat",
    "end_lon",
    "utility",
    "account",
    "quantity",
    "household_size",
    "day",
    "steps",
    "vehicle",
    "km",
    "kwh",
]
_KNOWN = frozenset(CSV_COLUMNS)
_INT = {"distance_m", "household_size", "steps"}
_FLOAT = {"quantity", "km", "kwh", "start_lat", "start_lon", "end_lat", "end_lon"}


class FileFormatError(ValueError):
    """The file as a whole cannot be read (a CSV header naming unknown columns, ...)."""


class LineError(msgspec.Struct, frozen=True):
    """A line that is no record: its number (from 1), the record id to answer it under (the
    line's own when usable, else ``line:<n>``) and why, in the programme's words."""

    line: int
    record_id: str
    message: str


# Times the pipeline can compute with (days, UTC, programme time, two years back) without
# leaving the calendar; anything outside is no activity of this programme's.
_EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
_LATEST = datetime(9000, 1, 1, tzinfo=UTC)


def value_problem(value: Any, where: str) -> str | None:
    """Why a decoded value (builtins, datetimes, dates) cannot be processed or stored, whatever
    a schema's constraints let through: a NUL or a lone surrogate in a text, a number that is
    not finite, a time outside the years 1900-8999. None when it can."""
    if isinstance(value, str):
        if "\x00" in value:
            return f"{where} contains a NUL character (U+0000), which is not accepted"
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return f"{where} is not valid Unicode text"
    elif isinstance(value, float):
        if not math.isfinite(value):
            return f"{where} is not a finite number"
    elif isinstance(value, datetime):
        try:
            ok = _EARLIEST <= value.astimezone(UTC) < _LATEST
        except (OverflowError, ValueError):
            ok = False
        if not ok:
            return f"{where} is outside the years 1900 to 8999"
    elif isinstance(value, date):
        if not _EARLIEST.date() <= value < _LATEST.date():
            return f"{where} is outside the years 1900 to 8999"
    elif isinstance(value, dict):
        for k, v in value.items():
            found = value_problem(v, f"{where}.{k}")
            if found:
                return found
    elif isinstance(value, list):
        for i, v in enumerate(value):
            found = value_problem(v, f"{where}[{i}]")
            if found:
                return found
    return None


def schema_message(exc: msgspec.ValidationError, columns: dict[str, str] | None = None) -> str:
    """msgspec's "Expected `int`, got `str` - at `$.steps`" as "$.steps: expected `int`, got
    `str`" (CSV: the column's name instead of the event's path)."""
    message, _, path = str(exc).partition(" - at `")
    path = path.rstrip("`")
    message = message[:1].lower() + message[1:]
    if not path:
        return f"does not match the event schema: {message}"
    if columns is not None:
        name = columns.get(path, path.removeprefix("$."))
        return f"column {name}: {message}"
    return f"{path}: {message}"


def clean_record_id(record_id: Any, line: int) -> str:
    if isinstance(record_id, str) and record_id and "\x00" not in record_id:
        try:
            record_id.encode("utf-8")
            return record_id[:128]
        except UnicodeEncodeError:
            pass
    return f"line:{line}"


def line_error(line: int, record_id: Any, message: str) -> LineError:
    """The error of line ``line``, under its record id when that is usable text."""
    return LineError(line=line, record_id=clean_record_id(record_id, line), message=message[:300])


def ndjson_lines(content: bytes, start_line: int = 0) -> Iterator[tuple[int, bytes]]:
    """(line number from 1, the line's bytes) for every non-blank line after ``start_line``;
    each is one JSON event for the caller to decode."""
    for n, raw in enumerate(content.splitlines(), start=1):
        if n <= start_line or not raw.strip():
            continue
        yield n, raw


# An event's path in a CSV row's words (the columns are flat; some are renamed per type).
CSV_PATHS = {
    "$.boarded_at": "started_at",
    "$.alighted_at": "ended_at",
    "$.period_start": "started_at",
    "$.period_end": "ended_at",
    "$.start.lat": "start_lat",
    "$.start.lon": "start_lon",
    "$.end.lat": "end_lat",
    "$.end.lon": "end_lon",
    "$.utility": "utility",
}


class _CellError(ValueError):
    pass


def _cell(column: str, raw: str) -> Any:
    if column in _INT:
        try:
            return int(raw)
        except ValueError:
            raise _CellError(f"column {column}: {raw[:40]!r} is not a whole number") from None
    if column in _FLOAT:
        try:
            value = float(raw)
        except ValueError:
            raise _CellError(f"column {column}: {raw[:40]!r} is not a number") from None
        if not math.isfinite(value):
            raise _CellError(f"column {column}: {raw[:40]!r} is not a finite number")
        return value
    return raw


def _csv_record(row: dict[str, str]) -> dict[str, Any]:
    v: dict[str, Any] = {}
    for k, raw in row.items():
        if raw is None or raw == "":
            continue
        v[k] = _cell(k, raw)
    kind = v.get("type")
    out: dict[str, Any] = {
        "type": kind,
        "record_id": v.get("record_id"),
        "subject": v.get("subject"),
    }
    if kind == "transit_trip":
        out |= {
            "mode": v.get("mode"),
            "boarded_at": v.get("started_at"),
            "alighted_at": v.get("ended_at"),
        }
        for k in ("boarding_stop", "alighting_stop", "route_id", "distance_m"):
            if k in v:
                out[k] = v[k]
    elif kind in ("bike_trip", "walk"):
        if kind == "bike_trip":
            out["mode"] = v.get("mode")
        out |= {
            "started_at": v.get("started_at"),
            "ended_at": v.get("ended_at"),
            "start": {
                "lat": v.get("start_lat"),
                "lon": v.get("start_lon"),
            },
            "end": {"lat": v.get("end_lat"), "lon": v.get("end_lon")},
        }
        if "distance_m" in v:
            out["distance_m"] = v["distance_m"]
    elif kind == "daily_steps":
        out |= {"day": v.get("day"), "steps": v.get("steps")}
    elif kind == "meter_reading":
        out |= {
            "utility": v.get("utility"),
            "account": v.get("account"),
            "period_start": v.get("started_at"),
            "period_end": v.get("ended_at"),
            "quantity": v.get("quantity"),
            "household_size": v.get("household_size", 1),
        }
    elif kind == "ev_mileage":
        out |= {
            "vehicle": v.get("vehicle"),
            "period_start": v.get("started_at"),
            "period_end": v.get("ended_at"),
            "km": v.get("km"),
            "kwh": v.get("kwh"),
        }
    return out


def _header(reader: Any) -> list[str]:
    try:
        header = next(reader)
    except StopIteration:
        return []
    except csv.Error as exc:
        raise FileFormatError(f"The CSV header cannot be read: {exc}.") from None
    names = [h.strip() for h in header]
    for name in names:
        if "\x00" in name or any("\udc80" <= ch <= "\udcff" for ch in name):
            raise FileFormatError("The CSV header is not valid UTF-8 text.")
    unknown = sorted({h for h in names if h and h not in _KNOWN})
    if unknown:
        raise FileFormatError(
            f"The CSV header names unknown columns: {', '.join(unknown)}. "
            f"Known columns: {', '.join(CSV_COLUMNS)}."
        )
    if len({h for h in names if h}) != len([h for h in names if h]):
        raise FileFormatError("The CSV header names a column twice.")
    return names


def _reader(content: bytes) -> Any:
    # Invalid UTF-8 is kept as lone surrogates, so a bad byte spoils only its own row.
    text = content.decode("utf-8-sig", errors="surrogateescape")
    return csv.reader(io.StringIO(text))


def check_csv_header(content: bytes) -> None:
    """Raise :class:`FileFormatError` when the CSV file's header cannot be used (at upload;
    only the file's first MiB is read: a header is far shorter)."""
    _header(_reader(content[: 1 << 20]))


def _csv_message(exc: csv.Error) -> str:
    if "field larger than field limit" in str(exc):
        return f"has a field longer than {csv.field_size_limit():,} characters"
    return f"is not a valid CSV record ({exc})"


def _has_bad_text(cells: list[str]) -> str | None:
    for cell in cells:
        if "\x00" in cell:
            return "contains a NUL character (U+0000), which is not accepted"
        try:
            cell.encode("utf-8")
        except UnicodeEncodeError:
            return "is not valid UTF-8"
    return None


def csv_records(
    content: bytes, start_line: int = 0
) -> Iterator[tuple[int, dict[str, Any] | LineError]]:
    """CSV with a header row naming some of :data:`CSV_COLUMNS` (line 1 is the header; a
    record's number counts records, a quoted field may span lines): (record number, a plain
    dict shaped as the canonical event of its ``type``, or the line's error) for every
    non-blank record after ``start_line``. The dict's fields are the event's (its paths in
    the CSV's words: :data:`CSV_PATHS`); whether it is one is for the caller to decide."""
    reader = _reader(content)
    columns = _header(reader)
    n = 1
    while True:
        n += 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            if n > start_line:
                yield n, line_error(n, None, _csv_message(exc))
            continue
        if n <= start_line or not any(c.strip() for c in cells):
            continue
        row = dict(zip(columns, cells, strict=False))
        rid = row.get("record_id")
        bad = _has_bad_text(cells)
        if bad is not None:
            yield n, line_error(n, rid, bad)
            continue
        if any(c.strip() for c in cells[len(columns) :]):
            yield n, line_error(n, rid, f"has {len(cells)} fields; the header names {len(columns)}")
            continue
        try:
            yield n, _csv_record(row)
        except _CellError as exc:
            yield n, line_error(n, rid, str(exc))
