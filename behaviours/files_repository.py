"""All SQL of operators' daily files: ``ingest_files`` (one row per file: its counters and the
durable cursor ``next_chunk``) and ``ingest_file_chunks`` (one row per chunk: its own lines and,
once processed, its verdicts). Migration 0027; the design is in behaviours/files.py."""

from __future__ import annotations

from collections.abc import AsyncIterable, Sequence
from typing import Any

CHUNK_COLUMNS = ("file_id", "seq", "first_line", "records", "oversized", "content")


async def insert_file(
    conn: Any, file_id: str, operator_id: str, fmt: str, sha256: str, size_bytes: int
) -> tuple[str, bool]:
    """The file's id, and whether it is new (the same content uploaded again is the same file:
    the database decides, on the (operator, sha256) unique index)."""
    row = await conn.fetchrow(
        """
        WITH ins AS (
            INSERT INTO ingest_files (id, operator_id, format, sha256, size_bytes)
            VALUES ($1, $2, $3, $4, $5) ON CONFLICT (operator_id, sha256) DO NOTHING
            RETURNING id::text
        )
        SELECT id, true FROM ins
        UNION ALL
        SELECT id::text, false FROM ingest_files WHERE operator_id = $2 AND sha256 = $4
        LIMIT 1
        """,
        file_id,
        operator_id,
        fmt,
        sha256,
        size_bytes,
    )
    if row is None:
        # A concurrent upload of the same content committed while this statement waited on the
        # conflict; the statement's snapshot predates it, a fresh one sees it.
        existing = await conn.fetchval(
            "SELECT id::text FROM ingest_files WHERE operator_id = $1 AND sha256 = $2",
            operator_id,
            sha256,
        )
        return existing, False
    return row[0], row[1]


async def copy_chunks(conn: Any, rows: AsyncIterable[tuple[Any, ...]]) -> None:
    """Stream the chunks' rows into the table (binary COPY; one chunk in memory at a time)."""
    await conn.copy_records_to_table("ingest_file_chunks", records=rows, columns=CHUNK_COLUMNS)


async def set_layout(conn: Any, file_id: str, *, header: bytes, chunks: int, total: int) -> None:
    await conn.execute(
        "UPDATE ingest_files SET header = $2, chunks = $3, records_total = $4 WHERE id = $1",
        file_id,
        header,
        chunks,
        total,
    )


_STATUS = """
    SELECT id::text, operator_id, format, status, records, accepted, duplicates, rejected,
           size_bytes, created_at, finished_at, error, records_total, chunks,
           next_chunk AS chunks_done
    FROM ingest_files WHERE id = $1
"""


async def file_status(conn: Any, file_id: str) -> Any:
    return await conn.fetchrow(_STATUS, file_id)


async def file_owner(conn: Any, file_id: str) -> str | None:
    owner: str | None = await conn.fetchval(
        "SELECT operator_id FROM ingest_files WHERE id = $1", file_id
    )
    return owner


async def results_from(conn: Any, file_id: str, seq: int, max_bytes: int) -> list[Any]:
    """The processed chunks' verdicts from ``seq`` on, in order, at least one chunk and then as
    many as fit in ``max_bytes`` (chunks are processed in order: the first unprocessed one ends
    the list)."""
    rows: list[Any] = await conn.fetch(
        """
        SELECT seq, results FROM (
            SELECT seq, results,
                   sum(length(results)) OVER (ORDER BY seq) - length(results) AS before
            FROM ingest_file_chunks
            WHERE file_id = $1 AND seq >= $2 AND results IS NOT NULL
        ) c
        WHERE before < $3
        ORDER BY seq
        """,
        file_id,
        seq,
        max_bytes,
    )
    return rows


async def claim_chunk(conn: Any, file_id: str, seq: int | None = None) -> Any:
    """Lock the file's first chunk not done and not held by another transaction (``seq``: that
    chunk only), with the file's layout; None when there is none (the file is finished,
    failed, or its remaining chunks are held). A chunk of a file stored before chunking
    (``records`` NULL) may hold verdicts already: it is claimed to be cut up."""
    return await conn.fetchrow(
        """
        SELECT c.seq, c.first_line, c.records AS chunk_records, c.oversized, c.content,
               f.id::text, f.operator_id, f.format, f.header, f.chunks, f.records
        FROM ingest_file_chunks c JOIN ingest_files f ON f.id = c.file_id
        WHERE c.file_id = $1 AND f.status IN ('queued', 'processing')
          AND c.seq >= f.next_chunk AND (c.results IS NULL OR c.records IS NULL)
          AND ($2::integer IS NULL OR c.seq = $2)
        ORDER BY c.seq LIMIT 1
        FOR UPDATE OF c SKIP LOCKED
        """,
        file_id,
        seq,
    )


