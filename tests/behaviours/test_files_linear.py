"""Daily files processed chunk by chunk (issue 10, item 5): each chunk stored as its own row
and read alone, verdicts written per chunk and streamed out, a durable cursor that a killed
worker resumes from, and the verdicts the batch path gives for the same records."""

from __future__ import annotations

import asyncio
import random
import signal
import textwrap
import uuid
from datetime import timedelta
from typing import Any

import msgspec
import pytest

from behaviours import files
from behaviours import files_repository as frepo
from behaviours.records import parse
from kit.auth import sign_request
from kit.db import transaction
from tests.behaviours.factories import SECRET, linked, metro, now, operator, policy, run
from tests.server.processes import Process, python, store_env

enc = msgspec.json.Encoder()


async def _upload(pool: Any, content: bytes, chunk: int, fmt: Any = "ndjson") -> str:
    async with transaction(pool) as tx:
        file_id, new = await files.create_file(tx, "metro", fmt, content, chunk_records=chunk)
    assert new
    return file_id


async def _results(pool: Any, file_id: str) -> list[dict[str, Any]]:
    async with pool.acquire() as conn:
        body = await files.file_results(conn, "metro", file_id)
    return [msgspec.json.decode(x) for x in body.splitlines()]


def one_stream(settings: Any) -> Any:
    """The test settings' policy with one chunk of a file at a time (chunks in file order)."""
    ingest = msgspec.structs.replace(settings.ingest, file_streams=1)
    return policy(msgspec.structs.replace(settings, ingest=ingest))


def _answer(v: Any) -> tuple[Any, ...]:
    d = v if isinstance(v, dict) else msgspec.structs.asdict(v)
    return (d["record_id"], d["status"], d["reason_code"], d["reduction_g"], d["points"])


class TestTheSplit:
    """Cutting at upload and parsing a chunk alone number and answer every line as reading the
    whole file at once does, however the bytes arrived."""

    @staticmethod
    def _hostile_ndjson(rnd: random.Random) -> bytes:
        pieces = [
            b'{"type": "transit_trip", "record_id": "a"}',
            b"",
            b"   ",
            b"\xef\xbb\xbf{}",
            b"not json",
            b'{"record_id": "line:3"}',
            b"[" * 50,
            b'{"type": "daily_steps", "record_id": "s\xff"}',
        ]
        ends = [b"\n", b"\r\n", b"\r"]
        return b"".join(rnd.choice(pieces) + rnd.choice(ends) for _ in range(rnd.randrange(1, 60)))

    @staticmethod
    def _hostile_csv(rnd: random.Random) -> bytes:
        header = b"\xef\xbb\xbftype,record_id,subject,mode,started_at,ended_at,distance_m\n"
        rows = [
            b"transit_trip,c1,s,bus,2026-01-01T00:00:00Z,2026-01-01T00:20:00Z,5000",
            b"transit_trip,line:3,s,bus,,,five",  # an operator's id that looks like a fallback
            b'transit_trip,"multi\nline\r\nid",s,bus,,,1',
            b"",
            b",,,",
            b'transit_trip,"' + b"x" * 140_000 + b'",s,bus,,,1',  # over the field limit
            b"transit_trip,c\x00,s,bus,,,1",
            b"transit_trip,c\xff,s,bus,,,1",
            b"transit_trip,c2,s,bus,,,1,extra",
            b'transit_trip,"unterminated,s',
        ]
        return header + b"".join(
            rnd.choice(rows) + rnd.choice([b"\n", b"\r\n"]) for _ in range(rnd.randrange(1, 40))
        )

    @staticmethod
    def _blocks(rnd: random.Random, content: bytes) -> list[bytes]:
        out, i = [], 0
        while i < len(content):
            step = rnd.choice([1, 2, 3, 7, 64, 4096, 1 << 20])
            out.append(content[i : i + step])
            i += step
        return out

    @pytest.mark.parametrize("fmt", ["ndjson", "csv"])
    def test_chunks_parse_as_the_whole_file(self, fmt: str) -> None:
        rnd = random.Random(10)
        for _ in range(150):
            content = self._hostile_ndjson(rnd) if fmt == "ndjson" else self._hostile_csv(rnd)
            head: list[bytes] = []
            size = rnd.choice([1, 2, 3, 5, 5000])
            cut, cutter = files.split(fmt, self._blocks(rnd, content), size, head=head)
            chunks = list(cut)
            got = [
                p
                for c in chunks
                for p in files.parse_chunk(
                    fmt, head[0] if head else b"", c.first_line, c.oversized, c.content
                )
            ]
            assert got == list(parse(fmt, content)), content
            assert cutter.total == len(got) == sum(c.records for c in chunks)
            assert all(0 < c.records <= size for c in chunks)
            # every byte up to the last record is in exactly one chunk, in order (blank lines
            # after it, which answer nothing, are not kept)
            kept = (head[0] if head else b"") + b"".join(c.content for c in chunks)
            assert content.startswith(kept)
            assert not list(parse(fmt, (head[0] if head else b"") + content[len(kept) :]))

    def test_a_line_over_the_limit_is_not_kept(self) -> None:
        big = b'{"record_id": "' + b"x" * (files.MAX_LINE_BYTES + 10) + b'"}'
        good = enc.encode(metro("s", "g1"))
        content = good + b"\n" + big + b"\r\n" + good
        blocks = [content[i : i + 65536] for i in range(0, len(content), 65536)]
        chunks, _ = files.split("ndjson", blocks, 5000, head=[])
        [chunk] = list(chunks)
        assert chunk.oversized == [2] and len(chunk.content) < 1000
        parsed = files.parse_chunk("ndjson", b"", 1, chunk.oversized, chunk.content)
        assert [n for n, _ in parsed] == [1, 2, 3]
        assert "longer than 1,048,576 bytes" in parsed[1][1].message  # type: ignore[union-attr]


