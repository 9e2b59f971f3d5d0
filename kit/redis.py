"""The Redis client (rate limits, replay nonces, one-time codes, leaderboards, caches)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import redis.asyncio as aioredis


def create_redis(url: str, *, timeout_s: float = 2.0) -> Any:
    return aioredis.from_url(
        url,
        socket_connect_timeout=timeout_s,
        socket_timeout=timeout_s,
        health_check_interval=30,
    )


def celery_broker_url(redis_url: str) -> str:
    """Celery (kombu) spells a unix-socket Redis as ``redis+socket://``."""
    parts = urlsplit(redis_url)
    if parts.scheme == "unix":
        return f"redis+socket://{parts.path}"
    return redis_url
