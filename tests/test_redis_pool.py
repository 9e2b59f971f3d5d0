"""The Redis client's pool: a burst larger than the pool waits for connections instead of
failing (redis-py's default pool raises ``MaxConnectionsError`` past its size, which showed as
503s at 200 simultaneous requests)."""

from __future__ import annotations

import asyncio

import msgspec
import pytest

from kit.redis import create_redis
from kit.settings import RedisSettings


async def _burst(client, n: int) -> list[object]:
    # BLPOP on an empty list holds its connection for the whole timeout: n at once need n.
    return await asyncio.gather(
        *(client.blpop([f"tph-test-empty-{i}"], timeout=0.2) for i in range(n)),
        return_exceptions=True,
    )


async def test_a_burst_beyond_the_pool_waits_for_connections(settings):
    client = create_redis(settings.redis.url, max_connections=4, timeout_s=5.0)
    try:
        answers = await _burst(client, 12)  # three rounds of four
    finally:
        await client.aclose()
    assert answers == [None] * 12


async def test_the_pool_size_is_a_setting(settings):
    assert settings.redis.pool_max == 100
    with pytest.raises(msgspec.ValidationError, match="pool_max"):
        msgspec.convert({"pool_max": 0}, RedisSettings)
