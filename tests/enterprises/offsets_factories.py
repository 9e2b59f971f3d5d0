"""Offsets' test helpers: residents' verified grams pooled into blocks, enterprises with a year
of emissions, purchases and retirements through the service (enterprises.offsets)."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from enterprises import offsets, pooling
from enterprises.factors import Basis
from enterprises.offsets_schemas import Purchase, Retirement
from enterprises.settings import EnterprisesSettings
from kit.db import transaction
from points.schemas import PointsPolicy
from tests.enterprises.accounting_factories import enterprises, recorded, year_rows
from tests.enterprises.test_offsets_pooling import _events as events

POLICY = PointsPolicy()
SETTINGS = EnterprisesSettings()
YEAR = 2026

__all__ = ["POLICY", "SETTINGS", "YEAR", "buy", "emitting", "events", "issue", "retire"]


async def issue(pool: Any, key: str, amount: int | None, methodology: str = "M1") -> pooling.Block:
    async with transaction(pool) as tx:
        return await pooling.issue(
            tx,
            POLICY,
            request_key=key,
            methodology=methodology,
            vintage=YEAR,
            amount=amount,
            region_code="440303",
        )


async def emitting(
    pool: Any, n: int, *, kwh_per_month: float = 10_000.0, year: int = YEAR, first: int = 1
) -> list[uuid.UUID]:
    """``n`` enterprises, each with twelve months of grid electricity recorded in ``year``."""
    ids = await enterprises(pool, n, first=first)
    rows = [r for e in ids for r in year_rows(e, year, {"electricity": kwh_per_month})]
    await recorded(
        pool,
        rows,
        start=date(year, 1, 1),
        end=date(year + 1, 1, 1),
        basis=Basis.of(SETTINGS),
        enterprise_ids=ids,
    )
    return ids


async def buy(
    pool: Any, enterprise_id: uuid.UUID, grams: int, key: str | None = None, price: float = 50.0
) -> Purchase:
    async with transaction(pool) as tx:
        return await offsets.buy(
            tx,
            POLICY,
            request_key=key or f"buy:{uuid.uuid4()}",
            enterprise_id=enterprise_id,
            quantity_g=grams,
            price_yuan_per_t=price,
        )


async def retire(
    pool: Any,
    enterprise_id: uuid.UUID,
    grams: int,
    key: str | None = None,
    period: int = YEAR,
    settings: EnterprisesSettings = SETTINGS,
) -> Retirement:
    async with transaction(pool) as tx:
        return await offsets.retire(
            tx,
            POLICY,
            settings,
            request_key=key or f"retire:{uuid.uuid4()}",
            enterprise_id=enterprise_id,
            quantity_g=grams,
            period=period,
        )
