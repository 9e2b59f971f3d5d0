"""Budgets and alerts: an enterprise's monthly or annual energy (kgce) and carbon (kg CO2)
budgets, set by the enterprise or the programme's administrator, and the alerts raised when
the current period's run-rate projects beyond a warning value.

The projection of a period that has begun is its use so far (the recorded emissions or energy
of its months, under the programme's default basis) divided by the elapsed share of the
period, in the programme's time zone; a period that has ended projects what it used. An alert
is raised once per budget, threshold (``alert_thresholds``, e.g. 90 % and 100 %) and period:
``enterprise_alerts``' unique key decides, so two evaluations racing raise one row. It clears
(the row stays, ``state`` cleared) when the projection falls back under the threshold, and is
raised again, the same row, if it crosses once more. Each state change is POSTed to the
configured webhook after commit by the task ``enterprises.deliver_alert`` (HMAC-SHA256 signed,
retried with doubling back-off; ``enterprises.resume_alerts`` re-sends what was never
delivered).

The functions others call:

    async def set_budget(tx, enterprise_id: UUID, budget: BudgetIn, *,
                         set_by: "enterprise" | "administrator") -> Budget
    async def budgets(conn, enterprise_id: UUID) -> list[Budget]
    async def alerts(conn, enterprise_id: UUID, *, raised_only: bool = False) -> list[Alert]
    async def evaluate(tx, *, settings, zone: ZoneInfo, now: datetime | None = None,
                       enterprise_ids=None, months=None) -> list[int]   # changed alert ids

The webhook's request: ``POST`` of the alert as JSON, with ``X-Tanpuhui-Event``
(``alert.raised`` | ``alert.cleared``), ``X-Tanpuhui-Delivery`` (the same for every retry of
one state change), ``X-Tanpuhui-Timestamp`` (Unix seconds) and ``X-Tanpuhui-Signature``: hex
HMAC-SHA256 under the shared secret of ``TIMESTAMP + "." + body``. Any 2xx is delivered.
"""

from __future__ import annotations

import hashlib
import hmac
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

import httpx
import msgspec
from msgspec import Meta, Struct

from enterprises import accounting_repository as repo
from enterprises.factors import Basis
from enterprises.settings import EnterprisesSettings
from kit.db import Tx
from kit.errors import FieldError, InvalidInput

Metric = Literal["energy_kgce", "carbon_kg"]
PeriodKind = Literal["month", "year"]
SetBy = Literal["enterprise", "administrator"]
State = Literal["raised", "cleared"]


