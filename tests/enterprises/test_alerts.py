"""Budgets and alerts, their task bodies run on the test's loop (as the worker runs them on its
own): the run-rate projection, an alert raised once per threshold and period and cleared when
the projection falls back, raised again as the same row, two evaluations racing, and the
webhook (HMAC-signed, a failure recorded and retried). tests/enterprises/test_alerts_worker.py
runs the same path through a real Celery worker."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
import pytest

from enterprises import alerts, tasks
from enterprises.alerts import BudgetIn
from enterprises.settings import EnterprisesSettings
from kit.db import transaction
from kit.errors import InvalidInput
from tests.enterprises.accounting_factories import enterprises, month_rows, recorded
from tests.enterprises.webhook_receiver import Receiver

ZONE = ZoneInfo("Asia/Shanghai")
MAY = date(2026, 5, 1)
JUNE = date(2026, 6, 1)
GRID = 0.5306  # 2026 uses 2023's national factor (the latest published)
SETTINGS = EnterprisesSettings()  # thresholds 90 % and 100 %
SECRET = "alerts-webhook-secret-0123456789"


def local(day: int, hour: int = 0) -> datetime:
    return datetime(2026, 5, day, hour, tzinfo=ZONE)


async def _use(pool: Any, eid: Any, kg: float) -> None:
    """May's recorded emissions of ``eid`` become ``kg`` (grid electricity only)."""
    await recorded(
        pool,
        month_rows(eid, MAY, {"electricity": kg / GRID}) if kg else [],
        start=MAY,
        end=JUNE,
        enterprise_ids=[eid],
    )


async def _budget(pool: Any, eid: Any, amount: float, **kw: Any) -> alerts.Budget:
    b = BudgetIn(
        metric=kw.pop("metric", "carbon_kg"),
        period_kind=kw.pop("period_kind", "month"),
        period_start=kw.pop("period_start", MAY),
        amount=amount,
    )
    async with transaction(pool) as tx:
        return await alerts.set_budget(tx, eid, b, set_by=kw.pop("set_by", "enterprise"))


async def _evaluate(
    pool: Any, now: datetime, settings: EnterprisesSettings = SETTINGS
) -> list[int]:
    async with transaction(pool) as tx:
        return await alerts.evaluate(tx, settings=settings, zone=ZONE, now=now)


async def _alerts(pool: Any, eid: Any) -> list[alerts.Alert]:
    async with pool.acquire() as conn:
        return await alerts.alerts(conn, eid)


class TestProjection:
    def test_the_run_rate_of_a_period(self):
        # 10 of May's 31 days elapsed: 100 used projects 310.
        assert alerts.projection(100.0, "month", MAY, local(11), ZONE) == pytest.approx(310.0)
        assert alerts.projection(100.0, "month", MAY, local(11).astimezone(UTC), ZONE) == (
            pytest.approx(310.0)
        )
        assert (
            alerts.projection(100.0, "month", MAY, datetime(2026, 6, 2, tzinfo=ZONE), ZONE) == 100.0
        )
        assert (
            alerts.projection(100.0, "month", MAY, datetime(2026, 4, 30, tzinfo=ZONE), ZONE) == 0.0
        )
        # a year: 73 of 365 days elapsed (1 Jan to 15 Mar), 20 used projects 100
        jan = date(2026, 1, 1)
        assert alerts.projection(20.0, "year", jan, datetime(2026, 3, 15, tzinfo=ZONE), ZONE) == (
            pytest.approx(100.0)
        )


class TestBudgets:
    async def test_a_budget_is_set_replaced_and_listed(self, pool: Any):
        [eid] = await enterprises(pool, 1)
        await _budget(pool, eid, 1000.0)
        b = await _budget(pool, eid, 2000.0, set_by="administrator")
        await _budget(
            pool,
            eid,
            50_000.0,
            metric="energy_kgce",
            period_kind="year",
            period_start=date(2026, 1, 1),
        )
        assert (b.amount, b.set_by) == (2000.0, "administrator")
        async with pool.acquire() as conn:
            listed = await alerts.budgets(conn, eid)
        assert [(x.metric, x.period_kind, x.amount) for x in listed] == [
            ("carbon_kg", "month", 2000.0),
            ("energy_kgce", "year", 50_000.0),
        ]

    async def test_a_period_must_start_on_its_first_day(self, pool: Any):
        [eid] = await enterprises(pool, 1)
        for kind, start in (("month", date(2026, 5, 2)), ("year", date(2026, 3, 1))):
            with pytest.raises(InvalidInput) as refused:
                await _budget(pool, eid, 10.0, period_kind=kind, period_start=start)
            assert refused.value.code == "validation_failed"
            assert refused.value.errors and refused.value.errors[0].path == "period_start"
        with pytest.raises(msgspec.ValidationError):
            msgspec.convert(
                {
                    "metric": "carbon_kg",
                    "period_kind": "month",
                    "period_start": "2026-05-01",
                    "amount": -1,
                },
                BudgetIn,
            )


