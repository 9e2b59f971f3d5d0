"""Operators' daily files into canonical events: the formats are read by
``integrations.operator_records`` (NDJSON lines, CSV rows as plain dicts, line errors); here each
record is decoded into a :data:`~behaviours.events.CanonicalEvent` or becomes its line's
``record_invalid`` verdict, in the programme's words.

One hostile line never stops a file: whatever a line holds (invalid UTF-8, a NUL, deep nesting,
a time at the edge of the calendar, a field of the wrong type) it is that line's verdict and the
lines after it are processed.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import date, datetime
from typing import Any

import msgspec

from behaviours.events import CanonicalEvent, Verdict, event_decoder
from integrations.operator_records import (
    CSV_PATHS,
    LineError,
    csv_records,
    line_error,
    ndjson_lines,
    schema_message,
    value_problem,
)

Parsed = tuple[int, CanonicalEvent | LineError]


def line_verdict(error: LineError) -> Verdict:
    """The verdict of a line that is no event: ``record_invalid``, with the line's number."""
    return Verdict(
        record_id=error.record_id,
        status="rejected",
        reason_code="record_invalid",
        message=f"line {error.line}: {error.message}",
    )


def unprocessable(event: CanonicalEvent) -> str | None:
    """Why a decoded event cannot be processed or stored, whatever the schema's own field
    constraints let through: a NUL or a lone surrogate in a text, a number that is not finite,
    a time outside the years 1900-8999. None when it can."""
    if _plainly_fine(event):
        return None
    return value_problem(msgspec.to_builtins(event, builtin_types=(datetime, date)), "$")


def _plainly_fine(event: CanonicalEvent) -> bool:
    """True when every field is a value :func:`value_problem` accepts at a glance (ASCII text
    without NUL, a finite number, a time well inside its years); False means "look closely"
    (non-ASCII text, a nested value, a time near the edges), not "wrong". A file's lines are
    almost all plain: this keeps the full walk for the few that are not."""
    for name in event.__struct_fields__:
        v = getattr(event, name)
        t = type(v)
        if v is None or t is int or t is bool:
            continue
        if t is str:
            if not v.isascii() or "\x00" in v:
                return False
        elif t is float:
            if not math.isfinite(v):
                return False
        elif t is datetime or t is date:
            if not 1901 <= v.year <= 8998:  # a time zone cannot move it out of 1900-8999
                return False
        else:
            return False
    return True


def _schema_error(n: int, raw: bytes, exc: msgspec.ValidationError) -> LineError:
    """The line's record id when it is at least a JSON object, and the plainer of its
    problems: a NUL or a non-finite number in any value says more than a schema constraint."""
    try:
        obj = msgspec.json.decode(raw)
    except (msgspec.MsgspecError, ValueError, RecursionError):
        return line_error(n, None, schema_message(exc))
    rid = obj.get("record_id") if isinstance(obj, dict) else None
    return line_error(n, rid, value_problem(obj, "$") or schema_message(exc))


def ndjson_event(n: int, raw: bytes) -> CanonicalEvent | LineError:
    """Line ``n`` of an NDJSON file (one canonical event in JSON), decoded strictly."""
    try:
        event = event_decoder.decode(raw)
    except msgspec.ValidationError as exc:
        return _schema_error(n, raw, exc)
    except UnicodeDecodeError as exc:
        return line_error(n, None, f"is not valid UTF-8 (byte {exc.start + 1} of the line)")
    except RecursionError:
        return line_error(n, None, "is nested too deeply to be an event")
    except (msgspec.DecodeError, ValueError) as exc:
        return line_error(n, None, f"is not valid JSON ({exc})")
    problem = unprocessable(event)
    if problem is not None:
        return line_error(n, event.record_id, problem)
    return event


def csv_event(n: int, record: dict[str, Any]) -> CanonicalEvent | LineError:
    """Record ``n`` of a CSV file (a row as the event's plain dict), converted (numbers and
    times from text); an error names the CSV's column, not the event's path."""
    rid = record.get("record_id")
    try:
        event = msgspec.convert(record, CanonicalEvent, strict=False)
    except msgspec.ValidationError as exc:
        return line_error(n, rid, schema_message(exc, CSV_PATHS))
    problem = unprocessable(event)
    return event if problem is None else line_error(n, rid, problem)


def parse_ndjson(content: bytes, start_line: int = 0) -> Iterator[Parsed]:
    """(line number from 1, event or error) for every non-blank line after ``start_line``."""
    for n, raw in ndjson_lines(content, start_line):
        yield n, ndjson_event(n, raw)


def parse_csv(content: bytes, start_line: int = 0) -> Iterator[Parsed]:
    """(record number, event or error) for every record after ``start_line`` (line 1 is the
    header; ``FileFormatError`` when it cannot be used)."""
    for n, record in csv_records(content, start_line):
        yield n, record if isinstance(record, LineError) else csv_event(n, record)


def parse(fmt: str, content: bytes, start_line: int = 0) -> Iterator[Parsed]:
    return parse_csv(content, start_line) if fmt == "csv" else parse_ndjson(content, start_line)