class BudgetIn(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    metric: Metric
    period_kind: PeriodKind
    period_start: date  # the first day of the month (of January for a year)
    amount: Annotated[float, Meta(gt=0, lt=1e15)]  # kgce or kg CO2


class Budget(Struct, frozen=True, kw_only=True):
    enterprise_id: uuid.UUID
    metric: Metric
    period_kind: PeriodKind
    period_start: date
    amount: float
    set_by: SetBy
    updated_at: datetime


class Alert(Struct, frozen=True, kw_only=True):
    id: int
    enterprise_id: uuid.UUID
    metric: Metric
    period_kind: PeriodKind
    period_start: date
    threshold: float  # fraction of the budget
    budget: float
    actual: float  # used so far when last evaluated
    projected: float  # the run-rate's projection for the whole period
    state: State
    raised_at: datetime
    cleared_at: datetime | None
    changed_at: datetime
    delivered: bool  # the current state reached the webhook


def period_end(kind: str, start: date) -> date:
    if kind == "month":
        return date(start.year + start.month // 12, start.month % 12 + 1, 1)
    return date(start.year + 1, 1, 1)


def budget_problems(b: BudgetIn) -> list[FieldError]:
    out = []
    if b.period_start.day != 1:
        out.append(FieldError("period_start", "A period starts on the first day of a month."))
    if b.period_kind == "year" and b.period_start.month != 1:
        out.append(FieldError("period_start", "A year's budget starts on 1 January."))
    if not 2000 <= b.period_start.year <= 2100:
        out.append(FieldError("period_start", "The period's year is outside 2000-2100."))
    return out


async def set_budget(
    tx: Tx, enterprise_id: uuid.UUID, budget: BudgetIn, *, set_by: SetBy
) -> Budget:
    """Set (or replace) the budget of a metric and period; the latest setting stands. The
    next evaluation (the recompute after new data, or the periodic one) applies it."""
    problems = budget_problems(budget)
    if problems:
        raise InvalidInput(
            f"Budget: {len(problems)} field(s) refused.", code="validation_failed", errors=problems
        )
    row = await repo.upsert_budget(
        tx.conn,
        enterprise_id,
        budget.metric,
        budget.period_kind,
        budget.period_start,
        budget.amount,
        set_by,
    )
    return _budget(row)


def _budget(r: Any) -> Budget:
    return Budget(
        enterprise_id=r["enterprise_id"],
        metric=r["metric"],
        period_kind=r["period_kind"],
        period_start=r["period_start"],
        amount=r["amount"],
        set_by=r["set_by"],
        updated_at=r["updated_at"],
    )


async def budgets(conn: Any, enterprise_id: uuid.UUID) -> list[Budget]:
    return [_budget(r) for r in await repo.budgets(conn, enterprise_id)]


def _alert(r: Any) -> Alert:
    return Alert(
        id=r["id"],
        enterprise_id=r["enterprise_id"],
        metric=r["metric"],
        period_kind=r["period_kind"],
        period_start=r["period_start"],
        threshold=float(r["threshold"]),
        budget=r["budget"],
        actual=r["actual"],
        projected=r["projected"],
        state=r["state"],
        raised_at=r["raised_at"],
        cleared_at=r["cleared_at"],
        changed_at=r["changed_at"],
        delivered=r["delivered_state"] == r["state"],
    )


async def alerts(conn: Any, enterprise_id: uuid.UUID, *, raised_only: bool = False) -> list[Alert]:
    """An enterprise's alerts, latest period first (``raised_only``: those standing)."""
    return [_alert(r) for r in await repo.alerts(conn, enterprise_id, raised_only=raised_only)]


def projection(used: float, kind: str, start: date, now: datetime, zone: ZoneInfo) -> float:
    """The period's projected use at ``now``: ``used`` over the elapsed share of the period
    (programme time); a period that has ended projects ``used``; one not begun, 0."""
    begin = datetime(start.year, start.month, start.day, tzinfo=zone)
    e = period_end(kind, start)
    end = datetime(e.year, e.month, e.day, tzinfo=zone)
    if now >= end:
        return used
    if now <= begin:
        return 0.0
    share = (now - begin) / (end - begin)
    return used / share


def crossings(
    usage: Sequence[Any], thresholds: Sequence[float], now: datetime, zone: ZoneInfo
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """(crossing, falling): for each budget of ``usage`` and each threshold, whether the
    projection reaches threshold × budget."""
    up: list[tuple[Any, ...]] = []
    down: list[tuple[Any, ...]] = []
    for u in usage:
        projected = projection(u["used"], u["period_kind"], u["period_start"], now, zone)
        for t in thresholds:
            item = (
                u["enterprise_id"],
                u["metric"],
                u["period_kind"],
                u["period_start"],
                t,
                u["amount"],
                u["used"],
                projected,
            )
            (up if projected >= t * u["amount"] else down).append(item)
    return up, down


async def evaluate(
    tx: Tx,
    *,
    settings: EnterprisesSettings,
    zone: ZoneInfo,
    now: datetime | None = None,
    enterprise_ids: Sequence[uuid.UUID] | None = None,
    months: Sequence[date] | None = None,
) -> list[int]:
    """Raise and clear the alerts of the budgets whose period contains ``now`` (and those
    containing any of ``months``, e.g. months late data changed), of ``enterprise_ids`` or of
    every enterprise. Set-wise: one read per distinct month, two writes. Returns the ids of
    the alerts whose state changed (for the webhook)."""
    now = now or datetime.now(UTC)
    local = now.astimezone(zone)
    wanted = {date(local.year, local.month, 1)} | {date(m.year, m.month, 1) for m in months or ()}
    basis = Basis.of(settings).label
    usage: dict[tuple[Any, ...], Any] = {}
    for month in sorted(wanted):
        for u in await repo.budget_usage(tx.conn, basis, month, enterprise_ids):
            usage[(u["enterprise_id"], u["metric"], u["period_kind"], u["period_start"])] = u
    up, down = crossings(list(usage.values()), settings.thresholds, now, zone)
    return await repo.apply_alerts(tx.conn, up, down, now)


# --- the webhook -------------------------------------------------------------------------------


class AlertEvent(Struct, frozen=True, kw_only=True):
    event: str  # alert.raised | alert.cleared
    delivery: str
    alert_id: int
    enterprise_id: uuid.UUID
    credit_code: str
    metric: Metric
    period_kind: PeriodKind
    period_start: date
    threshold: float
    budget: float
    actual: float
    projected: float
    state: State
    changed_at: datetime


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The webhook signature: hex HMAC-SHA256 of ``timestamp.body``."""
    return hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


Delivery = Literal["delivered", "failed", "nothing", "not_configured"]


async def deliver(
    pool: Any,
    settings: EnterprisesSettings,
    alert_id: int,
    *,
    client: httpx.AsyncClient | None = None,
) -> Delivery:
    """POST the alert's current state to the webhook once: ``delivered`` (recorded),
    ``failed`` (the attempt recorded; the task retries), ``nothing`` (no such alert, or its
    state was delivered already), ``not_configured`` (no webhook)."""
    if not settings.alert_webhook_url or not settings.alert_webhook_secret:
        return "not_configured"
    async with pool.acquire() as conn:
        r = await repo.alert_by_id(conn, alert_id)
    if r is None or r["delivered_state"] == r["state"]:
        return "nothing"
    changed_at: datetime = r["changed_at"]
    event = AlertEvent(
        event=f"alert.{r['state']}",
        delivery=f"{alert_id}:{r['state']}:{int(changed_at.timestamp() * 1_000_000)}",
        alert_id=alert_id,
        enterprise_id=r["enterprise_id"],
        credit_code=r["credit_code"],
        metric=r["metric"],
        period_kind=r["period_kind"],
        period_start=r["period_start"],
        threshold=float(r["threshold"]),
        budget=r["budget"],
        actual=r["actual"],
        projected=r["projected"],
        state=r["state"],
        changed_at=changed_at,
    )
    body = msgspec.json.encode(event)
    timestamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "X-Tanpuhui-Event": event.event,
        "X-Tanpuhui-Delivery": event.delivery,
        "X-Tanpuhui-Timestamp": timestamp,
        "X-Tanpuhui-Signature": sign(settings.alert_webhook_secret, timestamp, body),
    }
    error: str | None = None
    try:
        if client is None:
            async with httpx.AsyncClient(timeout=settings.alert_webhook_timeout_s) as http:
                response = await http.post(
                    settings.alert_webhook_url, content=body, headers=headers
                )
        else:
            response = await client.post(settings.alert_webhook_url, content=body, headers=headers)
        if not 200 <= response.status_code < 300:
            error = f"HTTP {response.status_code}"
    except httpx.HTTPError as exc:
        error = f"{type(exc).__name__}"
    async with pool.acquire() as conn:
        if error is None:
            await repo.mark_delivered(conn, alert_id, r["state"], changed_at)
            return "delivered"
        await repo.mark_failed(conn, alert_id, error)
    return "failed"


async def undelivered(pool: Any, settings: EnterprisesSettings) -> list[int]:
    """Alerts whose current state has not reached the webhook, with attempts left."""
    if not settings.alert_webhook_url:
        return []
    async with pool.acquire() as conn:
        return await repo.undelivered_alerts(conn, settings.alert_webhook_attempts)
