"""Periodic rewards work: expire unconfirmed rewards at the end of their validity, and retry
the webhooks that are due. (The delivery task itself, ``rewards.deliver_webhook``, is in
``rewards.webhooks``, next to the outbox that sends it.)"""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task

from kit.db import transaction
from kit.tasks import WorkerContext, run_async
from rewards import redemptions, webhooks
from rewards.settings import config_of

BEAT: dict[str, dict[str, Any]] = {
    "rewards.expire_rewards": {"task": "rewards.expire_rewards", "schedule": 60.0},
    "rewards.retry_webhooks": {"task": "rewards.retry_webhooks", "schedule": 15.0},
}

_CHUNK = 1000
log = logging.getLogger("tanpuhui.rewards")


async def expire_rewards_body(ctx: WorkerContext) -> int:
    cfg = config_of(ctx.settings)
    total = 0
    while True:
        async with transaction(ctx.pool) as tx:
            n = await redemptions.expire(tx, cfg, limit=_CHUNK)
        total += n
        if n < _CHUNK:
            if total:
                log.info("rewards expired", extra={"rewards": total})
            return total


@shared_task(name="rewards.expire_rewards")  # type: ignore[untyped-decorator]
def expire_rewards() -> int:
    """Expire issued rewards past their validity: hold voided, stock released."""
    return run_async(expire_rewards_body)


@shared_task(name="rewards.retry_webhooks")  # type: ignore[untyped-decorator]
def retry_webhooks() -> int:
    """Re-dispatch webhook events whose next attempt is due (failures, lost messages)."""

    async def body(ctx: WorkerContext) -> list[str]:
        return await webhooks.due(ctx.pool)

    ids = run_async(body)
    for event_id in ids:
        webhooks.deliver_webhook.delay(event_id)
    return len(ids)