async def test_a_multi_chunk_file_answers_as_the_batch_path(pool, settings):
    """The same records (resends and reused ids straddling chunk boundaries, unknown subjects,
    stale and future trips) through a file cut into chunks of 3 and through one API batch: the
    same verdicts, record by record, and the same credits."""
    await operator(pool, "metro")
    await operator(pool, "metro2")
    start = now() - timedelta(days=2)

    async def records(op: str) -> list[Any]:
        subjects = [(await linked(pool, op))[1] for _ in range(3)]
        out = []
        for i in range(12):
            out.append(metro(subjects[i % 3], f"t{i}", start=start + timedelta(hours=i)))
        out += [
            metro(subjects[1], "t1", start=start + timedelta(hours=1)),  # a resend: duplicate
            metro(subjects[1], "t2", start=start + timedelta(hours=30)),  # an id reused
            metro("nobody", "n1", start=start),  # unknown subject
            metro(subjects[2], "old", start=now() - timedelta(days=30)),  # too old
            metro(subjects[2], "fut", start=now() + timedelta(days=1)),  # in the future
            metro(subjects[0], "t13", start=start + timedelta(hours=40)),
        ]
        return out

    file_records, batch_records = await records("metro"), await records("metro2")
    content = b"\n\n".join(enc.encode(r) for r in file_records) + b"\r\n"
    file_id = await _upload(pool, content, chunk=3)
    async with pool.acquire() as conn:
        before = await files.file_status(conn, "metro", file_id)
        stored = await conn.fetch(
            "SELECT seq, first_line, records, content FROM ingest_file_chunks "
            "WHERE file_id = $1 ORDER BY seq",
            file_id,
        )
    assert (before.status, before.records, before.records_total) == ("queued", 0, 18)
    assert (before.chunks, before.chunks_done) == (6, 0)
    # each chunk holds its own three records and nothing else
    for row in stored:
        ids = [msgspec.json.decode(x)["record_id"] for x in bytes(row["content"]).split() if x]
        assert ids == [r.record_id for r in file_records[row["seq"] * 3 : row["seq"] * 3 + 3]]
        # a blank line between records: a chunk starts after the previous one's last record
        assert row["first_line"] == max(1, 6 * row["seq"])

    # One stream: the chunks in the file's order, so a resend is the later line (as in one
    # batch); with several streams which copy is the duplicate depends on which chunk
    # commits first (test_chunks_in_parallel_answer_every_line_once).
    assert await files.process_file(pool, one_stream(settings), file_id) == "done"
    results = await _results(pool, file_id)
    batch = await run(pool, settings, batch_records, op_id="metro2")

    assert [x["line"] for x in results] == list(range(1, 37, 2))
    assert [_answer(x) for x in results] == [_answer(v) for v in batch]
    assert {x["status"] for x in results} == {"accepted", "duplicate", "rejected"}
    assert [x["message"] for x in results] == [v.message for v in batch]
    async with pool.acquire() as conn:
        status = await files.file_status(conn, "metro", file_id)
        credited = await conn.fetch(
            "SELECT operator_id, sum(points) AS points, count(*) AS n FROM behaviour_events "
            "WHERE status = 'accepted' GROUP BY operator_id ORDER BY operator_id"
        )
    assert (status.status, status.records, status.chunks_done) == ("done", 18, 6)
    assert status.accepted == sum(x["status"] == "accepted" for x in results)
    assert [(r["n"], r["points"]) for r in credited] == [
        (status.accepted, sum(x["points"] for x in results if x["status"] == "accepted"))
    ] * 2


