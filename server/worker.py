"""Celery: the app (Redis broker), beat schedule, async task runner, after-commit dispatch.

Tasks receive ids, never objects, and are dispatched only after the transaction that created
their work commits (:func:`enqueue_after_commit`). A task body is an ``async`` function of a
:class:`WorkerContext`; :func:`run_async` runs it on the worker process's own event loop with a
pool created once per process.
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from celery import Celery

from server.db import Tx, create_pool
from server.redis import celery_broker_url, create_redis
from server.settings import Settings

T = TypeVar("T")

# Modules holding tasks; each may define BEAT = {name: {"task": ..., "schedule": seconds}}.
TASK_MODULES: list[str] = ["server.tasks", "points.tasks", "integrations.tasks"]


def create_celery(settings: Settings) -> Celery:
    broker = settings.celery.broker_url or (
        celery_broker_url(settings.redis.url) if settings.redis.url else None
    )
    app = Celery("tanpuhui", broker=broker)
    beat: dict[str, Any] = {}
    for module in TASK_MODULES:
        beat.update(getattr(importlib.import_module(module), "BEAT", {}))
    app.conf.update(
        task_always_eager=settings.celery.always_eager,
        task_eager_propagates=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_serializer="json",
        accept_content=["json"],
        result_backend=None,
        task_ignore_result=True,
        timezone="UTC",
        enable_utc=True,
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        beat_schedule=beat,
    )
    app.set_default()
    app.tanpuhui_settings = settings
    return app


@dataclass
class WorkerContext:
    settings: Settings
    pool: Any
    redis: Any


_loop: asyncio.AbstractEventLoop | None = None
_ctx: WorkerContext | None = None


def _settings() -> Settings:
    from celery import current_app

    s = getattr(current_app, "tanpuhui_settings", None)
    return s if isinstance(s, Settings) else Settings.from_env()


def run_async(fn: Callable[[WorkerContext], Awaitable[T]]) -> T:
    """Run a task body on this worker process's loop, with its pool and Redis client."""
    global _loop, _ctx
    if _loop is None or _loop.is_closed():
        _loop = asyncio.new_event_loop()
    loop = _loop

    async def main() -> T:
        global _ctx
        if _ctx is None:
            settings = _settings()
            if not settings.database.url or not settings.redis.url:
                raise RuntimeError("the worker needs DATABASE_URL and REDIS_URL")
            _ctx = WorkerContext(
                settings=settings,
                pool=await create_pool(settings.database.url, min_size=1, max_size=4),
                redis=create_redis(settings.redis.url),
            )
        return await fn(_ctx)

    return loop.run_until_complete(main())


def enqueue_after_commit(tx: Tx, task: Any, *args: Any, **kwargs: Any) -> None:
    """Send ``task`` with ``args`` once ``tx`` commits; nothing is sent if it rolls back."""

    async def send() -> None:
        await asyncio.to_thread(task.apply_async, args, kwargs)

    tx.after_commit(send)