class TestAlerts:
    async def test_raised_once_per_threshold_and_period_then_cleared(self, pool: Any):
        [eid, other] = await enterprises(pool, 2)
        await _budget(pool, eid, 10_000.0)
        await _use(pool, eid, 3_000.0)
        await _use(pool, other, 50_000.0)  # no budget: never an alert
        # 11 May 00:00: 10 of 31 days, 3,000 kg projects 9,300 kg: 93 %, over 90 % only.
        changed = await _evaluate(pool, local(11))
        [a90] = await _alerts(pool, eid)
        assert changed == [a90.id]
        assert (a90.threshold, a90.state, a90.budget) == (0.9, "raised", 10_000.0)
        assert a90.actual == pytest.approx(3_000.0) and a90.projected == pytest.approx(9_300.0)
        assert await _alerts(pool, other) == []
        # evaluated again (the same instant, then an hour later): nothing new is raised
        assert await _evaluate(pool, local(11)) == []
        assert await _evaluate(pool, local(11, 1)) == []
        assert [a.id for a in await _alerts(pool, eid)] == [a90.id]
        # more use: 3,300 kg projects 10,230 kg, over 100 % too: one more alert
        await _use(pool, eid, 3_300.0)
        changed = await _evaluate(pool, local(11))
        standing = await _alerts(pool, eid)
        assert [(a.threshold, a.state) for a in standing] == [(0.9, "raised"), (1.0, "raised")]
        assert changed == [standing[1].id]
        # 21 May: 20 of 31 days, 3,300 kg projects 5,115 kg: both clear (the rows stay)
        changed = await _evaluate(pool, local(21))
        cleared = await _alerts(pool, eid)
        assert sorted(changed) == sorted(a.id for a in standing)
        assert [(a.state, a.cleared_at is not None) for a in cleared] == [("cleared", True)] * 2
        async with pool.acquire() as conn:
            assert await alerts.alerts(conn, eid, raised_only=True) == []
        assert await _evaluate(pool, local(22)) == []  # cleared stays cleared
        # crossing again raises the same rows again
        await _use(pool, eid, 9_500.0)
        changed = await _evaluate(pool, local(22))
        again = await _alerts(pool, eid)
        assert sorted(changed) == sorted(a.id for a in standing)
        assert [(a.id, a.state, a.cleared_at) for a in again] == [
            (a.id, "raised", None) for a in standing
        ]

    async def test_an_energy_budget_of_a_year(self, pool: Any):
        [eid] = await enterprises(pool, 1)
        await _budget(
            pool,
            eid,
            100_000.0,
            metric="energy_kgce",
            period_kind="year",
            period_start=date(2026, 1, 1),
        )
        # May's 200,000 kWh x 0.1229 = 24,580 kgce by 1 June: 151 of 365 days elapsed,
        # projecting 59,415 kgce: no alert; by 1 May (120 days) 0 was used before May.
        await recorded(pool, month_rows(eid, MAY, {"electricity": 200_000.0}), start=MAY, end=JUNE)
        assert await _evaluate(pool, datetime(2026, 6, 1, tzinfo=ZONE)) == []
        await recorded(
            pool,
            month_rows(eid, JUNE, {"electricity": 300_000.0}),
            start=JUNE,
            end=date(2026, 7, 1),
        )
        # + June's 36,870 kgce = 61,450 kgce by 15 June (165 days): 135,936 projected
        changed = await _evaluate(pool, datetime(2026, 6, 15, tzinfo=ZONE))
        assert len(changed) == 2
        [a90, a100] = await _alerts(pool, eid)
        assert a100.threshold == 1.0 and a100.state == "raised"
        assert a90.metric == "energy_kgce" and a90.projected == pytest.approx(61_450 * 365 / 165)

    async def test_two_evaluations_racing_raise_one_alert_per_threshold(self, pool: Any):
        ids = await enterprises(pool, 5)
        for eid in ids:
            await _budget(pool, eid, 1_000.0)
            await _use(pool, eid, 5_000.0)
        results = await asyncio.gather(*(_evaluate(pool, local(11)) for _ in range(4)))
        everything = [i for r in results for i in r]
        assert len(set(everything)) == 10
        for eid in ids:
            assert [a.threshold for a in await _alerts(pool, eid)] == [0.9, 1.0]

    async def test_recompute_after_late_data_evaluates_the_month(self, pool: Any, settings: Any):
        """The recompute task's body: the data side's activity of the month recomputed, then
        the month's budgets evaluated (here a May that is over: its use is its projection)."""
        from enterprises.energy_schemas import ReportLineIn
        from tests.enterprises.accounting_factories import monthly_report

        [eid] = await enterprises(pool, 1)
        await _budget(pool, eid, 1_000.0)
        await monthly_report(
            pool, eid, MAY, [ReportLineIn(kind="electricity", quantity=1_800.0, unit="kWh")]
        )
        assert await tasks.recompute_body(pool, settings, str(eid), MAY.isoformat()) == 1
        [a90] = await _alerts(pool, eid)
        assert a90.actual == pytest.approx(1_800 * GRID)  # 955 kg: 95.5 % of the budget


