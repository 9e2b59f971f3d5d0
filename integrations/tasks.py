"""Celery tasks of the integrations: operators' daily files."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from server.worker import WorkerContext, run_async

BEAT: dict[str, dict[str, Any]] = {
    "integrations.resume_files": {"task": "integrations.resume_files", "schedule": 300.0},
}


@shared_task(name="integrations.process_file")  # type: ignore[untyped-decorator]
def process_file(file_id: str) -> str:
    """Process an uploaded operator file (NDJSON or CSV) to its end."""
    from integrations.operator_files import process_file as run

    async def body(ctx: WorkerContext) -> str:
        return await run(ctx.pool, ctx.settings, file_id)

    return run_async(body)


@shared_task(name="integrations.resume_files")  # type: ignore[untyped-decorator]
def resume_files() -> int:
    """Re-dispatch files left queued or half-done (a lost message, a worker that died)."""
    from behaviours.service import stalled_files

    async def body(ctx: WorkerContext) -> list[str]:
        async with ctx.pool.acquire() as conn:
            return await stalled_files(conn)

    ids = run_async(body)
    for file_id in ids:
        process_file.delay(file_id)
    return len(ids)