@pytest.mark.parametrize(
    ("fmt", "content"), [("ndjson", b""), ("ndjson", b"\n  \r\n\n"), ("csv", b"type,record_id\n\n")]
)
async def test_a_file_with_no_record_is_done_at_once(pool, settings, fmt, content):
    await operator(pool, "metro")
    file_id = await _upload(pool, content, chunk=3, fmt=fmt)
    async with pool.acquire() as conn:
        queued = await files.file_status(conn, "metro", file_id)
    assert (queued.records_total, queued.chunks) == (0, 0)
    assert await files.process_file(pool, policy(settings), file_id) == "done"
    async with pool.acquire() as conn:
        status = await files.file_status(conn, "metro", file_id)
    assert (status.status, status.records) == ("done", 0)
    assert await _results(pool, file_id) == []


async def test_a_csv_file_over_chunks_keeps_the_files_numbering(pool, settings):
    await operator(pool, "metro")
    _, subject = await linked(pool)
    start = now() - timedelta(days=3)
    rows = []
    for i in range(7):  # 7 h apart: within the daily cap of rewarded trips
        b, e = start + timedelta(hours=7 * i), start + timedelta(hours=7 * i, minutes=25)
        rows.append(f"transit_trip,c{i},{subject},bus,{b.isoformat()},{e.isoformat()},4000")
    rows.insert(3, "transit_trip,bad,x,bus,,,five")
    rows.insert(5, f'transit_trip,"quoted\nid",{subject},bus,,,1')
    content = (
        "type,record_id,subject,mode,started_at,ended_at,distance_m\n" + "\n".join(rows) + "\n"
    ).encode()
    file_id = await _upload(pool, content, chunk=2, fmt="csv")
    assert await files.process_file(pool, policy(settings), file_id) == "done"
    results = await _results(pool, file_id)
    assert [x["line"] for x in results] == list(range(2, 11))
    assert [x["status"] for x in results].count("accepted") == 7
    by_line = {x["line"]: x for x in results}
    assert by_line[5]["message"] == "line 5: column distance_m: 'five' is not a whole number"
    assert by_line[7]["record_id"] == "quoted\nid" and by_line[7]["status"] == "rejected"


