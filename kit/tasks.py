"""The task runtime (Celery): after-commit dispatch, the async task runner, and the guard that
keeps tasks off Celery's built-in default broker.

Tasks receive ids, never objects, and are dispatched only after the transaction that created
their work commits (:func:`enqueue_after_commit`). A task body is an ``async`` function of a
:class:`WorkerContext`; :func:`run_async` runs it on the worker process's own event loop with a
pool created once per process.

Every process that sends or runs tasks (the API, the worker, beat) builds the one app from its
settings (``server.worker.create_celery``), which calls :func:`configure`: a process that did not
cannot send a task at all (a stand-in default app refuses), so nothing ever goes to Celery's
built-in default broker (``amqp://localhost``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from celery import Celery
from celery import _state as celery_state

from kit.db import Tx, create_pool
from kit.redis import create_redis

T = TypeVar("T")


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


def configure(app: Celery, settings: Any, periodic_tasks: set[str]) -> None:
    """Make ``app`` this process's Celery app, carrying ``settings`` for task bodies."""
    quiet_periodic_task_logs(periodic_tasks)
    app.set_default()
    app.tanpuhui_settings = settings


def configured_app() -> Celery | None:
    """The app :func:`create_celery` made the default in this process, if any."""
    app = celery_state.default_app
    return app if getattr(app, "tanpuhui_settings", None) is not None else None


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
    settings: Any  # the composed settings (server.settings.Settings)
    pool: Any
    redis: Any


_loop: asyncio.AbstractEventLoop | None = None
_ctx: WorkerContext | None = None


def _settings() -> Any:
    app = configured_app()
    if app is None:
        raise _not_configured()
    return app.tanpuhui_settings


def _new_loop() -> asyncio.AbstractEventLoop:
    """uvloop where it is installed (every supported platform but Windows), as the API server
    runs (`--loop uvloop`): the same asyncpg I/O at the same cost on both sides; a daily file's
    chunks read and COPY megabytes per transaction."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - Windows
        return asyncio.new_event_loop()
    loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    return loop


def run_async(fn: Callable[[WorkerContext], Awaitable[T]]) -> T:
    """Run a task body on this worker process's loop, with its pool and Redis client."""
    global _loop, _ctx
    if _loop is None or _loop.is_closed():
        _loop = _new_loop()
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
