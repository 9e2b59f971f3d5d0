"""Opening accounts ahead of their first transfer (a resident signing up, a migration of a
programme's members from another platform, the benchmarks' synthetic city). Transfers open the
accounts they touch themselves; this is for opening many at once, set-wise."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from points import repository as repo
from points.schemas import FLAG_ISSUANCE, AccountKey

__all__ = ["FLAG_ISSUANCE", "open_accounts"]


async def open_accounts(conn: Any, keys: Sequence[AccountKey], *, flags: int = 0) -> int:
    """Create the accounts of ``keys`` that do not exist yet (existing ones are left as they
    are, unlocked); returns how many keys were given."""
    await repo.ensure_accounts(conn, keys, [flags] * len(keys))
    return len(keys)
