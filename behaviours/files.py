"""Processing an operator's uploaded daily file: parse, then ingest chunk by chunk, each chunk
in its own transaction with its verdicts and resume point (a restarted worker continues).

A line never fails its file: a line that does not parse is its own ``record_invalid`` verdict
(behaviours.records). Should a chunk still fail on something no check foresaw, it
is done again record by record, each in a savepoint, so only the record that fails is answered
``record_invalid`` (and logged) and the others go through. The file ends ``failed`` only when
its CSV header cannot be used or the chunk's own bookkeeping fails, with a message in the
programme's words (the details go to the log, never to the operator)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from itertools import islice
from typing import Any

from behaviours import service
from behaviours.errors import ConcurrentIngest
from behaviours.events import CanonicalEvent, Source, Verdict
from behaviours.pipeline import IngestPolicy
from behaviours.records import line_verdict, parse
from integrations.operator_records import FileFormatError, LineError, clean_record_id
from kit.db import TRANSIENT_ERRORS, Tx, transaction

log = logging.getLogger("tanpuhui.integrations.files")


# A file's `error` when processing stopped on our side (anything else in `error` is what is
# wrong with the file: FileFormatError's message). The edge localises both (server/operators).
INTERNAL_FAILURE = (
    "Processing stopped by an internal error of the programme (logged with this file's id); the "
    "lines before it were processed. Upload the rest again later."
)


async def process_file(pool: Any, policy: IngestPolicy, file_id: str) -> str:
    """Process ``file_id`` to the end; returns its final status (or "busy" if another worker
    holds it)."""
    chunk_size = policy.settings.file_chunk_records
    races = 0
    one_by_one = False
    while True:
        try:
            done = await _chunk(pool, policy, file_id, chunk_size, one_by_one=one_by_one)
        except FileFormatError as exc:
            async with transaction(pool) as tx:
                await service.fail_file(tx, file_id, str(exc)[:500])
            return "failed"
        except ConcurrentIngest:
            races += 1
            if races == 3:
                raise
            continue
        except TRANSIENT_ERRORS:
            # "Not now" (timeout, deadlock, connection): the chunk rolled back whole and the
            # file stays resumable; the periodic resume task picks it up again.
            log.warning("file processing interrupted", extra={"file_id": file_id})
            raise
        except Exception:
            if not one_by_one:
                log.exception("file chunk failed; processing it record by record")
                one_by_one = True
                continue
            log.exception("file processing failed", extra={"file_id": file_id})
            async with transaction(pool) as tx:
                await service.fail_file(tx, file_id, INTERNAL_FAILURE)
            return "failed"
        if done is None:
            return "busy"
        if done:
            return "done"
        races, one_by_one = 0, False


async def _chunk(
    pool: Any, policy: IngestPolicy, file_id: str, chunk_size: int, *, one_by_one: bool
) -> bool | None:
    """One chunk in one transaction: True when it was the last, None when another worker
    holds the file."""
    async with transaction(pool) as tx:
        work = await service.claim_file(tx, file_id)
        if work is None:
            return None
        parsed = list(islice(parse(work.format, work.content, work.next_line), chunk_size + 1))
        done = len(parsed) <= chunk_size
        chunk = parsed[:chunk_size]
        lines = [(n, e) for n, e in chunk if not isinstance(e, LineError)]
        source = Source(operator_id=work.operator_id)
        if one_by_one:
            found = await _one_by_one(tx, source, lines, policy, file_id)
        else:
            found = await service.ingest(tx, source, [e for _, e in lines], policy=policy)
        verdicts = iter(found)
        out: list[tuple[int, Verdict]] = [
            (n, line_verdict(e) if isinstance(e, LineError) else next(verdicts)) for n, e in chunk
        ]
        last = chunk[-1][0] if chunk else work.next_line
        await service.record_file_progress(tx, file_id, last, out, done=done)
    return done


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
                [verdict] = await service.ingest(tx, source, [event], policy=policy)
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
