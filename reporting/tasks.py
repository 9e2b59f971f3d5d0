"""Periodic reporting work: refresh the rollups (every ``refresh_interval_s``: the window's
days and months, the ledger's days, the enterprises' years; once a day the year grain too) and
reconcile them with the ledger (daily). Each run is one transaction: the reports see a refresh
whole or not at all."""

from __future__ import annotations

import logging
from typing import Any
from zoneinfo import ZoneInfo

from celery import shared_task

from kit.db import transaction
from kit.tasks import WorkerContext, run_async
from reporting import reconcile, rollups
from reporting.settings import ReportingSettings

# The schedule reads the defaults (Celery's beat is built before settings are read by tasks);
# TANPUHUI_REPORTING_REFRESH_INTERVAL_S changes the interval of the worker's runs.
BEAT: dict[str, dict[str, Any]] = {
    "reporting.refresh": {
        "task": "reporting.refresh",
        "schedule": float(ReportingSettings().refresh_interval_s),
    },
    "reporting.refresh_years": {"task": "reporting.refresh_years", "schedule": 86400.0},
    "reporting.reconcile": {"task": "reporting.reconcile", "schedule": 86400.0},
}

log = logging.getLogger("tanpuhui.reporting")


async def refresh_body(ctx: WorkerContext, *, years: bool = False) -> dict[str, int]:
    s = ctx.settings
    async with transaction(ctx.pool) as tx:
        out = await rollups.refresh_window(
            tx, timezone=s.timezone, settings=s.reporting, ent=s.enterprises, years=years
        )
    log.info("reporting rollups refreshed", extra={"rows": sum(out.values())})
    return out


async def reconcile_body(ctx: WorkerContext) -> bool:
    s = ctx.settings
    last = rollups.today(ZoneInfo(s.timezone))
    first, last = reconcile.window(last, s.reporting.refresh_days)
    async with transaction(ctx.pool) as tx:
        run = await reconcile.reconcile(tx, first, last, timezone=s.timezone)
    return run.ok


@shared_task(name="reporting.refresh")  # type: ignore[untyped-decorator]
def refresh() -> dict[str, int]:
    """Recompute the rollups of the last days (day and month grains)."""
    return run_async(refresh_body)


@shared_task(name="reporting.refresh_years")  # type: ignore[untyped-decorator]
def refresh_years() -> dict[str, int]:
    """The same, with the year grain (distinct participants of the whole year)."""

    async def body(ctx: WorkerContext) -> dict[str, int]:
        return await refresh_body(ctx, years=True)

    return run_async(body)


@shared_task(name="reporting.reconcile")  # type: ignore[untyped-decorator]
def reconcile_task() -> bool:
    """Check the rollups against the owners' figures and the ledger; store the run."""
    return run_async(reconcile_body)
