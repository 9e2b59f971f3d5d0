"""One hostile line never fails an uploaded file (issue 8, item 5): it is that line's
``record_invalid`` verdict, in the programme's words, and the lines after it are processed."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import msgspec
import pytest

from behaviours import files_repository as repo
from behaviours import service
from behaviours.errors import InvalidFile
from behaviours.files import process_file
from kit.auth import sign_request
from kit.db import transaction
from tests.behaviours.factories import SECRET, linked, metro, now, operator, policy

# Words of the machinery under the programme's: none may reach an operator.
LEAKS = ("Traceback", "asyncpg", "invalid literal", "codec", "Error:", "_csv", "recursion")


async def _process(
    pool: Any, settings: Any, fmt: Any, content: bytes
) -> tuple[service.FileStatus, list[Any]]:
    async with transaction(pool) as tx:
        file_id, new = await service.create_file(tx, "metro", fmt, content)
    assert new
    await process_file(pool, policy(settings), file_id)
    async with pool.acquire() as conn:
        status = await service.file_status(conn, "metro", file_id)
        results = await service.file_results(conn, "metro", file_id)
    return status, [msgspec.json.decode(x) for x in results.splitlines()]


def _words_are_ours(lines: list[Any]) -> None:
    for x in lines:
        for leak in LEAKS:
            assert leak not in (x["message"] or ""), x


async def test_hostile_ndjson_lines_are_their_own_verdicts(pool, settings):
    await operator(pool, "metro")
    _, subject = await linked(pool)
    start = now() - timedelta(hours=6)

    def trip(rid: str, hours: int = 0) -> bytes:
        return msgspec.json.encode(metro(subject, rid, start=start + timedelta(hours=hours)))

    good = trip("f1")
    lines = [
        good,
        good.replace(b'"record_id":"f1"', b'"record_id":"a\\u0000b"'),  # NUL in the record id
        trip("f3").replace(subject.encode(), b"s\\u0000"),  # NUL in the subject
        b"[" * 100_000,  # nesting far deeper than any event
        trip("f5").replace(b"metro", b"m\xffetro"),  # one invalid UTF-8 byte
        trip("f6").replace(
            msgspec.json.encode(start)[1:-1], b"9999-12-31T23:00:00-05:00"
        ),  # no UTC form
        b'{"type": "transit_trip", "record_id": "f7"}',
        trip("f8", hours=2),
    ]
    status, results = await _process(pool, settings, "ndjson", b"\n".join(lines))
    assert (status.status, status.error) == ("done", None)
    assert (status.records, status.accepted, status.rejected) == (8, 2, 6)
    assert [(x["line"], x["status"]) for x in results] == [
        (1, "accepted"),
        *[(n, "rejected") for n in range(2, 8)],
        (8, "accepted"),
    ]
    assert {x["reason_code"] for x in results[1:7]} == {"record_invalid"}
    _words_are_ours(results)
    by_line = {x["line"]: x for x in results}
    assert "NUL" in by_line[2]["message"] and by_line[2]["record_id"] == "line:2"
    assert "NUL" in by_line[3]["message"] and by_line[3]["record_id"] == "f3"
    assert "expected `object`, got `array`" in by_line[4]["message"]
    assert "not valid UTF-8" in by_line[5]["message"]
    assert by_line[6]["message"].startswith("line 6: ")
    assert "missing required field" in by_line[7]["message"]


async def test_hostile_csv_rows_are_their_own_verdicts(pool, settings):
    await operator(pool, "metro")
    _, subject = await linked(pool)
    start = (now() - timedelta(hours=6)).isoformat()
    end = (now() - timedelta(hours=5, minutes=30)).isoformat()
    later = (now() - timedelta(hours=3)).isoformat()
    later_end = (now() - timedelta(hours=2, minutes=30)).isoformat()
    header = b"type,record_id,subject,mode,started_at,ended_at,distance_m\n"
    rows = [
        f"transit_trip,c1,{subject},bus,{start},{end},5000".encode(),
        f"transit_trip,c2,{subject},bus,{start},{end},five".encode(),
        b'transit_trip,c3,"' + b"x" * 140_000 + b'",bus,' + start.encode() + b",,1",
        f"transit_trip,c4,{subject},b\xffus,{start},{end},5000".encode("latin-1"),
        f"transit_trip,c5,{subject}\x00,bus,{start},{end},5000".encode(),
        f"transit_trip,c6,{subject},bus,{start},{end},5000,extra".encode(),
        f"transit_trip,c7,{subject},bus,{later},{later_end},5000".encode(),
    ]
    status, results = await _process(pool, settings, "csv", header + b"\n".join(rows) + b"\n")
    assert (status.status, status.error) == ("done", None)
    assert (status.records, status.accepted, status.rejected) == (7, 2, 5)
    assert [x["status"] for x in results] == ["accepted", *["rejected"] * 5, "accepted"]
    _words_are_ours(results)
    by_line = {x["line"]: x for x in results}
    assert by_line[3]["message"] == "line 3: column distance_m: 'five' is not a whole number"
    assert "longer than 131,072 characters" in by_line[4]["message"]
    assert "not valid UTF-8" in by_line[5]["message"]
    assert "NUL" in by_line[6]["message"]
    assert "has 8 fields; the header names 7" in by_line[7]["message"]


async def test_an_unknown_csv_column_is_refused_once_at_upload(pool, settings):
    await operator(pool, "metro")
    csv = b"type,record_id,subject,mode,started_at,ended_at,distanse_m\n" + b"x,1,s,bus,,,1\n" * 3
    async with transaction(pool) as tx:
        with pytest.raises(InvalidFile) as caught:
            await service.create_file(tx, "metro", "csv", csv)
    assert "unknown columns: distanse_m" in str(caught.value)
    # A file stored before the check (or by another door: a whole file in one unsplit chunk,
    # as migration 0027 leaves a file stored before it) fails once, with that message.
    async with transaction(pool) as tx:
        file_id, _ = await repo.insert_file(
            tx.conn, "00000000-0000-4000-8000-000000000001", "metro", "csv", "x", len(csv)
        )

        async def legacy():
            yield (uuid.UUID(file_id), 0, 1, None, [], csv)

        await repo.copy_chunks(tx.conn, legacy())
        await repo.set_layout(tx.conn, file_id, header=b"", chunks=1, total=0)
    assert await process_file(pool, policy(settings), file_id) == "failed"
    async with pool.acquire() as conn:
        status = await service.file_status(conn, "metro", file_id)
        results = await service.file_results(conn, "metro", file_id)
    assert status.error and "unknown columns: distanse_m" in status.error
    assert status.records == 0 and results == b""


async def test_upload_with_an_unknown_column_answers_400(client, pool, settings):
    await operator(pool, "metro")
    path = "/api/operators/v1/files?format=csv"
    body = b"type,record_id,bogus\ntransit_trip,1,2\n"
    headers = sign_request(SECRET, "POST", path, body, operator_id="metro", key_id="k1")
    # The English detail names the column (Chinese: the code's sentence, tests/test_messages.py).
    english = {**headers, "Content-Type": "text/csv", "Accept-Language": "en"}
    r = await client.post(path, content=body, headers=english)
    assert r.status_code == 400, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["code"] == "file_invalid" and "bogus" in r.json()["detail"]


async def test_a_record_failing_unforeseen_is_isolated(pool, settings, monkeypatch):
    """Whatever no check foresaw: the chunk is done again record by record, the failing one is
    answered record_invalid (details to the log only) and the others go through."""
    await operator(pool, "metro")
    _, subject = await linked(pool)
    start = now() - timedelta(hours=6)
    content = b"\n".join(
        msgspec.json.encode(metro(subject, f"u{i}", start=start + timedelta(hours=i)))
        for i in range(3)
    )
    from behaviours.quantify import quantify as real

    def quantify(it):
        if it.event.record_id == "u1":
            raise RuntimeError("disk on fire at /var/lib/postgresql")
        real(it)

    monkeypatch.setattr("behaviours.pipeline.quantify", quantify)
    status, results = await _process(pool, settings, "ndjson", content)
    assert (status.status, status.accepted, status.rejected) == ("done", 2, 1)
    assert [x["status"] for x in results] == ["accepted", "rejected", "accepted"]
    assert results[1]["reason_code"] == "record_invalid"
    assert "disk on fire" not in results[1]["message"]
    async with pool.acquire() as conn:
        n = await conn.fetchval("SELECT count(*) FROM behaviour_events")
    assert n == 2


async def test_a_failed_file_shows_no_internal_error(pool, settings, monkeypatch):
    await operator(pool, "metro")
    _, subject = await linked(pool)

    async def broken(*_a, **_k):
        raise RuntimeError('relation "ingest_files" secret detail')

    monkeypatch.setattr("behaviours.files.record_chunk", broken)
    content = msgspec.json.encode(metro(subject, "z1"))
    status, _ = await _process(pool, settings, "ndjson", content)
    assert status.status == "failed" and status.error
    assert "secret detail" not in status.error and "RuntimeError" not in status.error
    assert "internal error" in status.error


async def test_file_and_api_forms_of_one_record_are_one_content(pool, settings):
    """The digest is of the decoded record: the same trip pushed as a batch and then in a CSV
    file is a duplicate; the same id with other content in the file is record_id_reused."""
    from tests.behaviours.factories import run

    await operator(pool, "metro")
    _, subject = await linked(pool)
    start = now() - timedelta(hours=6)
    end = start + timedelta(minutes=20)
    [pushed] = await run(pool, settings, [metro(subject, "k1", start=start, mode="bus")])
    assert pushed.status == "accepted"
    csv = (
        "type,record_id,subject,mode,started_at,ended_at,distance_m\n"
        f"transit_trip,k1,{subject},bus,{start.isoformat()},{end.isoformat()},10000\n"
        f"transit_trip,k1,{subject},bus,{start.isoformat()},{end.isoformat()},11000\n"
    ).encode()
    status, results = await _process(pool, settings, "csv", csv)
    assert [x["status"] for x in results] == ["duplicate", "rejected"]
    assert results[0]["event_id"] == pushed.event_id
    assert results[1]["reason_code"] == "record_id_reused"
    assert (status.duplicates, status.rejected) == (1, 1)
