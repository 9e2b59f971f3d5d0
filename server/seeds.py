"""Reference data loaded after migrations (idempotent): methodology defaults and the like.

Seed data lives as data files inside the owning package; each package exposes an async
``seed(conn)`` that inserts what is missing and never overwrites an administrator's edits.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from behaviours import service as behaviours

# Every package's seeder, in dependency order: one line each.
SEEDERS: tuple[Callable[[Any], Awaitable[None]], ...] = (behaviours.seed,)


async def apply_seeds(conn: Any) -> None:
    for seed in SEEDERS:
        await seed(conn)