async def test_a_file_stored_before_chunking_is_resumed_where_it_stopped(pool, settings):
    """Migration 0027 leaves a half-done file as one chunk (its whole content, its verdicts so
    far, the old resume point as its first line): the worker cuts the rest into chunks and
    goes on, the earlier verdicts first, the numbering the file's."""
    await operator(pool, "metro")
    subjects = [(await linked(pool))[1] for _ in range(10)]
    start = now() - timedelta(days=3)
    trips = [
        metro(subjects[i % 10], f"l{i}", start=start + timedelta(hours=7 * (i // 10)))
        for i in range(12)
    ]
    content = b"\n".join(enc.encode(t) for t in trips)
    # lines 1-2 were answered before the migration (here: processed as a file of their own)
    done_before = await _upload(pool, b"\n".join(content.split(b"\n")[:2]), chunk=5)
    assert await files.process_file(pool, policy(settings), done_before) == "done"
    old_results = b"".join([x async for x in files.results_stream(pool, done_before)])
    async with transaction(pool) as tx:
        file_id, _ = await frepo.insert_file(
            tx.conn, "00000000-0000-4000-8000-0000000000aa", "metro", "ndjson", "legacy", 1
        )

        async def legacy():
            yield (uuid.UUID(file_id), 0, 3, None, [], content)

        await frepo.copy_chunks(tx.conn, legacy())
        await frepo.set_layout(tx.conn, file_id, header=b"", chunks=1, total=0)
        await tx.conn.execute(
            "UPDATE ingest_file_chunks SET results = $2 WHERE file_id = $1", file_id, old_results
        )
        await tx.conn.execute(
            "UPDATE ingest_files SET records = 2, accepted = 2, status = 'processing' "
            "WHERE id = $1",
            file_id,
        )
    assert await files.process_file(pool, policy(settings), file_id) == "done"
    results = await _results(pool, file_id)
    assert [x["line"] for x in results] == list(range(1, 13))
    assert [x["record_id"] for x in results] == [f"l{i}" for i in range(12)]
    assert {x["status"] for x in results} == {"accepted"}  # lines 1-2 not ingested again
    async with pool.acquire() as conn:
        status = await files.file_status(conn, "metro", file_id)
    assert (status.records, status.records_total, status.accepted) == (12, 12, 12)
    # the old chunk, then the 10 lines left, cut by the worker's setting (5,000 records)
    assert (status.chunks, status.chunks_done) == (2, 2)


_CRASHING_WORKER = textwrap.dedent(
    """
    import asyncio, os, sys, time
    from behaviours import files
    from behaviours.tasks import policy_of
    from kit.db import create_pool
    from server.settings import Settings

    real = files.record_chunk
    async def slow(tx, file_id, seq, verdicts):
        if seq == 2:
            print(f"chunk {seq} ingested", flush=True)
            time.sleep(60)  # inside the chunk's transaction: killed before its commit
        return await real(tx, file_id, seq, verdicts)
    files.record_chunk = slow

    async def main():
        settings = Settings.from_env(os.environ)
        pool = await create_pool(settings.database.url, min_size=1, max_size=2)
        await files.process_file(pool, policy_of(settings), sys.argv[1])
    asyncio.run(main())
    """
)


async def test_a_worker_killed_mid_file_is_resumed_without_double_credit(pool, settings):
    """A real worker process is killed (SIGKILL) while chunk 2's transaction is open (ingested,
    not committed), chunks 0 and 1 committed. Meanwhile another worker takes the chunks after
    it (those of other residents go through; those of chunk 2's residents wait for its locks);
    once the killed transaction is rolled back it takes chunk 2 as well. Every line is
    answered once, each accepted record credited once (no verdict is a duplicate: no chunk
    committed twice) and the ledger audit passes (tests/conftest.py)."""
    await operator(pool, "metro")
    subjects = [(await linked(pool))[1] for _ in range(10)]
    start = now() - timedelta(days=3)
    trips = [
        metro(subjects[i % 10], f"k{i}", start=start + timedelta(hours=7 * (i // 10)))
        for i in range(40)
    ]
    file_id = await _upload(pool, b"\n".join(enc.encode(t) for t in trips), chunk=5)
    env = store_env(settings, TANPUHUI_INGEST_FILE_STREAMS="1")
    proc = Process(python("-c", _CRASHING_WORKER, file_id), env)
    other = None
    try:
        proc.wait_for(lambda: "chunk 2 ingested" in proc.stdout(), "chunk 2 ingested", 60)
        other = asyncio.create_task(files.process_file(pool, policy(settings), file_id))
        await asyncio.sleep(2)
        assert not other.done()  # chunk 2 is held, and chunk 4 waits on its residents
        async with pool.acquire() as conn:
            mid = await files.file_status(conn, "metro", file_id)
            held = await conn.fetchval(
                "SELECT count(*) FROM behaviour_events WHERE record_id = ANY($1::text[])",
                [f"k{i}" for i in range(10, 15)],
            )
        assert (mid.status, mid.chunks_done, mid.records_total) == ("processing", 2, 40)
        assert held == 0 and mid.records >= 10  # chunk 3 (other residents) may be done
    finally:
        proc.stop(signal.SIGKILL)
    assert other is not None
    assert await asyncio.wait_for(other, 120) == "done"
    results = await _results(pool, file_id)
    assert [x["line"] for x in results] == list(range(1, 41))
    assert [x["status"] for x in results] == ["accepted"] * 40
    async with pool.acquire() as conn:
        events = await conn.fetchval("SELECT count(*) FROM behaviour_events")
        points = await conn.fetchval("SELECT coalesce(sum(points), 0) FROM behaviour_events")
        status = await files.file_status(conn, "metro", file_id)
    assert events == 40 and points == sum(x["points"] for x in results) > 0
    assert (status.records, status.accepted, status.chunks_done) == (40, 40, 8)


async def test_the_results_of_a_file_in_progress_are_what_is_done(pool, settings, monkeypatch):
    """Read while processing: the stream holds the chunks done so far, in order, and a chunk
    that commits while the stream is being read is included; nothing past the first chunk not
    done."""
    await operator(pool, "metro")
    subjects = [(await linked(pool))[1] for _ in range(10)]
    start = now() - timedelta(days=3)
    trips = [
        metro(subjects[i % 10], f"q{i}", start=start + timedelta(hours=7 * (i // 10)))
        for i in range(20)
    ]
    file_id = await _upload(pool, b"\n".join(enc.encode(t) for t in trips), chunk=5)
    real = files.record_chunk

    async def two_then_stop(tx, fid, seq, verdicts):
        if seq == 2:
            raise asyncio.CancelledError  # the worker stops before chunk 2 commits
        return await real(tx, fid, seq, verdicts)

    monkeypatch.setattr(files, "record_chunk", two_then_stop)
    with pytest.raises(asyncio.CancelledError):  # one stream: chunks in order
        await files.process_file(pool, one_stream(settings), file_id)
    stream = files.results_stream(pool, file_id)
    first = await anext(stream)
    monkeypatch.setattr(files, "record_chunk", real)
    assert await files.process_file(pool, policy(settings), file_id) == "done"
    rest = [piece async for piece in stream]
    got = [msgspec.json.decode(x)["line"] for x in (first + b"".join(rest)).splitlines()]
    assert got == list(range(1, 21))  # the first read held chunks 0-1; the rest came after
    assert len(rest) == 3


async def test_a_dispatch_repeated_mid_file_does_not_repeat_a_chunk(pool, settings):
    """Two workers on one file (the sweep re-dispatching a file still in progress): chunks are
    taken one at a time under the file's lock, each once."""
    await operator(pool, "metro")
    subjects = [(await linked(pool))[1] for _ in range(10)]
    start = now() - timedelta(days=4)
    trips = [
        metro(subjects[i % 10], f"d{i}", start=start + timedelta(hours=7 * (i // 10)))
        for i in range(30)
    ]
    file_id = await _upload(pool, b"\n".join(enc.encode(t) for t in trips), chunk=2)
    p = policy(settings)
    outcomes = await asyncio.gather(*(files.process_file(pool, p, file_id) for _ in range(3)))
    assert "done" in outcomes and set(outcomes) <= {"done", "busy"}
    results = await _results(pool, file_id)
    assert [x["line"] for x in results] == list(range(1, 31))
    assert {x["status"] for x in results} == {"accepted"}


async def test_chunks_in_parallel_answer_every_line_once(pool, settings):
    """Three streams on one file of 40 chunks of 3 (resends of earlier records scattered over
    later chunks, residents shared by neighbouring chunks): every line answered once, in the
    file's order; of the copies of one record exactly one is accepted and credited, the
    others are duplicates; the counters and the cursor end at the file's size."""
    await operator(pool, "metro")
    subjects = [(await linked(pool))[1] for _ in range(7)]
    start = now() - timedelta(days=5)
    trips = [metro(subjects[i % 7], f"p{i}", start=start + timedelta(hours=i)) for i in range(100)]
    rnd = random.Random(7)
    resent = [trips[rnd.randrange(100)] for _ in range(20)]
    lines = trips + resent
    rnd.shuffle(lines)
    file_id = await _upload(pool, b"\n".join(enc.encode(t) for t in lines), chunk=3)
    ingest = msgspec.structs.replace(settings.ingest, file_streams=3)
    p = policy(msgspec.structs.replace(settings, ingest=ingest))
    assert await files.process_file(pool, p, file_id) == "done"
    results = await _results(pool, file_id)
    assert [x["line"] for x in results] == list(range(1, 121))
    assert [x["record_id"] for x in results] == [t.record_id for t in lines]
    by_id: dict[str, list[str]] = {}
    for x in results:
        by_id.setdefault(x["record_id"], []).append(x["status"])
    assert len(by_id) == 100
    assert all(sorted(v) == ["accepted"] + ["duplicate"] * (len(v) - 1) for v in by_id.values())
    async with pool.acquire() as conn:
        status = await files.file_status(conn, "metro", file_id)
        events = await conn.fetch(
            "SELECT record_id, points FROM behaviour_events WHERE status = 'accepted'"
        )
    assert sorted(r["record_id"] for r in events) == sorted(by_id)
    accepted = {x["record_id"]: x["points"] for x in results if x["status"] == "accepted"}
    assert {r["record_id"]: r["points"] for r in events} == accepted
    assert (status.status, status.records, status.accepted, status.duplicates) == (
        "done",
        120,
        100,
        20,
    )
    assert (status.chunks, status.chunks_done) == (40, 40)


async def test_results_are_streamed_chunk_by_chunk(client, pool, settings):
    """Over HTTP: uploaded, the status shows progress, the results arrive in pieces (one per
    chunk or a few) and are read incrementally, in order, localised."""
    await operator(pool, "metro")
    _, subject = await linked(pool)
    start = now() - timedelta(days=5)
    trips = [metro(subject, f"h{i}", start=start + timedelta(hours=i)) for i in range(12)]
    body = b"\n".join(enc.encode(t) for t in trips) + b"\n"
    path = "/api/operators/v1/files?format=ndjson"
    headers = {
        **sign_request(SECRET, "POST", path, body, operator_id="metro", key_id="k1"),
        "Content-Type": "application/x-ndjson",
    }
    r = await client.post(path, content=body, headers=headers)
    assert r.status_code == 202, r.text
    file_id = r.json()["id"]
    assert (r.json()["records"], r.json()["records_total"]) == (0, 12)
    # the same chunk size the app cut it with: the setting's (5000): one chunk; re-cut
    # smaller to see several pieces
    small = await _upload_as_other(pool, body)
    assert await files.process_file(pool, policy(settings), small) == "done"

    results = f"/api/operators/v1/files/{small}/results"
    signed = sign_request(SECRET, "GET", results, b"", operator_id="metro", key_id="k1")
    pieces: list[bytes] = []
    async with client.stream("GET", results, headers={**signed, "Accept-Language": "en"}) as s:
        assert s.status_code == 200
        assert s.headers["content-type"].startswith("application/x-ndjson")
        assert "content-length" not in s.headers  # streamed, not one body
        async for piece in s.aiter_bytes():
            pieces.append(piece)
    lines = [msgspec.json.decode(x) for x in b"".join(pieces).splitlines()]
    assert [x["record_id"] for x in lines] == [f"h{i}" for i in range(12)]
    # The route streams files.results_stream: one piece per chunk, read lazily.
    stream = files.results_stream(pool, small)
    first = await anext(stream)
    assert [msgspec.json.decode(x)["record_id"] for x in first.splitlines()] == ["h0", "h1", "h2"]
    rest = [piece async for piece in stream]
    assert len(rest) == 3 and first + b"".join(rest) == b"".join(pieces)
    status_path = f"/api/operators/v1/files/{small}"
    signed = sign_request(SECRET, "GET", status_path, b"", operator_id="metro", key_id="k1")
    s = (await client.get(status_path, headers=signed)).json()
    assert (s["records"], s["records_total"], s["chunks"], s["chunks_done"]) == (12, 12, 4, 4)
    # the first file is untouched by the second: still queued, nothing answered yet
    queued = f"/api/operators/v1/files/{file_id}/results"
    signed = sign_request(SECRET, "GET", queued, b"", operator_id="metro", key_id="k1")
    r = await client.get(queued, headers=signed)
    assert r.status_code == 200 and r.content == b""
    # another operator's file is not found, before any byte is streamed
    await operator(pool, "other")
    signed = sign_request(SECRET, "GET", results, b"", operator_id="other", key_id="k1")
    r = await client.get(results, headers=signed)
    assert r.status_code == 404 and r.json()["code"] == "file_not_found"


async def _upload_as_other(pool: Any, body: bytes) -> str:
    """The same lines under another digest (a trailing blank line), cut in chunks of 3."""
    return await _upload(pool, body + b"\n", chunk=3)


async def test_the_upload_is_spooled_and_checked_before_storing(client, pool, settings):
    """A body past the spool's memory goes to a temporary file, the signature is checked on
    its digest (a tampered byte: 401, nothing stored), the chunks are cut as it is read."""
    await operator(pool, "metro")
    _, subject = await linked(pool)
    start = now() - timedelta(days=6)
    body = b"\n".join(
        enc.encode(metro(subject, f"p{i}", start=start + timedelta(minutes=30 * i)))
        for i in range(6000)
    )
    assert len(body) > files.SPOOL_MEMORY_BYTES
    path = "/api/operators/v1/files?format=ndjson"
    headers = {
        **sign_request(SECRET, "POST", path, body, operator_id="metro", key_id="k1"),
        "Content-Type": "application/x-ndjson",
    }
    tampered = body[:-2] + b"9}"
    r = await client.post(path, content=tampered, headers=headers)
    assert r.status_code == 401 and r.json()["code"] == "signature_invalid"
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM ingest_files") == 0
    headers = {
        **sign_request(SECRET, "POST", path, body, operator_id="metro", key_id="k1"),
        "Content-Type": "application/x-ndjson",
    }
    r = await client.post(path, content=body, headers=headers)
    assert r.status_code == 202, r.text
    assert (r.json()["records_total"], r.json()["chunks"]) == (6000, 2)
    assert r.json()["size_bytes"] == len(body)
