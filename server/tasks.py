"""The foundation's own tasks."""

from __future__ import annotations

from typing import Any

from celery import shared_task

BEAT: dict[str, dict[str, Any]] = {}


@shared_task(name="server.ping")  # type: ignore[untyped-decorator]
def ping() -> str:
    """Answers "pong": lets `tanpuhui dev` and operators check that a worker consumes tasks."""
    return "pong"