async def lock_file(conn: Any, file_id: str) -> str | None:
    """Lock the file row (a chunk's last step: the counters and the cursor of chunks
    finishing at once are written one after the other); its status (None: no such file)."""
    status: str | None = await conn.fetchval(
        "SELECT status FROM ingest_files WHERE id = $1 FOR UPDATE", file_id
    )
    return status


async def chunk_done(
    conn: Any,
    file_id: str,
    seq: int,
    results: bytes,
    *,
    accepted: int,
    duplicates: int,
    rejected: int,
    records: int,
) -> None:
    """The chunk's verdicts, the file's counters and its cursor (the first chunk without
    verdicts: chunks finish in any order), in one statement; the file is done once the cursor
    passes its last chunk. Call :func:`lock_file` first in the same transaction, so that this
    statement's snapshot sees every other chunk that finished before it."""
    await conn.execute(
        """
        WITH c AS (
            UPDATE ingest_file_chunks SET results = $3 WHERE file_id = $1 AND seq = $2
        ), cursor AS (
            SELECT coalesce(
                (SELECT min(c.seq) FROM ingest_file_chunks c JOIN ingest_files f ON f.id = $1
                 WHERE c.file_id = $1 AND c.seq >= f.next_chunk AND c.seq <> $2
                   AND c.results IS NULL),
                (SELECT chunks FROM ingest_files WHERE id = $1)
            ) AS next
        )
        UPDATE ingest_files SET next_chunk = cursor.next, records = records + $4,
            accepted = accepted + $5, duplicates = duplicates + $6, rejected = rejected + $7,
            status = CASE WHEN cursor.next >= chunks THEN 'done' ELSE 'processing' END,
            finished_at = CASE WHEN cursor.next >= chunks THEN now() END
        FROM cursor
        WHERE id = $1
        """,
        file_id,
        seq,
        results,
        records,
        accepted,
        duplicates,
        rejected,
    )


async def finish_if_complete(conn: Any, file_id: str) -> str | None:
    """The file's status, once a worker finds no chunk left to claim: a file with every chunk
    done (or none at all) that is still open is finished here. None: no such file."""
    status: str | None = await conn.fetchval(
        """
        WITH fin AS (
            UPDATE ingest_files SET status = 'done', finished_at = now()
            WHERE id = $1 AND status IN ('queued', 'processing') AND next_chunk >= chunks
            RETURNING status
        )
        SELECT status FROM fin
        UNION ALL
        SELECT status FROM ingest_files WHERE id = $1 AND NOT EXISTS (SELECT FROM fin)
        """,
        file_id,
    )
    return status


async def split_legacy(
    conn: Any,
    file_id: str,
    chunks: Sequence[tuple[int, int, int, list[int], bytes]],
    *,
    header: bytes,
    done_records: int,
) -> None:
    """A file stored before migration 0027 (one chunk, seq 0, the whole content): seq 0 keeps
    the verdicts it had and drops its content; ``chunks`` (seq from 1) hold the rest."""
    await conn.execute(
        """
        UPDATE ingest_file_chunks SET content = '', records = $2, results = coalesce(results, '')
        WHERE file_id = $1 AND seq = 0
        """,
        file_id,
        done_records,
    )
    await conn.executemany(
        """
        INSERT INTO ingest_file_chunks (file_id, seq, first_line, records, oversized, content)
        VALUES ($1, $2, $3, $4, $5, $6)
        """,
        [(file_id, *c) for c in chunks],
    )
    await conn.execute(
        """
        UPDATE ingest_files SET header = $2, chunks = $3, next_chunk = 1, status = 'processing',
            records_total = $4
        WHERE id = $1
        """,
        file_id,
        header,
        1 + len(chunks),
        done_records + sum(c[2] for c in chunks),
    )


async def file_failed(conn: Any, file_id: str, error: str) -> None:
    await conn.execute(
        "UPDATE ingest_files SET status = 'failed', error = $2, finished_at = now() WHERE id = $1",
        file_id,
        error,
    )


async def pending_files(conn: Any) -> list[str]:
    rows = await conn.fetch(
        "SELECT id::text FROM ingest_files WHERE status IN ('queued', 'processing') "
        "AND created_at < now() - interval '2 minutes' ORDER BY created_at LIMIT 100"
    )
    return [r[0] for r in rows]
