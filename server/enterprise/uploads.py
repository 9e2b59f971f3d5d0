"""The CSV form of an activity report upload, decoded at the edge into the same
``enterprises.energy_schemas.ReportIn`` the JSON form is (then one service call does the rest).

    kind,quantity,unit,certificates
    electricity,120000,kWh,
    natural_gas,3500,m3,
    green_electricity,20000,kWh,GEC-2026-0001 GEC-2026-0002
    added_value,850.5,10k_CNY,

``period`` (``month`` or ``year``) and ``period_start`` (its first day) are query parameters;
``certificates`` (optional column) lists serials separated by spaces or semicolons. A line or a
field that cannot be read is ``validation_failed`` naming its line (the header is line 1).
"""

from __future__ import annotations

import csv
import io
from datetime import date
from typing import Any

import msgspec

from enterprises.energy_schemas import Period, ReportIn, ReportLineIn
from kit.errors import FieldError, InvalidInput

CSV_MEDIA_TYPES = ("text/csv", "text/plain")
COLUMNS = ("kind", "quantity", "unit")
OPTIONAL = ("certificates",)
MAX_LINES = 64  # more than any report has kinds (ReportIn allows 32 lines)
CSV_MAX_BYTES = 64 * 1024


def _refuse(errors: list[FieldError]) -> InvalidInput:
    return InvalidInput(
        f"The CSV report: {len(errors)} problem(s).", code="validation_failed", errors=errors
    )


def report_from_csv(body: bytes, period: Period, period_start: date) -> ReportIn:
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise _refuse([FieldError(path="body", message="The CSV is not UTF-8 text.")]) from None
    if "\x00" in text:
        raise _refuse([FieldError(path="body", message="The CSV contains a NUL character.")])
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [h.strip() for h in next(reader, [])]
    except csv.Error as exc:
        raise _refuse([FieldError(path="line 1", message=str(exc))]) from None
    if header[: len(COLUMNS)] != list(COLUMNS) or not set(header[3:]) <= set(OPTIONAL):
        raise _refuse(
            [
                FieldError(
                    path="line 1",
                    message=f"The header must be {','.join(COLUMNS)}[,{','.join(OPTIONAL)}].",
                )
            ]
        )
    lines: list[dict[str, Any]] = []
    errors: list[FieldError] = []
    line = 1
    try:
        for record in reader:
            line = reader.line_num
            if not any(f.strip() for f in record):
                continue
            if len(lines) >= MAX_LINES:
                errors.append(FieldError(path=f"line {line}", message=f"More than {MAX_LINES}."))
                break
            if len(record) != len(header):
                errors.append(
                    FieldError(
                        path=f"line {line}",
                        message=f"{len(record)} fields; the header has {len(header)}.",
                    )
                )
                continue
            fields = dict(zip(header, (f.strip() for f in record), strict=True))
            try:
                quantity = float(fields["quantity"])
            except ValueError:
                errors.append(FieldError(path=f"line {line}: quantity", message="Not a number."))
                continue
            serials = fields.get("certificates", "").replace(";", " ").split()
            lines.append(
                {
                    "kind": fields["kind"],
                    "quantity": quantity,
                    "unit": fields["unit"],
                    "certificates": serials,
                    "_line": line,
                }
            )
    except csv.Error as exc:
        errors.append(FieldError(path=f"line {line + 1}", message=str(exc)))
    if errors:
        raise _refuse(errors)
    numbered = [(item.pop("_line"), item) for item in lines]
    for number, item in numbered:
        try:
            msgspec.convert(item, ReportLineIn)
        except msgspec.ValidationError as exc:
            errors.append(FieldError(path=f"line {number}", message=str(exc)))
    if errors:
        raise _refuse(errors)
    try:
        return msgspec.convert(
            {"period": period, "period_start": period_start, "lines": [i for _, i in numbered]},
            ReportIn,
        )
    except msgspec.ValidationError as exc:
        raise _refuse([FieldError(path="body", message=str(exc))]) from None
