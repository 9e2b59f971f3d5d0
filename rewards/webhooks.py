"""Outgoing webhooks to merchants: an outbox row written in the event's own transaction (one
per reward and event type; the event id is the receiver's idempotency key), delivered after
commit by a Celery task, retried with exponential back-off by the periodic sweep.

Each delivery is ``POST <webhook_url>`` with the event as JSON and the headers
``X-Tanpuhui-Event-Id``, ``X-Tanpuhui-Timestamp`` and ``X-Tanpuhui-Signature`` (HMAC-SHA256,
hex, of ``<timestamp>.<body>`` under the merchant's webhook secret). A 2xx answer delivers it;
anything else (or no answer within the timeout) schedules the next attempt.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import httpx
import msgspec
from celery import shared_task

from kit.db import Tx, transaction
from kit.tasks import WorkerContext, enqueue_after_commit, run_async
from points.schemas import utcnow
from rewards import repository as repo
from rewards.merchants import webhook_context
from rewards.schemas import MerchantReward, WebhookEvent
from rewards.settings import RewardsConfig, config_of

log = logging.getLogger("tanpuhui.rewards")
_encoder = msgspec.json.Encoder()
MAX_BACKOFF_S = 6 * 3600


def signature(secret: str, timestamp: str, body: bytes) -> str:
    return hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def backoff_s(cfg: RewardsConfig, attempts: int) -> int:
    """Seconds before the attempt after ``attempts`` failed ones."""
    return int(min(cfg.rewards.webhook_backoff_s * 2 ** max(attempts - 1, 0), MAX_BACKOFF_S))


async def record(
    tx: Tx,
    event_type: str,
    rewards: Sequence[tuple[str, MerchantReward]],
    at: datetime,
) -> list[str]:
    """Write the events of ``rewards`` ((merchant id, view) pairs) for the merchants that take
    webhooks, and send each to the delivery task once the transaction commits. Set-wise: one
    query for the targets, one insert."""
    if not rewards:
        return []
    targets = await repo.webhook_targets(tx.conn, [m for m, _ in rewards])
    chosen = [(m, r) for m, r in rewards if m in targets]
    if not chosen:
        return []
    events = [
        WebhookEvent(
            event_id=str(uuid.uuid4()),
            type=event_type,  # type: ignore[arg-type]
            occurred_at=at,
            merchant_id=m,
            reward=r,
        )
        for m, r in chosen
    ]
    written = await repo.insert_webhooks(
        tx.conn,
        [e.event_id for e in events],
        [e.merchant_id for e in events],
        [e.type for e in events],
        [e.reward.id for e in events],
        [_encoder.encode(e).decode() for e in events],
        at,
    )
    for event_id in written:
        enqueue_after_commit(tx, deliver_webhook, event_id)
    return written


async def deliver(
    pool: Any,
    cfg: RewardsConfig,
    event_id: str,
    *,
    now: datetime | None = None,
    client: httpx.AsyncClient | None = None,
) -> str:
    """One delivery attempt of a due event: ``delivered``, ``retry`` (scheduled), ``failed``
    (attempts used up) or ``not_due`` (delivered already, or another attempt holds it)."""
    now = now or utcnow()
    timeout = cfg.rewards.webhook_timeout_s
    async with transaction(pool) as tx:
        row = await repo.lease_webhook(
            tx.conn, event_id, now, now + timedelta(seconds=timeout * 2 + 30)
        )
    if row is None:
        return "not_due"
    secret = cfg.box.open(row["webhook_secret"] or "", context=webhook_context(row["merchant_id"]))
    body = _encoder.encode(row["payload"])
    ts = str(int(time.time()))
    status = "no_secret"
    ok = False
    if secret is not None and row["webhook_url"]:
        headers = {
            "Content-Type": "application/json",
            "X-Tanpuhui-Event-Id": row["event_id"],
            "X-Tanpuhui-Timestamp": ts,
            "X-Tanpuhui-Signature": signature(secret, ts, body),
        }
        own = client is None
        http = client or httpx.AsyncClient(timeout=timeout, follow_redirects=False)
        try:
            answer = await http.post(row["webhook_url"], content=body, headers=headers)
            status = str(answer.status_code)
            ok = 200 <= answer.status_code < 300
        except httpx.HTTPError as exc:
            status = type(exc).__name__
        finally:
            if own:
                await http.aclose()
    attempts = int(row["attempts"])
    failed = not ok and attempts >= cfg.rewards.webhook_max_attempts
    async with transaction(pool) as tx:
        await repo.webhook_done(
            tx.conn,
            event_id,
            delivered_at=now if ok else None,
            failed_at=now if failed else None,
            next_attempt_at=now + timedelta(seconds=backoff_s(cfg, attempts)),
            last_status=status,
        )
    if failed:
        log.warning(
            "webhook failed for good",
            extra={"event_id": event_id, "merchant_id": row["merchant_id"], "status": status},
        )
    return "delivered" if ok else "failed" if failed else "retry"


async def due(pool: Any, now: datetime | None = None, limit: int = 500) -> list[str]:
    async with pool.acquire() as conn:
        return await repo.due_webhooks(conn, now or utcnow(), limit)


@shared_task(name="rewards.deliver_webhook")  # type: ignore[untyped-decorator]
def deliver_webhook(event_id: str) -> str:
    """Deliver one webhook event (after the commit that wrote it, or when its retry is due)."""

    async def body(ctx: WorkerContext) -> str:
        return await deliver(ctx.pool, config_of(ctx.settings), event_id)

    return run_async(body)
