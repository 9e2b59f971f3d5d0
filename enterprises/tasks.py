"""Celery tasks of the enterprises' accounting: recomputing what late data touched, evaluating
the budgets' alerts, delivering alerts to the webhook.

- ``enterprises.recompute(enterprise_id, month)``: one enterprise's month recomputed from the
  data side's activity under the default basis, then its alerts evaluated (for the data side
  or the API to enqueue after a commit that changed that month).
- ``enterprises.recompute_touched()`` (beat, every minute): drains what the data side recorded
  as touched (``enterprises.energy.take_touched``), recomputes those months set-wise, evaluates
  their enterprises' alerts. Nothing depends on a single message: a lost one is picked up here.
- ``enterprises.evaluate_alerts()`` (beat, every 15 minutes): every budget of the current
  periods; a run-rate projection moves with time even without new data, so alerts clear (or
  rise) on their own.
- ``enterprises.deliver_alert(alert_id)``: POSTs an alert's state change to the webhook,
  retried with doubling back-off (``alert_webhook_backoff_s``, ``alert_webhook_attempts``);
  ``enterprises.resume_alerts()`` (beat, every 5 minutes) re-dispatches undelivered ones.

Each task's body is an ``async`` function of the pool and the composed settings, so tests run it
on their own loop as the worker runs it on its own.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

from celery import shared_task

from enterprises import accounting, alerts, energy
from enterprises.alerts import period_end
from enterprises.factors import Basis
from kit.db import Tx, transaction
from kit.tasks import WorkerContext, enqueue_after_commit, run_async

BEAT: dict[str, dict[str, Any]] = {
    "enterprises.recompute_touched": {"task": "enterprises.recompute_touched", "schedule": 60.0},
    "enterprises.evaluate_alerts": {"task": "enterprises.evaluate_alerts", "schedule": 900.0},
    "enterprises.resume_alerts": {"task": "enterprises.resume_alerts", "schedule": 300.0},
}

# Pairs drained per transaction by recompute_touched.
TOUCHED_CHUNK = 1000


def dispatch(tx: Tx, settings: Any, alert_ids: Sequence[int]) -> None:
    """Send each changed alert to the webhook once ``tx`` commits (when one is configured)."""
    if settings.enterprises.alert_webhook_url:
        for alert_id in alert_ids:
            enqueue_after_commit(tx, deliver_alert, alert_id)


async def recompute_months(
    tx: Tx, settings: Any, pairs: Sequence[tuple[uuid.UUID, date]]
) -> list[int]:
    """Recompute the (enterprise, month) pairs (one recompute per distinct month, for all its
    enterprises), evaluate those enterprises' alerts; the alerts whose state changed."""
    by_month: dict[date, set[uuid.UUID]] = defaultdict(set)
    for eid, month in pairs:
        by_month[date(month.year, month.month, 1)].add(eid)
    basis = Basis.of(settings.enterprises)
    for month, ids in sorted(by_month.items()):
        await accounting.recompute(
            tx,
            start=month,
            end=period_end("month", month),
            basis=basis,
            enterprise_ids=sorted(ids, key=str),
        )
    if not by_month:
        return []
    changed = await alerts.evaluate(
        tx,
        settings=settings.enterprises,
        zone=ZoneInfo(settings.timezone),
        enterprise_ids=sorted({e for ids in by_month.values() for e in ids}, key=str),
        months=sorted(by_month),
    )
    dispatch(tx, settings, changed)
    return changed


async def recompute_body(pool: Any, settings: Any, enterprise_id: str, month: str) -> int:
    async with transaction(pool) as tx:
        changed = await recompute_months(
            tx, settings, [(uuid.UUID(enterprise_id), date.fromisoformat(month))]
        )
    return len(changed)


async def recompute_touched_body(pool: Any, settings: Any) -> int:
    """Drain the touched months chunk by chunk, each chunk in its own transaction."""
    done = 0
    while True:
        async with transaction(pool) as tx:
            touched = await energy.take_touched(tx, limit=TOUCHED_CHUNK)
            await recompute_months(tx, settings, [(t.enterprise_id, t.month) for t in touched])
        done += len(touched)
        if len(touched) < TOUCHED_CHUNK:
            return done


async def evaluate_body(pool: Any, settings: Any) -> int:
    async with transaction(pool) as tx:
        changed = await alerts.evaluate(
            tx, settings=settings.enterprises, zone=ZoneInfo(settings.timezone)
        )
        dispatch(tx, settings, changed)
    return len(changed)


@shared_task(name="enterprises.recompute")  # type: ignore[untyped-decorator]
def recompute(enterprise_id: str, month: str) -> int:
    """Recompute one enterprise's month (``YYYY-MM-01``) and evaluate its alerts."""

    async def body(ctx: WorkerContext) -> int:
        return await recompute_body(ctx.pool, ctx.settings, enterprise_id, month)

    return run_async(body)


@shared_task(name="enterprises.recompute_touched")  # type: ignore[untyped-decorator]
def recompute_touched() -> int:
    """Recompute every month the data side recorded as touched."""

    async def body(ctx: WorkerContext) -> int:
        return await recompute_touched_body(ctx.pool, ctx.settings)

    return run_async(body)


@shared_task(name="enterprises.evaluate_alerts")  # type: ignore[untyped-decorator]
def evaluate_alerts() -> int:
    """Evaluate every budget of the current periods."""

    async def body(ctx: WorkerContext) -> int:
        return await evaluate_body(ctx.pool, ctx.settings)

    return run_async(body)


@shared_task(name="enterprises.deliver_alert", bind=True)  # type: ignore[untyped-decorator]
def deliver_alert(self: Any, alert_id: int) -> str:
    """POST one alert's state to the webhook; retried with doubling back-off on failure."""

    async def body(ctx: WorkerContext) -> tuple[str, float, int]:
        s = ctx.settings.enterprises
        result = await alerts.deliver(ctx.pool, s, alert_id)
        return result, s.alert_webhook_backoff_s, s.alert_webhook_attempts

    result, backoff, attempts = run_async(body)
    retries = self.request.retries or 0
    if result == "failed" and retries + 1 < attempts:
        raise self.retry(countdown=backoff * 2**retries, max_retries=attempts - 1)
    return str(result)


@shared_task(name="enterprises.resume_alerts")  # type: ignore[untyped-decorator]
def resume_alerts() -> int:
    """Re-dispatch the alerts whose current state never reached the webhook."""

    async def body(ctx: WorkerContext) -> list[int]:
        return await alerts.undelivered(ctx.pool, ctx.settings.enterprises)

    ids = run_async(body)
    for alert_id in ids:
        deliver_alert.delay(alert_id)
    return len(ids)
