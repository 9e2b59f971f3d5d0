"""The alert through the Celery task path end to end: messages sent after commit to the real
broker, a real worker (`tanpuhui worker`) evaluating the budgets, raising each alert once,
POSTing it to a local webhook (the first delivery refused: retried with back-off), and clearing
it when the projection falls back."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from enterprises import alerts, tasks
from enterprises.alerts import BudgetIn
from kit.db import transaction
from kit.tasks import enqueue_after_commit
from server.worker import create_celery
from tests.enterprises.accounting_factories import enterprises, month_rows, recorded
from tests.enterprises.webhook_receiver import Receiver
from tests.server.processes import worker

SECRET = "alerts-webhook-secret-0123456789"


@pytest.fixture
def celery_app(settings: Any) -> Any:
    return create_celery(settings)


async def _until(check: Any, what: str, w: Any, timeout: float = 90.0) -> None:
    for _ in range(int(timeout * 10)):
        if await check():
            return
        if w.proc.poll() is not None:
            break
        await asyncio.sleep(0.1)
    raise AssertionError(f"no {what}:\n{w.stderr()[-4000:]}")


async def test_an_alert_is_raised_once_delivered_and_cleared_by_a_real_worker(
    settings: Any, pool: Any, celery_app: Any
):
    zone = ZoneInfo(settings.timezone)
    today = datetime.now(UTC).astimezone(zone)
    month = date(today.year, today.month, 1)
    nxt = alerts.period_end("month", month)
    [eid] = await enterprises(pool, 1)
    async with transaction(pool) as tx:
        await alerts.set_budget(
            tx,
            eid,
            BudgetIn(metric="carbon_kg", period_kind="month", period_start=month, amount=1_000.0),
            set_by="administrator",
        )
    # This month's use is already over the whole month's budget: any run-rate projects beyond.
    await recorded(
        pool,
        month_rows(eid, month, {"electricity": 10_000.0}),
        start=month,
        end=nxt,
        enterprise_ids=[eid],
    )

    async def standing() -> list[alerts.Alert]:
        async with pool.acquire() as conn:
            return await alerts.alerts(conn, eid)

    with Receiver(statuses=[500]) as hook:
        env = {
            "TANPUHUI_ENTERPRISES_ALERT_WEBHOOK_URL": hook.url,
            "TANPUHUI_ENTERPRISES_ALERT_WEBHOOK_SECRET": SECRET,
            "TANPUHUI_ENTERPRISES_ALERT_WEBHOOK_BACKOFF_S": "0.5",
        }
        with worker(settings, **env) as w:
            # twice: the second evaluation finds the alerts standing and raises nothing
            for _ in range(2):
                async with transaction(pool) as tx:
                    enqueue_after_commit(tx, tasks.evaluate_alerts)

            async def delivered_raised() -> bool:
                a = await standing()
                return len(a) == 2 and all(x.delivered for x in a)

            await _until(delivered_raised, "raised alerts delivered", w)
            raised = await standing()
            assert [(a.threshold, a.state) for a in raised] == [(0.9, "raised"), (1.0, "raised")]
            # one refused attempt (500), retried, then one delivery per alert
            assert len(hook.received) == 3, hook.received
            events = [json.loads(r.body) for r in hook.received]
            assert events[0] == events[1] or events[0] == events[2]
            assert sorted((e["alert_id"], e["state"]) for e in events[1:]) == [
                (raised[0].id, "raised"),
                (raised[1].id, "raised"),
            ]
            for r in hook.received:
                assert r.headers["x-tanpuhui-signature"] == alerts.sign(
                    SECRET, r.headers["x-tanpuhui-timestamp"], r.body
                )
            # the month's use falls back to nothing: the projection clears both
            await recorded(pool, [], start=month, end=nxt, enterprise_ids=[eid])
            async with transaction(pool) as tx:
                enqueue_after_commit(tx, tasks.evaluate_alerts)

            async def delivered_cleared() -> bool:
                a = await standing()
                return all(x.state == "cleared" and x.delivered for x in a)

            await _until(delivered_cleared, "cleared alerts delivered", w)
            assert len(hook.received) == 5
            assert sorted(json.loads(r.body)["state"] for r in hook.received[3:]) == [
                "cleared",
                "cleared",
            ]
            assert "enterprises.deliver_alert" in w.stderr()
        assert [a.id for a in await standing()] == [a.id for a in raised]
