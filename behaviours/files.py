"""Operators' daily files: stored chunk by chunk at upload, processed chunk by chunk, answered
chunk by chunk. Every step costs what its own chunk costs, so a file's processing is linear in
its size (docs/behaviours.md, "Files").

- **Upload** (:func:`create_file`): the body arrives in a :class:`Spool` (memory up to 1 MiB,
  then a temporary file; hashed as it arrives, so the signature is checked before anything is
  stored). Inside the transaction it is read back in blocks and cut, at record boundaries, into
  chunks of ``chunk_records`` records, each streamed into ``ingest_file_chunks`` (binary COPY):
  one chunk in memory at a time. A physical line longer than :data:`MAX_LINE_BYTES` is not kept
  (a one-character stand-in is, and its record is answered ``record_invalid``), so no line of a
  hostile file is ever held whole either.
- **Processing** (:func:`process_file`, the Celery task's body): one chunk per transaction,
  reading only that chunk's row, its verdicts written beside it and the file's cursor
  (``next_chunk``: the first chunk without verdicts) moved in the same commit;
  ``ingest.file_streams`` chunks at once (claimed ``SKIP LOCKED``). A worker killed mid-file
  loses only the chunks in flight (each rolled back whole); the next one starts at the first
  chunk not done, and nothing is credited twice (the pipeline's record ids make any resend a
  duplicate anyway).
- **Results** (:func:`results_stream`): the processed chunks' verdicts in order, a few chunks
  per query, for the HTTP edge to stream; the status shows ``records`` of ``records_total``.

A line never fails its file: a line that does not parse is its own ``record_invalid`` verdict
(behaviours.records). Should a chunk still fail on something no check foresaw, it is done again
record by record, each in a savepoint, so only the record that fails is answered
``record_invalid`` (and logged) and the others go through. The file ends ``failed`` only when
its CSV header cannot be used or the chunk's own bookkeeping fails, with a message in the
programme's words (the details go to the log, never to the operator)."""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
import logging
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from datetime import datetime
from typing import IO, Any, Literal, NamedTuple

import msgspec

from behaviours import files_repository as repo
from behaviours.errors import ConcurrentIngest, FileNotFound, InvalidFile
from behaviours.events import CanonicalEvent, Source, Verdict
from behaviours.pipeline import IngestPolicy, ingest
from behaviours.records import Parsed, csv_event, line_verdict, ndjson_event
from integrations.operator_records import (
    FileFormatError,
    LineError,
    check_csv_header,
    clean_record_id,
    csv_records,
    line_error,
    ndjson_lines,
)
from kit.db import RACE_ERRORS, TRANSIENT_ERRORS, Tx, transaction

log = logging.getLogger("tanpuhui.integrations.files")

# A physical line longer than this is no event of any kind (an event is well under 4 KiB; a CSV
# field is at most 131,072 characters): its bytes are not kept, its record is record_invalid.
MAX_LINE_BYTES = 1 << 20
# A chunk ends at ``chunk_records`` records or once it holds this many bytes, whichever first.
MAX_CHUNK_BYTES = 16 << 20
# The upload's spool stays in memory up to this size, then moves to a temporary file.
SPOOL_MEMORY_BYTES = 1 << 20
# How much of the results one query reads for the stream (at least one chunk's).
RESULTS_READ_BYTES = 4 << 20
READ_BLOCK = 1 << 20
_STAND_IN = b"-"

# A file's `error` when processing stopped on our side (anything else in `error` is what is
# wrong with the file: FileFormatError's message). The edge localises both (server/operators).
INTERNAL_FAILURE = (
    "Processing stopped by an internal error of the programme (logged with this file's id); the "
    "lines before it were processed. Upload the rest again later."
)


class FileStatus(msgspec.Struct, frozen=True):
    """A file's status and counts; ``records`` of ``records_total`` lines answered so far
    (``records_total`` is known from the upload on; None only for a file stored before
    chunking that no worker has resumed yet), ``chunks_done`` of ``chunks``."""

    id: str
    operator_id: str
    format: str
    status: str
    records: int
    accepted: int
    duplicates: int
    rejected: int
    size_bytes: int
    created_at: datetime
    finished_at: datetime | None
    error: str | None
    records_total: int | None = None
    chunks: int = 0
    chunks_done: int = 0


