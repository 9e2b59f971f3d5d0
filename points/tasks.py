"""Periodic ledger work: void timed-out holds, expire lots, seal the journal."""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task

from kit.db import transaction
from kit.tasks import WorkerContext, run_async
from points import journal, service
from points.schemas import PointsPolicy

BEAT: dict[str, dict[str, Any]] = {
    "points.seal_journal": {"task": "points.seal_journal", "schedule": 2.0},
    "points.void_timed_out_holds": {"task": "points.void_timed_out_holds", "schedule": 30.0},
    "points.expire_lots": {"task": "points.expire_lots", "schedule": 3600.0},
}

_CHUNK = 1000

# Ticks with nothing to do log nothing (their Celery lines go to DEBUG: server.worker); work
# done is one line each.
log = logging.getLogger("tanpuhui.points")


async def seal_journal_body(ctx: WorkerContext) -> int:
    total = 0
    while True:
        async with transaction(ctx.pool) as tx:
            n = await journal.seal(tx)
        total += n
        if n == 0:
            if total:
                log.info("journal sealed", extra={"blocks": total})
            return total


async def void_timed_out_holds_body(ctx: WorkerContext) -> int:
    policy = PointsPolicy.from_settings(ctx.settings.points, timezone=ctx.settings.timezone)
    total = 0
    while True:
        async with transaction(ctx.pool) as tx:
            n = await service.void_timed_out_holds(tx, policy, limit=_CHUNK)
        total += n
        if n < _CHUNK:
            if total:
                log.info("timed-out holds voided", extra={"holds": total})
            return total


async def expire_lots_body(ctx: WorkerContext) -> int:
    policy = PointsPolicy.from_settings(ctx.settings.points, timezone=ctx.settings.timezone)
    total = 0
    while True:
        async with transaction(ctx.pool) as tx:
            n = await service.expire_lots(
                tx, policy, region_code=ctx.settings.region_code, limit=_CHUNK
            )
        total += n
        if n == 0:
            if total:
                log.info("expired points posted", extra={"residents": total})
            return total


@shared_task(name="points.seal_journal")  # type: ignore[untyped-decorator]
def seal_journal() -> int:
    """Seal committed batches into the hash chain."""
    return run_async(seal_journal_body)


@shared_task(name="points.void_timed_out_holds")  # type: ignore[untyped-decorator]
def void_timed_out_holds() -> int:
    """Void every hold past TANPUHUI_POINTS_HOLD_TIMEOUT_S."""
    return run_async(void_timed_out_holds_body)


@shared_task(name="points.expire_lots")  # type: ignore[untyped-decorator]
def expire_lots() -> int:
    """Post expired, unspent points to the system expiry account."""
    return run_async(expire_lots_body)
