"""Reference data loaded after migrations (idempotent): methodology defaults and the like.

Seed data lives as data files inside the owning package; each package exposes an async
``seed(conn)`` that inserts what is missing and never overwrites an administrator's edits.
"""

from __future__ import annotations

import importlib
from typing import Any

# "module:function" of every package's seeder, in dependency order.
SEEDERS: list[str] = ["behaviours.service:seed"]


async def apply_seeds(conn: Any) -> None:
    for target in SEEDERS:
        module, _, name = target.partition(":")
        await getattr(importlib.import_module(module), name)(conn)
