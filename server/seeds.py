"""Reference data loaded after migrations (idempotent): methodology defaults and the like.

Seed data lives as data files inside the owning package; each package exposes an async
``seed(conn, region_code)`` that inserts what is missing and never overwrites an administrator's
edits.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from behaviours import service as behaviours
from enterprises import factors as enterprise_factors
from enterprises import ledger as enterprise_ledger
from server.settings import Settings, SettingsError

# Every package's seeder, in dependency order: one line each.
SEEDERS: tuple[Callable[[Any, str], Awaitable[None]], ...] = (
    behaviours.seed,
    enterprise_factors.seed,
    enterprise_ledger.open_missing_accounts,
)


async def apply_seeds(conn: Any, region_code: str | None = None) -> None:
    """Every seeder, for the programme's ``region_code`` (None: the environment's settings',
    440300 when they do not load)."""
    region = region_code or _region()
    for seed in SEEDERS:
        await seed(conn, region)


def _region() -> str:
    try:
        return Settings.from_env().region_code
    except SettingsError:
        return "440300"
