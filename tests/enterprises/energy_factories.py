"""Sites, meters, pushers and readings for the energy tests, made through the enterprises
package's services (never raw SQL)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from enterprises import energy
from enterprises.energy_schemas import (
    Meter,
    MeterIn,
    MeterKind,
    ReadingIn,
    ReadingsResult,
    Register,
    SiteIn,
)
from kit.db import transaction
from tests.behaviours.factories import operator
from tests.enterprises.factories import districts, enterprise, registered

ZONE = ZoneInfo("Asia/Shanghai")
# 2026-03-01 00:00 in Shanghai: readings of the tests start in March (local).
T0 = datetime(2026, 3, 1, tzinfo=ZONE).astimezone(UTC)
Q = timedelta(minutes=15)
PUSHER = "grid"


async def pusher(pool: Any, op_id: str = PUSHER) -> str:
    """A utility that pushes meters (an operator, signing with tests' SECRET, key k1)."""
    await operator(pool, op_id, "utility")
    return op_id


async def an_enterprise(pool: Any, n: int = 1, *, with_districts: bool = True) -> uuid.UUID:
    if with_districts:
        await districts(pool)
    return (await registered(pool, enterprise(n))).enterprise.id


async def meter(
    pool: Any,
    enterprise_id: uuid.UUID,
    ref: str = "M1",
    *,
    kind: MeterKind = "electricity",
    unit: str = "kWh",
    register: Register = "cumulative",
    interval_s: int = 900,
    by: str = PUSHER,
    site: str = "Plant 1",
    spike_factor: float = 10.0,
) -> Meter:
    async with transaction(pool) as tx:
        s = await energy.add_site(tx, enterprise_id, SiteIn(name=site))
        return await energy.add_meter(
            tx,
            enterprise_id,
            MeterIn(
                site_id=s.id,
                ref=ref,
                kind=kind,
                unit=unit,
                pusher=by,
                interval_s=interval_s,
                register=register,
                spike_factor=spike_factor,
            ),
        )


def series(
    ref: str, values: list[float], *, start: datetime = T0, step: timedelta = Q, first: int = 1
) -> list[ReadingIn]:
    """Readings of ``ref`` at start + first·step, start + (first+1)·step, ..."""
    return [
        ReadingIn(meter=ref, at=start + (first + i) * step, value=v) for i, v in enumerate(values)
    ]


async def push(
    pool: Any, readings: list[ReadingIn], *, by: str = PUSHER, now: datetime | None = None
) -> ReadingsResult:
    async with transaction(pool) as tx:
        return await energy.ingest_readings(
            tx, by, readings, zone=ZONE, now=now or T0 + timedelta(days=400)
        )
