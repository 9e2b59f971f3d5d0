"""Merchants' webhooks: written with the event, sent to Celery after commit, delivered signed to a
real local HTTP receiver, retried with back-off, one event id per reward and event type."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from kit.db import transaction
from rewards import repository as repo
from rewards import service
from server.worker import create_celery
from tests.rewards.factories import NOW, config, funded, item, merchant


class Receiver:
    """A merchant's webhook endpoint on a real socket: records each delivery; answers
    ``status`` (a list pops one status per call, then 200)."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self.statuses: list[int] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                receiver.calls.append({"headers": dict(self.headers), "body": body})
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.stop()


@pytest.fixture
def celery_app(settings):
    return create_celery(settings)


async def confirmed(pool, cfg, webhook_url):
    m = await merchant(pool, cfg, webhook_url=webhook_url)
    it = await item(pool, m.merchant.id, cost_points=50)
    rid = await funded(pool, cfg, 500)
    async with transaction(pool) as tx:
        reward = await service.redeem(tx, cfg, rid, it.id, now=NOW)
    async with transaction(pool) as tx:
        await service.confirm(tx, cfg, m.merchant.id, reward.code, now=NOW)
    return m, reward


class TestWebhooks:
    async def test_confirm_sends_a_signed_event_after_commit(
        self, pool, settings, redis, receiver, celery_app
    ):
        cfg = config(settings)
        m, reward = await confirmed(pool, cfg, receiver.url)
        # The outbox row was committed with the confirmation and its task sent to the broker.
        assert await redis.llen("celery") == 1
        message = json.loads(await redis.lindex("celery", 0))
        assert message["headers"]["task"] == "rewards.deliver_webhook"
        (event_id,) = await service.due(pool, NOW + timedelta(seconds=1))
        assert await service.deliver(pool, cfg, event_id, now=NOW) == "delivered"
        (call,) = receiver.calls
        headers = {k.lower(): v for k, v in call["headers"].items()}
        assert headers["x-tanpuhui-event-id"] == event_id
        expected = hmac.new(
            m.webhook_secret.encode(),
            headers["x-tanpuhui-timestamp"].encode() + b"." + call["body"],
            hashlib.sha256,
        ).hexdigest()
        assert headers["x-tanpuhui-signature"] == expected
        event = json.loads(call["body"])
        assert event["type"] == "reward.confirmed" and event["event_id"] == event_id
        assert event["reward"]["id"] == reward.id and event["reward"]["status"] == "used"
        assert "resident" not in call["body"].decode()
        # Delivered: never again.
        assert await service.deliver(pool, cfg, event_id, now=NOW + timedelta(hours=1)) == "not_due"
        assert len(receiver.calls) == 1

    async def test_failures_are_retried_with_back_off_under_the_same_event_id(
        self, pool, settings, receiver, celery_app
    ):
        cfg = config(settings)
        await confirmed(pool, cfg, receiver.url)
        (event_id,) = await service.due(pool, NOW)
        receiver.statuses = [500, 503]
        assert await service.deliver(pool, cfg, event_id, now=NOW) == "retry"
        backoff = cfg.rewards.webhook_backoff_s
        assert await service.due(pool, NOW + timedelta(seconds=backoff - 1)) == []
        later = NOW + timedelta(seconds=backoff)
        assert await service.due(pool, later) == [event_id]
        assert await service.deliver(pool, cfg, event_id, now=later) == "retry"
        # The second failure doubles the wait.
        assert await service.due(pool, later + timedelta(seconds=2 * backoff - 1)) == []
        last = later + timedelta(seconds=2 * backoff)
        assert await service.deliver(pool, cfg, event_id, now=last) == "delivered"
        assert len(receiver.calls) == 3
        bodies = {c["body"] for c in receiver.calls}
        assert len(bodies) == 1  # the same event, byte for byte
        async with pool.acquire() as conn:
            row = await repo.webhook(conn, event_id)
        assert row["attempts"] == 3 and row["last_status"] == "200"

    async def test_an_unreachable_receiver_fails_for_good_after_the_attempts(
        self, pool, settings, receiver, celery_app
    ):
        cfg = config(settings)
        url = receiver.url
        receiver.stop()  # nobody listens on that port any more
        await confirmed(pool, cfg, url)
        (event_id,) = await service.due(pool, NOW)
        at = NOW
        outcomes = []
        for _ in range(cfg.rewards.webhook_max_attempts):
            outcomes.append(await service.deliver(pool, cfg, event_id, now=at))
            at += timedelta(hours=7)
        assert outcomes[-1] == "failed" and set(outcomes[:-1]) == {"retry"}
        assert await service.due(pool, at + timedelta(days=1)) == []

    async def test_refund_and_expiry_events_once_each(self, pool, settings, receiver, celery_app):
        cfg = config(settings)
        m, reward = await confirmed(pool, cfg, receiver.url)
        for _ in range(2):
            async with transaction(pool) as tx:
                await service.refund(tx, cfg, m.merchant.id, reward.id, now=NOW)
        it = await item(pool, m.merchant.id, validity_s=600)
        async with transaction(pool) as tx:
            await service.redeem(tx, cfg, await funded(pool, cfg, 500), it.id, now=NOW)
        async with transaction(pool) as tx:
            assert await service.expire(tx, cfg, now=NOW + timedelta(minutes=10)) == 1
        due = await service.due(pool, NOW + timedelta(minutes=10))
        for event_id in due:
            assert await service.deliver(pool, cfg, event_id, now=NOW + timedelta(minutes=10)) == (
                "delivered"
            )
        types = sorted(json.loads(c["body"])["type"] for c in receiver.calls)
        assert types == ["reward.confirmed", "reward.expired", "reward.refunded"]
