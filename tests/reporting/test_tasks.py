"""The periodic jobs' bodies, as the worker runs them (its context: settings, pool, Redis)."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

from kit.tasks import WorkerContext
from reporting import tasks
from reporting.reconcile import last_reconciliation
from tests.behaviours.factories import now
from tests.reporting.factories import operators, travel


async def test_the_refresh_and_reconcile_jobs(pool, redis, settings):
    zone = ZoneInfo(settings.timezone)
    start = (now() - timedelta(days=1)).astimezone(zone).replace(hour=9, minute=0, second=0)
    await operators(pool)
    await travel(pool, settings, 2, start=start, modes=("metro",))
    ctx = WorkerContext(settings=settings, pool=pool, redis=redis)
    done = await tasks.refresh_body(ctx)
    assert done["travel_day"] == 5 and done["travel_month"] == 5 and "travel_year" not in done
    assert "travel_year" in await tasks.refresh_body(ctx, years=True)
    assert await tasks.reconcile_body(ctx) is True
    async with pool.acquire() as conn:
        run = await last_reconciliation(conn)
    assert run is not None and run.ok and run.last_day == now().astimezone(zone).date()
    assert set(tasks.BEAT) == {
        "reporting.refresh",
        "reporting.refresh_years",
        "reporting.reconcile",
    }
