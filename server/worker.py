"""The Celery app of this deployment: its broker (Redis) checked against the configuration, and
the beat schedule of every package's periodic tasks (plain imports: each ``tasks`` module
registers its tasks when imported and may define ``BEAT``).

The runtime the tasks use (after-commit dispatch, the async runner) is the kernel's
(``kit.tasks``).
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from celery import Celery

import behaviours.tasks
import enterprises.commuting_tasks
import enterprises.tasks
import points.tasks
import reporting.tasks
import rewards.tasks
import server.tasks
from kit.redis import celery_broker_url
from kit.tasks import configure
from server.settings import Settings, SettingsError

# Each task module may define BEAT = {name: {"task": ..., "schedule": seconds}}.
TASK_MODULES = (
    server.tasks,
    points.tasks,
    behaviours.tasks,
    rewards.tasks,
    enterprises.tasks,
    enterprises.commuting_tasks,
    reporting.tasks,
)

# Celery reads these before its own configuration: any of them would move our tasks elsewhere.
_CELERY_ENV_OVERRIDES = ("CELERY_BROKER_URL", "CELERY_BROKER_WRITE_URL", "CELERY_BROKER_READ_URL")


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
        beat.update(getattr(module, "BEAT", {}))
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
    configure(app, settings, {entry["task"] for entry in beat.values()})
    return app