class FileResultLine(Verdict, frozen=True, kw_only=True):
    """One line of a file's results (NDJSON, ``GET /files/{id}/results``): the line number of
    the file, then that record's verdict (the schema of each line; written first ``line``)."""

    line: int


# --- the upload -------------------------------------------------------------------------------


class Spool:
    """An upload's bytes as they arrive: kept in memory up to :data:`SPOOL_MEMORY_BYTES`, then in
    a temporary file; hashed on the way in. Read back in blocks by :func:`create_file`."""

    def __init__(self) -> None:
        self._file: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY_BYTES)  # noqa: SIM115
        self._hash = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> None:
        self._file.write(data)
        self._hash.update(data)
        self.size += len(data)

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()

    def blocks(self) -> Iterator[bytes]:
        self._file.seek(0)
        while block := self._file.read(READ_BLOCK):
            yield block

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


class Chunk(NamedTuple):
    first_line: int  # the file's number of the chunk's first line (CSV: record; header is 1)
    records: int  # the verdicts it yields (its non-blank records)
    oversized: list[int]  # numbers of its records with a line over MAX_LINE_BYTES
    content: bytes  # its lines as uploaded (CSV: without the header)


def _lines(blocks: Iterable[bytes], *, cr_ends: bool) -> Iterator[tuple[bytes, bool]]:
    """(physical line with its terminator, whether it was too long) over a stream of blocks.
    ``cr_ends``: a lone CR ends a line too (NDJSON: ``bytes.splitlines``); else only LF ends
    one (CSV: how the csv module's input is read). A too-long line is yielded as a
    one-character stand-in with its terminator; its bytes are dropped as they arrive."""
    carry = b""
    dropping = False
    for block in blocks:
        buf = carry + block
        if cr_ends:
            parts = buf.splitlines(keepends=True)
            # The last part is carried unless it ends with LF: it is incomplete, or ends with
            # a CR that may be half of a CRLF (the next block decides).
            carry = parts.pop() if parts and not parts[-1].endswith(b"\n") else b""
        else:
            parts = buf.split(b"\n")
            carry = parts.pop()
            parts = [p + b"\n" for p in parts]
        for line in parts:
            if dropping or _too_long_line(line):
                dropping = False
                yield _STAND_IN + _terminator(line), True
            else:
                yield line, False
        if _too_long_line(carry):
            dropping = True
            carry = b"\r" if carry.endswith(b"\r") else b""
    if dropping or _too_long_line(carry):
        yield _STAND_IN + _terminator(carry), True
    elif carry:
        yield carry, False


def _too_long_line(line: bytes) -> bool:
    return len(line) > MAX_LINE_BYTES + 2  # its terminator (CRLF at most) not counted


def _terminator(line: bytes) -> bytes:
    if line.endswith(b"\r\n"):
        return b"\r\n"
    return line[-1:] if line.endswith((b"\n", b"\r")) else b""


class _Cutter:
    """Collects records into chunks (``chunk_records`` records or ``MAX_CHUNK_BYTES``)."""

    def __init__(self, chunk_records: int) -> None:
        self.chunk_records = chunk_records
        self.total = 0
        self._reset()

    def _reset(self) -> None:
        self.first: int | None = None
        self.parts: list[bytes] = []
        self.size = 0
        self.count = 0
        self.over: list[int] = []

    def add(self, n: int, raw: bytes, *, answered: bool, oversized: bool) -> Chunk | None:
        if self.first is None:
            self.first = n
        self.parts.append(raw)
        self.size += len(raw)
        if oversized:
            self.over.append(n)
        if answered:
            self.count += 1
        if self.count >= self.chunk_records or self.size >= MAX_CHUNK_BYTES:
            return self.flush()
        return None

    def tail(self, raw: bytes) -> None:
        """Bytes after the last record (a CSV reader's trailing lines): part of this chunk."""
        self.parts.append(raw)

    def flush(self) -> Chunk | None:
        if self.first is None or self.count == 0:
            # only blank lines: no verdict, nothing to process
            self._reset()
            return None
        out = Chunk(self.first, self.count, self.over, b"".join(self.parts))
        self.total += self.count
        self._reset()
        return out


