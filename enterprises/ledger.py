"""The enterprises' accounts on the regional ledger: each enterprise has a ``CO2E_G`` account
(``owner_type`` "enterprise", its id), opened when it is registered (``enterprises.service``)
and, for enterprises registered before, by the seeder below; its verified reductions are
credited to it (``enterprises.accounting.credit_reductions``) from the system issuance account
``enterprise_issuance``. Imports only the ledger's facade and the package's repository, so the
registry can open accounts without importing the accounting."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any, Final

from enterprises import accounting_repository as repo
from points import service as ledger
from points.schemas import FLAG_ISSUANCE, AccountKey, Owner

# Where enterprises' verified reductions come from: an issuance account (flagged, so it may go
# negative by the region's total credited to enterprises), apart from residents' issuance.
ENTERPRISE_ISSUANCE: Final = Owner("system", "enterprise_issuance")


def account_key(enterprise_id: uuid.UUID | str) -> AccountKey:
    """The enterprise's carbon account (verified reductions, in grams of CO2e)."""
    return AccountKey("enterprise", str(enterprise_id), "CO2E_G")


async def open_enterprise_accounts(conn: Any, enterprise_ids: Sequence[uuid.UUID]) -> int:
    """Open the ledger accounts of ``enterprise_ids`` that do not exist yet (one statement)."""
    if not enterprise_ids:
        return 0
    return await ledger.open_accounts(conn, [account_key(e) for e in enterprise_ids])


async def open_issuance_account(conn: Any) -> None:
    await ledger.open_accounts(
        conn, [AccountKey("system", ENTERPRISE_ISSUANCE.owner_id, "CO2E_G")], flags=FLAG_ISSUANCE
    )


async def open_missing_accounts(conn: Any, region_code: str = "") -> None:
    """Seeder (server.seeds.SEEDERS): the accounts of every registered enterprise, for those
    registered before accounts were opened at registration, and the issuance account
    (idempotent)."""
    ids = [r["id"] for r in await repo.enterprise_districts(conn, None)]
    async with conn.transaction():
        await open_issuance_account(conn)
        await open_enterprise_accounts(conn, ids)
