"""Celery tasks of behaviours: operators' daily files (task names kept from when they lived in
integrations/, so messages already queued still run)."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from behaviours import files
from behaviours.pipeline import IngestPolicy
from kit.tasks import WorkerContext, run_async

BEAT: dict[str, dict[str, Any]] = {
    "integrations.resume_files": {"task": "integrations.resume_files", "schedule": 300.0},
}


_policy: tuple[Any, IngestPolicy] | None = None


def policy_of(settings: Any) -> IngestPolicy:
    """This worker process's ingestion policy, built once from the composed settings the
    worker runs with (the ``ingest`` and ``points`` sections, the region code and the
    programme's time zone)."""
    global _policy
    if _policy is None or _policy[0] is not settings:
        _policy = (
            settings,
            IngestPolicy.build(
                settings.ingest,
                region_code=settings.region_code,
                points=settings.points,
                timezone=settings.timezone,
            ),
        )
    return _policy[1]


@shared_task(name="integrations.process_file")  # type: ignore[untyped-decorator]
def process_file(file_id: str) -> str:
    """Process an uploaded operator file (NDJSON or CSV) to its end, chunk by chunk from its
    durable cursor (a worker that died mid-file is resumed at the first chunk not done)."""

    async def body(ctx: WorkerContext) -> str:
        return await files.process_file(ctx.pool, policy_of(ctx.settings), file_id)

    return run_async(body)


@shared_task(name="integrations.resume_files")  # type: ignore[untyped-decorator]
def resume_files() -> int:
    """Re-dispatch files left queued or half-done (a lost message, a worker that died)."""

    async def body(ctx: WorkerContext) -> list[str]:
        async with ctx.pool.acquire() as conn:
            return await files.stalled_files(conn)

    ids = run_async(body)
    for file_id in ids:
        process_file.delay(file_id)
    return len(ids)
