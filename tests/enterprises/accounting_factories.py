"""Activity, emissions and enterprises for the accounting tests, made through the enterprises
package's services (never raw SQL on its tables)."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from enterprises import accounting, energy
from enterprises.activity import ActivityKind, ActivityRow
from enterprises.energy_schemas import ReportIn, ReportLineIn
from enterprises.factors import Basis
from kit.db import transaction
from tests.enterprises.factories import districts, enterprise, registered


def row(enterprise_id: uuid.UUID, month: date, kind: ActivityKind, quantity: float) -> ActivityRow:
    return ActivityRow(
        enterprise_id=enterprise_id, month=month, kind=kind, quantity=quantity, source="report"
    )


def month_rows(
    enterprise_id: uuid.UUID, month: date, quantities: dict[str, float]
) -> list[ActivityRow]:
    return [row(enterprise_id, month, k, q) for k, q in quantities.items()]  # type: ignore[arg-type]


def year_rows(
    enterprise_id: uuid.UUID, year: int, quantities: dict[str, float]
) -> list[ActivityRow]:
    """Twelve months of the same monthly quantities."""
    return [
        r for m in range(1, 13) for r in month_rows(enterprise_id, date(year, m, 1), quantities)
    ]


async def enterprises(
    pool: Any, n: int, *, industry: str = "C2611", first: int = 1
) -> list[uuid.UUID]:
    """``n`` registered enterprises of ``industry`` (numbers first, first + 1, ...)."""
    if first == 1:
        await districts(pool)
    return [
        (await registered(pool, enterprise(i, industry=industry))).enterprise.id
        for i in range(first, first + n)
    ]


async def recorded(
    pool: Any,
    activity: list[ActivityRow],
    *,
    start: date,
    end: date,
    basis: Basis | None = None,
    enterprise_ids: list[uuid.UUID] | None = None,
) -> accounting.Recorded:
    """Record ``activity`` for the months [start, end) of ``enterprise_ids`` (None: every
    enterprise's rows of those months are replaced)."""
    async with transaction(pool) as tx:
        return await accounting.record(
            tx,
            activity,
            start=start,
            end=end,
            basis=basis or Basis(),
            enterprise_ids=enterprise_ids,
        )


async def monthly_report(
    pool: Any, enterprise_id: uuid.UUID, month: date, lines: list[ReportLineIn]
) -> None:
    async with transaction(pool) as tx:
        await energy.submit_report(
            tx, enterprise_id, ReportIn(period="month", period_start=month, lines=lines)
        )
