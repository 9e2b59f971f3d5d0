"""Operators' files: NDJSON (one canonical event per line) and CSV (flat columns) into
canonical events, with a per-line error for records that do not parse."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any

import msgspec

from behaviours.events import CanonicalEvent, Verdict, event_decoder

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
_INT = {"distance_m", "household_size", "steps"}
_FLOAT = {"quantity", "km", "kwh", "start_lat", "start_lon", "end_lat", "end_lon"}


class LineError(msgspec.Struct, frozen=True):
    line: int
    record_id: str
    message: str

    def verdict(self) -> Verdict:
        return Verdict(
            record_id=self.record_id,
            status="rejected",
            reason_code="invalid_record",
            message=f"line {self.line}: {self.message}",
        )


Parsed = tuple[int, CanonicalEvent | LineError]


def _csv_record(row: dict[str, str]) -> dict[str, Any]:
    v: dict[str, Any] = {}
    for k, raw in row.items():
        if k is None or raw is None or raw == "":
            continue
        v[k] = int(raw) if k in _INT else float(raw) if k in _FLOAT else raw
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


def _error(line: int, record_id: Any, exc: Exception) -> LineError:
    rid = record_id if isinstance(record_id, str) and record_id else f"line:{line}"
    return LineError(line=line, record_id=rid[:128], message=str(exc)[:300])


def parse_ndjson(content: bytes, start_line: int = 0) -> Iterator[Parsed]:
    """(line number from 1, event or error) for every non-blank line after ``start_line``."""
    for n, raw in enumerate(content.splitlines(), start=1):
        if n <= start_line or not raw.strip():
            continue
        try:
            yield n, event_decoder.decode(raw)
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            rid: Any = None
            try:
                obj = msgspec.json.decode(raw)
                rid = obj.get("record_id") if isinstance(obj, dict) else None
            except msgspec.DecodeError:
                pass
            yield n, _error(n, rid, exc)


def parse_csv(content: bytes, start_line: int = 0) -> Iterator[Parsed]:
    """CSV with a header row naming some of :data:`CSV_COLUMNS` (line 1 is the header)."""
    text = io.StringIO(content.decode("utf-8-sig"))
    reader = csv.DictReader(text)
    unknown = [c for c in reader.fieldnames or [] if c not in CSV_COLUMNS]
    for n, row in enumerate(reader, start=2):
        if n <= start_line:
            continue
        if unknown:
            yield n, _error(n, row.get("record_id"), ValueError(f"unknown columns {unknown}"))
            continue
        try:
            yield n, msgspec.convert(_csv_record(row), CanonicalEvent, strict=False)
        except (msgspec.ValidationError, ValueError) as exc:
            yield n, _error(n, row.get("record_id"), exc)


def parse(fmt: str, content: bytes, start_line: int = 0) -> Iterator[Parsed]:
    return parse_csv(content, start_line) if fmt == "csv" else parse_ndjson(content, start_line)