class TestWebhook:
    async def test_a_state_change_is_delivered_signed_and_retried_after_a_failure(self, pool: Any):
        [eid] = await enterprises(pool, 1)
        await _budget(pool, eid, 10_000.0)
        await _use(pool, eid, 3_000.0)
        [alert_id] = await _evaluate(pool, local(11))
        with Receiver(statuses=[503]) as hook:
            s = msgspec.structs.replace(
                SETTINGS, alert_webhook_url=hook.url, alert_webhook_secret=SECRET
            )
            assert await alerts.deliver(pool, s, alert_id) == "failed"
            assert await alerts.undelivered(pool, s) == [alert_id]
            assert await alerts.deliver(pool, s, alert_id) == "delivered"
            assert await alerts.deliver(pool, s, alert_id) == "nothing"  # delivered already
            assert await alerts.undelivered(pool, s) == []
            [first, second] = hook.received
        assert first.body == second.body
        assert first.headers["x-tanpuhui-delivery"] == second.headers["x-tanpuhui-delivery"]
        h = second.headers
        assert h["x-tanpuhui-event"] == "alert.raised"
        assert h["x-tanpuhui-signature"] == alerts.sign(
            SECRET, h["x-tanpuhui-timestamp"], second.body
        )
        assert h["x-tanpuhui-signature"] != alerts.sign(
            "another-secret-0123456789", h["x-tanpuhui-timestamp"], second.body
        )
        event = json.loads(second.body)
        assert (event["alert_id"], event["state"], event["threshold"]) == (alert_id, "raised", 0.9)
        assert event["enterprise_id"] == str(eid) and event["period_start"] == "2026-05-01"
        [a] = await _alerts(pool, eid)
        assert a.delivered
        # cleared: a new state, delivered again
        assert await _evaluate(pool, local(25)) == [alert_id]
        with Receiver() as hook:
            s = msgspec.structs.replace(
                SETTINGS, alert_webhook_url=hook.url, alert_webhook_secret=SECRET
            )
            assert await alerts.undelivered(pool, s) == [alert_id]
            assert await alerts.deliver(pool, s, alert_id) == "delivered"
            [cleared] = hook.received
        assert cleared.headers["x-tanpuhui-event"] == "alert.cleared"
        assert json.loads(cleared.body)["state"] == "cleared"

    async def test_without_a_webhook_nothing_is_sent(self, pool: Any):
        [eid] = await enterprises(pool, 1)
        await _budget(pool, eid, 10_000.0)
        await _use(pool, eid, 3_000.0)
        [alert_id] = await _evaluate(pool, local(11))
        assert await alerts.deliver(pool, SETTINGS, alert_id) == "not_configured"
        assert await alerts.undelivered(pool, SETTINGS) == []
