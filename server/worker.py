"""Celery: the app (Redis broker), beat schedule, async task runner, after-commit dispatch.

Tasks receive ids, never objects, and are dispatched only after the transaction that created
their work commits (:func:`enqueue_after_commit`). A task body is an ``async`` function of a
:class:`WorkerContext`; :func:`run_async` runs it on the worker process's own event loop with a
pool created once per process.

Every process that sends or runs tasks (the API, the worker, beat) builds the one app with
:func:`create_celery` from its settings, and that app's broker must be the configured one: a
process that did not build it cannot send a task at all (a stand-in default app refuses), so
nothing ever goes to Celery's built-in default broker (``amqp://localhost``).
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

from celery import Celery
from celery import _state as celery_state

from server.db import Tx, create_pool
from server.redis import celery_broker_url, create_redis
from server.settings import Settings, SettingsError

T = TypeVar("T")

# Modules holding tasks; each may define BEAT = {name: {"task": ..., "schedule": seconds}}.
TASK_MODULES: list[str] = ["server.tasks", "points.tasks", "integrations.tasks"]

# Celery reads these before its own configuration: any of them would move our tasks elsewhere.
_CELERY_ENV_OVERRIDES = ("CELERY_BROKER_URL", "CELERY_BROKER_WRITE_URL", "CELERY_BROKER_READ_URL")


class BrokerNotConfigured(RuntimeError):
    """A task was sent (or a worker started) in a process that never called create_celery()."""


class _UnconfiguredCelery(Celery):  # type: ignore[misc]
    """Celery's default app until :func:`create_celery` runs: it refuses to send or connect.

    Without it, a task sent by a process that forgot to configure Celery goes to Celery's
    built-in default broker, amqp://localhost:5672: some unrelated server, or nowhere.
    """

    def send_task(self, *args: Any, **kwargs: Any) -> Any:
        raise _not_configured()

    def _connection(self, *args: Any, **kwargs: Any) -> Any:
        raise _not_configured()


def _not_configured() -> BrokerNotConfigured:
    return BrokerNotConfigured(
        "Celery is not configured in this process: call server.worker.create_celery(settings) "
        "first (tasks never go to Celery's default broker)"
    )


# Replace Celery's own fallback app (named "default", broker amqp://localhost) if one was made.
if celery_state.default_app is None or celery_state.default_app.main == "default":
    _UnconfiguredCelery("tanpuhui-unconfigured", set_as_current=False).set_default()


def mask_url(url: str) -> str:
    """``url`` with its password replaced by ``***`` (for messages and `tanpuhui settings`)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def broker_url(settings: Settings) -> str:
    """The broker this deployment's tasks go to; refuses when there is none or when Celery's
    own environment variables would send them somewhere else."""
    url = settings.celery.broker_url or (
        celery_broker_url(settings.redis.url) if settings.redis.url else None
    )
    if not url:
        raise SettingsError(
            "REDIS_URL", "Celery needs a broker: set REDIS_URL (or TANPUHUI_CELERY_BROKER_URL)"
        )
    for variable in _CELERY_ENV_OVERRIDES:
        other = os.environ.get(variable)
        if other and other != url:
            raise SettingsError(
                variable,
                f"would send tasks to {mask_url(other)} instead of the configured broker "
                f"{mask_url(url)}; unset it (tanpuhui's broker is REDIS_URL or "
                "TANPUHUI_CELERY_BROKER_URL)",
            )
    return url


def create_celery(settings: Settings) -> Celery:
    """The project's Celery app, made the process default; raises SettingsError when its broker
    is not the configured one."""
    broker = broker_url(settings)
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
    for effective in (app.conf.broker_write_url, app.conf.broker_read_url):
        if effective != broker:
            raise SettingsError(
                "TANPUHUI_CELERY_BROKER_URL",
                f"Celery would use {mask_url(str(effective))}, "
                f"not the configured {mask_url(broker)}",
            )
    quiet_periodic_task_logs({entry["task"] for entry in beat.values()})
    app.set_default()
    app.tanpuhui_settings = settings
    return app


def configured_app() -> Celery | None:
    """The app :func:`create_celery` made the default in this process, if any."""
    app = celery_state.default_app
    return app if isinstance(getattr(app, "tanpuhui_settings", None), Settings) else None


class _QuietPeriodicTasks(logging.Filter):
    """Periodic tasks run every few seconds, mostly with nothing to do: their "received",
    "sending due task" and empty "succeeded" lines go to DEBUG. The tasks log what they did."""

    def __init__(self, names: set[str]) -> None:
        super().__init__()
        self.names = names

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno != logging.INFO:
            return True
        args = record.args
        if isinstance(args, dict):  # the worker: Task %(name)s[%(id)s] received / succeeded
            if args.get("name") not in self.names:
                return True
            if "return_value" in args and str(args["return_value"]) not in ("0", "None"):
                return True
        elif isinstance(args, tuple) and len(args) == 2 and record.msg.startswith("Scheduler:"):
            if args[1] not in self.names:  # beat: Scheduler: Sending due task %s (%s)
                return True
        else:
            return True
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)


_quiet = _QuietPeriodicTasks(set())


def quiet_periodic_task_logs(names: set[str]) -> None:
    _quiet.names |= names
    for logger in ("celery.worker.strategy", "celery.app.trace", "celery.beat"):
        log = logging.getLogger(logger)
        if _quiet not in log.filters:
            log.addFilter(_quiet)


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
    """Send ``task`` with ``args`` once ``tx`` commits; nothing is sent if it rolls back.

    Raises :class:`BrokerNotConfigured` at once (the transaction then rolls back) in a process
    that has not built the project's Celery app."""
    if configured_app() is None:
        raise _not_configured()

    async def send() -> None:
        await asyncio.to_thread(task.apply_async, args, kwargs)

    tx.after_commit(send)
