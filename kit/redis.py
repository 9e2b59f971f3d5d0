"""The Redis client (rate limits, replay nonces, one-time codes, leaderboards, caches)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import redis.asyncio as aioredis


def create_redis(url: str, *, timeout_s: float = 2.0, max_connections: int = 100) -> Any:
    """A client on a *blocking* pool of at most ``max_connections``: a request that finds
    every connection busy waits for one (up to ``timeout_s``, then a ``ConnectionError``, which
    the API answers 503 ``retry_later``) instead of failing at once, as redis-py's default pool
    does (``MaxConnectionsError`` past 100 at a time: a burst of 200 simultaneous sign-ins)."""
    pool = aioredis.BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=timeout_s,
        socket_connect_timeout=timeout_s,
        socket_timeout=timeout_s,
        health_check_interval=30,
    )
    return aioredis.Redis.from_pool(pool)  # closing the client closes its pool


def celery_broker_url(redis_url: str) -> str:
    """Celery (kombu) spells a unix-socket Redis as ``redis+socket://``."""
    parts = urlsplit(redis_url)
    if parts.scheme == "unix":
        return f"redis+socket://{parts.path}"
    return redis_url
