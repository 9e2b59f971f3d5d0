"""Real activity for the reporting tests, made through the owners' services (behaviours'
ingestion, the ledger, rewards, enterprises' accounting), then the rollups refreshed."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from kit.db import transaction
from reporting import rollups
from tests.behaviours import factories as bf

OPERATORS = ("metro", "bikes")


async def operators(pool: Any) -> None:
    await bf.operator(pool, "metro", "transit")


async def travel(
    pool: Any,
    settings: Any,
    residents: int,
    *,
    start: datetime,
    district: str = "440303",
    modes: tuple[str, ...] = ("metro", "bus"),
    tag: str = "",
) -> list[str]:
    """``residents`` new residents of ``district``, linked to the metro operator, each with one
    trip of every mode in ``modes`` starting at ``start`` (one hour apart); their ids. Call
    :func:`operators` once first."""
    ids = []
    for i in range(residents):
        rid = await bf.resident(pool, district)
        subject = await bf.link(pool, rid, "metro")
        trips = [
            bf.metro(subject, f"{tag}{district}-{i}-{m}", start=start + timedelta(hours=h), mode=m)
            for h, m in enumerate(modes)
        ]
        await bf.run(pool, settings, trips, op_id="metro")
        ids.append(rid)
    return ids


async def refresh(pool: Any, settings: Any, first: date, last: date, **kw: Any) -> dict[str, int]:
    async with transaction(pool) as tx:
        return await rollups.refresh_window(
            tx,
            timezone=settings.timezone,
            settings=kw.pop("reporting", settings.reporting),
            ent=settings.enterprises,
            first=first,
            last=last,
            years=True,
            **kw,
        )
