"""Celery tasks of employee commuting programmes (enterprises.commuting).

- ``enterprises.commuting_bonuses()`` (beat, every 5 minutes): one bonus run per programme, each
  in its own transaction (a programme's row is locked for its run, so two workers never pay one
  programme at once), set-wise inside the programme: the members' trips since the last run read
  in one query, the paid ones in one, every bonus transfer in one ledger write.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from celery import shared_task

from enterprises import commuting
from kit.db import transaction
from kit.tasks import WorkerContext, run_async
from points.schemas import PointsPolicy

BEAT: dict[str, dict[str, Any]] = {
    "enterprises.commuting_bonuses": {"task": "enterprises.commuting_bonuses", "schedule": 300.0},
}


async def bonuses_body(pool: Any, settings: Any) -> dict[str, int]:
    """Run every programme's bonuses: how many runs paid, were underfunded, had nothing."""
    policy = PointsPolicy.from_settings(settings.points, timezone=settings.timezone)
    overlap = timedelta(seconds=settings.enterprises.commuting_bonus_overlap_s)
    async with pool.acquire() as conn:
        ids = await commuting.programme_ids(conn)
    out = {"paid": 0, "underfunded": 0, "nothing": 0}
    for programme_id in ids:
        async with transaction(pool) as tx:
            run = await commuting.pay_bonuses(
                tx, policy, programme_id, region_code=settings.region_code, overlap=overlap
            )
        out[run.status if run else "nothing"] += 1
    return out


@shared_task(name="enterprises.commuting_bonuses")  # type: ignore[untyped-decorator]
def commuting_bonuses() -> int:
    """Pay the commuting bonuses of every programme; how many programmes were paid (0, the
    quiet tick, when none was)."""

    async def body(ctx: WorkerContext) -> dict[str, int]:
        return await bonuses_body(ctx.pool, ctx.settings)

    return run_async(body)["paid"]
