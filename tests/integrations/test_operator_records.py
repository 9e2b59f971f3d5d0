"""The operators' file formats as pure adapters (no database, no programme types): NDJSON into
lines, CSV into plain dicts shaped as the canonical events, hostile input into line errors."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime

import msgspec
import pytest

from integrations.operator_records import (
    CSV_COLUMNS,
    FileFormatError,
    LineError,
    check_csv_header,
    clean_record_id,
    csv_records,
    line_error,
    ndjson_lines,
    schema_message,
    value_problem,
)


def test_ndjson_lines_skip_blanks_and_resume_after_a_line():
    content = b'{"a": 1}\n\n   \n{"b": 2}\r\n{"c": 3}'
    assert list(ndjson_lines(content)) == [(1, b'{"a": 1}'), (4, b'{"b": 2}'), (5, b'{"c": 3}')]
    assert list(ndjson_lines(content, start_line=4)) == [(5, b'{"c": 3}')]


def test_csv_rows_become_event_shaped_dicts():
    content = (
        b"type,record_id,subject,mode,started_at,ended_at,distance_m,start_lat,start_lon,"
        b"end_lat,end_lon\n"
        b"transit_trip,t1,s1,bus,2025-05-01T08:00:00+08:00,2025-05-01T08:20:00+08:00,5000,,,,\n"
        b"\n"
        b"bike_trip,b1,s1,e_bike,2025-05-01T09:00:00+08:00,2025-05-01T09:20:00+08:00,,"
        b"22.55,114.02,22.56,114.05\n"
    )
    rows = list(csv_records(content))
    assert rows == [
        (
            2,
            {
                "type": "transit_trip",
                "record_id": "t1",
                "subject": "s1",
                "mode": "bus",
                "boarded_at": "2025-05-01T08:00:00+08:00",
                "alighted_at": "2025-05-01T08:20:00+08:00",
                "distance_m": 5000,
            },
        ),
        (
            4,
            {
                "type": "bike_trip",
                "record_id": "b1",
                "subject": "s1",
                "mode": "e_bike",
                "started_at": "2025-05-01T09:00:00+08:00",
                "ended_at": "2025-05-01T09:20:00+08:00",
                "start": {"lat": 22.55, "lon": 114.02},
                "end": {"lat": 22.56, "lon": 114.05},
            },
        ),
    ]
    assert [n for n, _ in csv_records(content, start_line=2)] == [4]


def test_csv_cells_that_are_not_numbers_or_text_are_line_errors():
    content = (
        b"type,record_id,subject,steps,quantity,day\n"
        b"daily_steps,d1,s,many,,2025-05-01\n"
        b"daily_steps,d2,s,10,nan,2025-05-01\n"
        b"daily_steps,d3,s\x00,10,,2025-05-01\n"
        b"daily_steps,d4,s,10,,2025-05-01,extra\n"
    )
    errors = dict(csv_records(content))
    assert errors == {
        2: LineError(line=2, record_id="d1", message="column steps: 'many' is not a whole number"),
        3: LineError(
            line=3, record_id="d2", message="column quantity: 'nan' is not a finite number"
        ),
        4: LineError(
            line=4,
            record_id="d3",
            message="contains a NUL character (U+0000), which is not accepted",
        ),
        5: LineError(line=5, record_id="d4", message="has 7 fields; the header names 6"),
    }


@pytest.mark.parametrize(
    ("header", "problem"),
    [
        (b"type,record_id,colour\n", "unknown columns: colour"),
        (b"type,record_id,type\n", "a column twice"),
        (b"type,rec\xffid\n", "not valid UTF-8"),
    ],
)
def test_an_unusable_csv_header_refuses_the_file(header, problem):
    with pytest.raises(FileFormatError, match=problem):
        check_csv_header(header)
    with pytest.raises(FileFormatError):
        list(csv_records(header))


def test_every_known_column_is_a_usable_header():
    check_csv_header(",".join(CSV_COLUMNS).encode())
    assert list(csv_records(b"")) == []


def test_value_problems():
    assert value_problem("ok", "$") is None
    assert "NUL" in (value_problem({"a": ["x", "b\x00"]}, "$") or "")
    assert value_problem({"a": ["x", "b\x00"]}, "$").startswith("$.a[1]")  # type: ignore[union-attr]
    assert "finite" in (value_problem(math.inf, "$.km") or "")
    assert "Unicode" in (value_problem("\udcff", "$") or "")
    assert "1900 to 8999" in (value_problem(datetime(1800, 1, 1, tzinfo=UTC), "$.t") or "")
    assert "1900 to 8999" in (value_problem(date(9500, 1, 1), "$.day") or "")


def test_record_ids_for_answers():
    assert clean_record_id("r1", 3) == "r1"
    assert clean_record_id("x" * 200, 3) == "x" * 128
    for unusable in (None, "", 12, "a\x00b", "\udcff"):
        assert clean_record_id(unusable, 3) == "line:3"
    assert line_error(4, None, "m" * 400) == LineError(
        line=4, record_id="line:4", message="m" * 300
    )


def test_schema_messages_name_the_path_or_the_csv_column():
    class T(msgspec.Struct):
        steps: int

    with pytest.raises(msgspec.ValidationError) as exc:
        msgspec.convert({"steps": "x"}, T)
    assert schema_message(exc.value) == "$.steps: expected `int`, got `str`"
    assert schema_message(exc.value, {}) == "column steps: expected `int`, got `str`"
    assert schema_message(exc.value, {"$.steps": "n"}) == "column n: expected `int`, got `str`"