def _ndjson_chunks(blocks: Iterable[bytes], cutter: _Cutter, skip_through: int) -> Iterator[Chunk]:
    for n, (raw, oversized) in enumerate(_lines(blocks, cr_ends=True), start=1):
        if n <= skip_through:
            continue
        done = cutter.add(n, raw, answered=oversized or bool(raw.strip()), oversized=oversized)
        if done is not None:
            yield done
    last = cutter.flush()
    if last is not None:
        yield last


class _Feed:
    """The csv reader's input: a file's physical lines decoded (invalid UTF-8 kept aside as
    lone surrogates, the BOM of the first line dropped), remembering the raw lines taken."""

    def __init__(self, lines: Iterator[tuple[bytes, bool]]) -> None:
        self._lines = lines
        self._first = True
        self.taken: list[bytes] = []
        self.oversized = False

    def __iter__(self) -> _Feed:
        return self

    def __next__(self) -> str:
        raw, oversized = next(self._lines)
        self.taken.append(raw)
        self.oversized |= oversized
        codec = "utf-8-sig" if self._first else "utf-8"
        self._first = False
        return raw.decode(codec, errors="surrogateescape")

    def take(self) -> tuple[bytes, bool]:
        out = b"".join(self.taken), self.oversized
        self.taken, self.oversized = [], False
        return out


def _csv_chunks(
    blocks: Iterable[bytes], cutter: _Cutter, skip_through: int, head: list[bytes]
) -> Iterator[Chunk]:
    """CSV records (a quoted field may span lines; record numbers as csv_records counts them:
    the header is 1) cut into chunks; ``head`` receives the header record's bytes."""
    feed = _Feed(_lines(blocks, cr_ends=False))
    reader = csv.reader(feed)
    try:
        next(reader)
    except StopIteration:
        return
    except csv.Error:
        pass
    header, oversized = feed.take()
    if oversized:
        raise FileFormatError(f"The CSV header is longer than {MAX_LINE_BYTES:,} bytes.")
    check_csv_header(header)
    head.append(header)
    n = 1
    while True:
        n += 1
        try:
            cells = next(reader)
            answered = any(c.strip() for c in cells)
        except StopIteration:
            break
        except csv.Error:
            answered = True
        raw, oversized = feed.take()
        if n <= skip_through:
            continue
        done = cutter.add(n, raw, answered=answered or oversized, oversized=oversized)
        if done is not None:
            yield done
    rest, _ = feed.take()
    if rest:
        cutter.tail(rest)
    last = cutter.flush()
    if last is not None:
        yield last


def split(
    fmt: str,
    blocks: Iterable[bytes],
    chunk_records: int,
    *,
    head: list[bytes],
    skip_through: int = 0,
) -> tuple[Iterator[Chunk], _Cutter]:
    """The file's chunks as they are cut (lazily: one in memory at a time) and the cutter that
    counts the records; ``head`` receives a CSV header. Records numbered up to
    ``skip_through`` are left out (a file stored before chunking, resumed)."""
    cutter = _Cutter(chunk_records)
    if fmt == "csv":
        return _csv_chunks(blocks, cutter, skip_through, head), cutter
    return _ndjson_chunks(blocks, cutter, skip_through), cutter


async def create_file(
    tx: Tx,
    operator_id: str,
    fmt: Literal["ndjson", "csv"],
    content: bytes | Spool,
    *,
    chunk_records: int = 5000,
) -> tuple[str, bool]:
    """Store an uploaded file, cut into chunks of ``chunk_records`` records; (file id, whether
    new). The same content again is the same file (safe to retry the upload). A CSV file whose
    header cannot be used is refused here, once (``file_invalid``), rather than on every one
    of its rows."""
    if isinstance(content, bytes):
        digest, size = hashlib.sha256(content).hexdigest(), len(content)
        blocks: Iterable[bytes] = (content[i : i + READ_BLOCK] for i in range(0, size, READ_BLOCK))
        start = content[:READ_BLOCK]
    else:
        digest, size, blocks = content.sha256, content.size, content.blocks()
        start = next(content.blocks(), b"")
    if fmt == "csv":
        try:
            check_csv_header(start)
        except FileFormatError as exc:
            raise InvalidFile(str(exc)) from None
    file_id, new = await repo.insert_file(
        tx.conn, str(uuid.uuid4()), operator_id, fmt, digest, size
    )
    if not new:
        return file_id, False
    head: list[bytes] = []
    chunks, cutter = split(fmt, blocks, chunk_records, head=head)
    key = uuid.UUID(file_id)
    count = 0

    async def rows() -> AsyncIterator[tuple[Any, ...]]:
        nonlocal count
        for seq, c in enumerate(chunks):
            count = seq + 1
            yield (key, seq, c.first_line, c.records, c.oversized, c.content)

    try:
        await repo.copy_chunks(tx.conn, rows())
    except FileFormatError as exc:
        raise InvalidFile(str(exc)) from None
    await repo.set_layout(
        tx.conn, file_id, header=head[0] if head else b"", chunks=count, total=cutter.total
    )
    return file_id, True


