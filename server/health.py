"""Liveness and readiness."""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
from litestar import Controller, get
from litestar.datastructures import State

from behaviours.service import district_count, districts_note
from kit.errors import Unavailable


class Health(msgspec.Struct):
    status: str
    checks: dict[str, str] = msgspec.field(default_factory=dict)


class HealthController(Controller):
    path = ""
    tags = ["health"]  # noqa: RUF012

    @get("/healthz", summary="进程存活 · The process is alive")
    async def healthz(self) -> Health:
        return Health(status="ok")

    @get(
        "/readyz",
        summary="PostgreSQL、Redis 可用（否则 503） · PostgreSQL and Redis answer (503 otherwise)",
    )
    async def readyz(self, state: State) -> Health:
        """503 when a data store does not answer. ``checks.districts`` says how many districts
        are imported: with none the service still runs (200), but refuses trips with
        coordinates (``region_not_configured``)."""
        districts: list[int] = []
        checks = {
            "postgres": await _check(_pg(state.pool, districts)),
            "redis": await _check(state.redis.ping()),
        }
        if any(v != "ok" for v in checks.values()):
            raise Unavailable(
                "A data store does not answer.", code="not_ready", extra={"checks": checks}
            )
        checks["districts"] = districts_note(districts[0])
        return Health(status="ok", checks=checks)


async def _pg(pool: Any, districts: list[int]) -> None:
    async with pool.acquire(timeout=2) as conn:
        districts.append(await district_count(conn))


async def _check(awaitable: Any) -> str:
    try:
        await asyncio.wait_for(awaitable, timeout=2.0)
    except Exception as exc:  # any failure means "not ready"; the kind is enough for operators
        return f"error: {type(exc).__name__}"
    return "ok"
