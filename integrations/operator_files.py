"""Processing an operator's uploaded daily file: parse, then ingest chunk by chunk, each chunk
in its own transaction with its verdicts and resume point (a restarted worker continues)."""

from __future__ import annotations

import logging
from itertools import islice
from typing import Any

from behaviours import service
from behaviours.errors import ConcurrentIngest
from behaviours.events import CanonicalEvent, Source, Verdict
from integrations.operator_records import LineError, parse
from server.db import TRANSIENT_ERRORS, transaction
from server.settings import Settings

log = logging.getLogger("tanpuhui.integrations.files")


async def process_file(pool: Any, settings: Settings, file_id: str) -> str:
    """Process ``file_id`` to the end; returns its final status (or "busy" if another worker
    holds it)."""
    chunk_size = settings.ingest.file_chunk_records
    while True:
        for attempt in range(3):
            try:
                async with transaction(pool) as tx:
                    work = await service.claim_file(tx, file_id)
                    if work is None:
                        return "busy"
                    parsed = list(
                        islice(parse(work.format, work.content, work.next_line), chunk_size + 1)
                    )
                    done = len(parsed) <= chunk_size
                    chunk = parsed[:chunk_size]
                    events: list[CanonicalEvent] = [
                        e for _, e in chunk if not isinstance(e, LineError)
                    ]
                    verdicts = iter(
                        await service.ingest(
                            tx, Source(operator_id=work.operator_id), events, settings=settings
                        )
                    )
                    out: list[tuple[int, Verdict]] = [
                        (n, e.verdict() if isinstance(e, LineError) else next(verdicts))
                        for n, e in chunk
                    ]
                    last = chunk[-1][0] if chunk else work.next_line
                    await service.record_file_progress(tx, file_id, last, out, done=done)
                break
            except ConcurrentIngest:
                if attempt == 2:
                    raise
            except TRANSIENT_ERRORS:
                # "Not now" (timeout, deadlock, connection): the chunk rolled back whole and the
                # file stays resumable; the periodic resume task picks it up again.
                log.warning("file processing interrupted", extra={"file_id": file_id})
                raise
            except Exception as exc:
                log.exception("file processing failed", extra={"file_id": file_id})
                async with transaction(pool) as tx:
                    await service.fail_file(tx, file_id, f"{type(exc).__name__}: {exc}"[:500])
                return "failed"
        if done:
            return "done"