# --- status and results -----------------------------------------------------------------------


def _uuid(value: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        return ""


async def file_status(conn: Any, operator_id: str, file_id: str) -> FileStatus:
    row = await repo.file_status(conn, _uuid(file_id)) if _uuid(file_id) else None
    if row is None or row["operator_id"] != operator_id:
        raise FileNotFound(f"No file {file_id!r} of this operator.")
    return FileStatus(**dict(row))


async def check_owner(conn: Any, operator_id: str, file_id: str) -> str:
    """The file's canonical id, if it is this operator's (else ``file_not_found``)."""
    key = _uuid(file_id)
    if not key or await repo.file_owner(conn, key) != operator_id:
        raise FileNotFound(f"No file {file_id!r} of this operator.")
    return key


async def results_stream(pool: Any, file_id: str) -> AsyncIterator[bytes]:
    """The verdicts of a file's processed chunks, in order, one chunk's NDJSON per item, read a
    few chunks per query on the pool (no connection is held between reads). Call
    :func:`check_owner` first. A chunk that finishes while the stream runs is included."""
    seq = 0
    while True:
        rows = await repo.results_from(pool, file_id, seq, RESULTS_READ_BYTES)
        for row in rows:
            if row["seq"] != seq:
                return  # the first chunk not processed yet ends what is there to read
            seq += 1
            if row["results"]:
                yield bytes(row["results"])
        if not rows:
            return


async def file_results(conn: Any, operator_id: str, file_id: str) -> bytes:
    """All of a file's verdicts so far as one NDJSON body (the HTTP edge streams instead)."""
    key = await check_owner(conn, operator_id, file_id)
    return b"".join([part async for part in results_stream(conn, key)])


# --- processing -------------------------------------------------------------------------------


async def process_file(pool: Any, policy: IngestPolicy, file_id: str) -> str:
    """Process ``file_id`` to the end; returns its final status ("busy" when what is left of it
    is held by another worker).

    ``ingest.file_streams`` chunks at once, each stream one chunk per transaction (claimed with
    ``SKIP LOCKED``, so streams and workers never take the same chunk): one chunk's database
    work overlaps another's Python. Chunks may finish out of order; the file's cursor is the
    first chunk without verdicts, and the results stream stops there. Which chunk finishes
    first does not change what is credited (the resolution of overlapping claims does not
    depend on their order: docs/behaviours.md)."""
    streams = policy.settings.file_streams
    if streams == 1:
        return await _stream(pool, policy, file_id)
    # Not a TaskGroup: a stream that stops (a lost connection, say) leaves the others to
    # finish their chunks; its error is raised once they have.
    ends = await asyncio.gather(
        *(_stream(pool, policy, file_id) for _ in range(streams)), return_exceptions=True
    )
    for end in ends:
        if isinstance(end, BaseException):
            raise end
    for status in ("failed", "done"):
        if status in ends:
            return status
    return "busy"


class _Stopped(Exception):
    """The file was finished or failed by another stream while this chunk was processed: the
    chunk rolls back (nothing of it is kept) and the stream ends with that status."""

    def __init__(self, status: str) -> None:
        self.status = status


# Another stream or batch took the same record ids or rows at the same moment: the chunk
# rolled back whole and is taken again.
_RACES: tuple[type[BaseException], ...] = (ConcurrentIngest, *RACE_ERRORS)


async def _stream(pool: Any, policy: IngestPolicy, file_id: str) -> str:
    """One stream: chunks until none is left to claim; the file's status then."""
    races = 0
    retry: int | None = None  # a chunk that failed: done again, record by record
    while True:
        try:
            claimed = await _chunk(pool, policy, file_id, retry=retry)
        except FileFormatError as exc:
            async with transaction(pool) as tx:
                await fail_file(tx, file_id, str(exc)[:500])
            return "failed"
        except _Stopped as stop:
            return stop.status
        except _RACES:
            races += 1
            if races == 3:
                raise
            continue
        except TRANSIENT_ERRORS:
            # "Not now" (timeout, connection): the chunk rolled back whole and the file stays
            # resumable; the periodic resume task picks it up again.
            log.warning("file processing interrupted", extra={"file_id": file_id})
            raise
        except _ChunkFailed as failed:
            if failed.seq is not None and retry != failed.seq:
                log.exception("file chunk failed; processing it record by record")
                retry = failed.seq
                continue
            log.exception("file processing failed", extra={"file_id": file_id})
            async with transaction(pool) as tx:
                await fail_file(tx, file_id, INTERNAL_FAILURE)
            return "failed"
        if claimed is None:
            if retry is not None:  # another stream holds the failed chunk now: its turn
                retry = None
                continue
            async with transaction(pool) as tx:
                status = await repo.finish_if_complete(tx.conn, file_id)
            # queued or processing: what is left is another stream's or worker's now
            return status if status in ("done", "failed") else "busy"
        races, retry = 0, None


class _ChunkFailed(Exception):
    """A chunk failed on something no check foresaw (the cause is chained); ``seq`` None when
    it failed before a chunk was claimed."""

    def __init__(self, seq: int | None) -> None:
        self.seq = seq


_EXPECTED: tuple[type[BaseException], ...] = (
    FileFormatError,
    ConcurrentIngest,
    _Stopped,
    *TRANSIENT_ERRORS,
)


async def _chunk(pool: Any, policy: IngestPolicy, file_id: str, *, retry: int | None) -> int | None:
    """The file's next free chunk (``retry``: that failed chunk, record by record) in one
    transaction; its number, or None when no chunk is left to claim. Anything unforeseen is
    :class:`_ChunkFailed` (the transaction rolled back whole)."""
    seq: int | None = None
    try:
        async with transaction(pool) as tx:
            work = await repo.claim_chunk(tx.conn, file_id, retry)
            if work is None:
                return None
            seq = work["seq"]
            if work["chunk_records"] is None:
                await repo.lock_file(tx.conn, file_id)
                await _split_legacy(tx, work, policy.settings.file_chunk_records)
                return seq
            parsed = parse_chunk(
                work["format"],
                bytes(work["header"]),
                work["first_line"],
                work["oversized"],
                bytes(work["content"]),
            )
            lines = [(n, e) for n, e in parsed if not isinstance(e, LineError)]
            source = Source(operator_id=work["operator_id"])
            if retry is not None:
                found = await _one_by_one(tx, source, lines, policy, file_id)
            else:
                found = await ingest(tx, source, [e for _, e in lines], policy=policy)
            verdicts = iter(found)
            out: list[tuple[int, Verdict]] = [
                (n, line_verdict(e) if isinstance(e, LineError) else next(verdicts))
                for n, e in parsed
            ]
            status = await repo.lock_file(tx.conn, file_id)
            if status not in ("queued", "processing"):
                raise _Stopped(status or "failed")
            await record_chunk(tx, file_id, seq, out)
    except _EXPECTED:
        raise
    except Exception as exc:
        raise _ChunkFailed(seq) from exc
    return seq


def parse_chunk(
    fmt: str, header: bytes, first_line: int, oversized: Sequence[int], content: bytes
) -> list[Parsed]:
    """(the file's line or record number, event or error) for every record of one chunk,
    numbered as if the whole file had been read (its verdicts and messages name those)."""
    too_long = set(oversized)
    offset = first_line - 1
    out: list[Parsed] = []
    if fmt != "csv":
        for local, raw in ndjson_lines(content):
            n = local + offset
            out.append((n, _too_long(n) if n in too_long else ndjson_event(n, raw)))
        return out
    # csv_records numbers the chunk's records from 2 (its line 1 is the header put back).
    offset = first_line - 2
    rows: list[list[str] | None] | None = None
    for local, record in csv_records(header + content):
        n = local + offset
        if n in too_long:
            out.append((n, _too_long(n)))
        elif not isinstance(record, LineError):
            out.append((n, csv_event(n, record)))
        else:
            rid = record.record_id
            if rid == f"line:{local}":
                # The fallback id names the chunk's own number: the file's, unless the
                # operator's record id really is that text.
                rows = rows if rows is not None else _csv_rows(header + content)
                if _own_record_id(rows, local) != rid:
                    rid = f"line:{n}"
            out.append((n, msgspec.structs.replace(record, line=n, record_id=rid)))
    return out


def _too_long(n: int) -> LineError:
    return line_error(
        n, None, f"is longer than {MAX_LINE_BYTES:,} bytes, more than any record; not kept"
    )


def _csv_rows(content: bytes) -> list[list[str] | None]:
    """The chunk's CSV records as the csv module reads them (None: a record it refused)."""
    reader = csv.reader(io.StringIO(content.decode("utf-8-sig", errors="surrogateescape")))
    rows: list[list[str] | None] = []
    while True:
        try:
            rows.append(next(reader))
        except StopIteration:
            return rows
        except csv.Error:
            rows.append(None)


def _own_record_id(rows: list[list[str] | None], local: int) -> str | None:
    header, row = rows[0] or [], rows[local - 1] if local - 1 < len(rows) else None
    names = [h.strip() for h in header]
    if row is None or "record_id" not in names:
        return None
    i = names.index("record_id")
    cell = row[i] if i < len(row) else None
    own = clean_record_id(cell, 1)
    return own if own == clean_record_id(cell, 2) else None  # else: no usable id of its own


async def _split_legacy(tx: Tx, work: Any, chunk_records: int) -> None:
    """A file stored before chunking (migration 0027): cut what is left of it (after its old
    resume point) into chunks, its verdicts so far staying in chunk 0."""
    head: list[bytes] = []
    chunks, _ = split(
        work["format"],
        [bytes(work["content"])],
        chunk_records,
        head=head,
        skip_through=work["first_line"] - 1,
    )
    await repo.split_legacy(
        tx.conn,
        work["id"],
        [(seq, *c) for seq, c in enumerate(chunks, start=1)],
        header=head[0] if head else b"",
        done_records=work["records"],
    )


async def record_chunk(tx: Tx, file_id: str, seq: int, verdicts: list[tuple[int, Verdict]]) -> None:
    """A chunk's verdicts (NDJSON with the line number), the file's counts and its cursor (the
    file row is locked first: ``files_repository.lock_file``)."""
    enc = msgspec.json.Encoder()
    lines = b"".join(
        enc.encode({"line": n, **msgspec.structs.asdict(v)}) + b"\n" for n, v in verdicts
    )
    counts = {"accepted": 0, "duplicate": 0, "rejected": 0}
    for _, v in verdicts:
        counts[v.status] += 1
    await repo.chunk_done(
        tx.conn,
        file_id,
        seq,
        lines,
        records=len(verdicts),
        accepted=counts["accepted"],
        duplicates=counts["duplicate"],
        rejected=counts["rejected"],
    )


async def _one_by_one(
    tx: Tx,
    source: Source,
    lines: Sequence[tuple[int, CanonicalEvent]],
    policy: IngestPolicy,
    file_id: str,
) -> list[Verdict]:
    """Each record in its own savepoint: one that fails is rolled back alone and answered
    ``record_invalid``; a transient failure or a race still rolls back the whole chunk."""
    out: list[Verdict] = []
    for n, event in lines:
        try:
            async with tx.conn.transaction():
                [verdict] = await ingest(tx, source, [event], policy=policy)
        except ConcurrentIngest:
            raise
        except TRANSIENT_ERRORS:
            raise
        except Exception:
            log.exception("file record failed", extra={"file_id": file_id, "line": n})
            verdict = Verdict(
                record_id=clean_record_id(event.record_id, n),
                status="rejected",
                reason_code="record_invalid",
                message=f"line {n}: this record could not be processed and nothing of it was "
                "kept; the programme logged the error.",
            )
        out.append(verdict)
    return out


async def fail_file(tx: Tx, file_id: str, error: str) -> None:
    await repo.file_failed(tx.conn, file_id, error)


async def stalled_files(conn: Any) -> list[str]:
    return await repo.pending_files(conn)
