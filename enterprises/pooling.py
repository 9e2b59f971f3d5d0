"""Pooled reductions with serials (issue 13, item 1; docs/offsets.md).

An issuance pools residents' verified grams of a vintage (the reductions' year) and methodology
into a serial block, one serial a gram: one transaction, all or nothing, in the caller's
:class:`kit.db.Tx`:

- under a transaction lock (``offsets_repository.lock_pooling``), the grams still poolable are
  read in SQL: the vintage's verified grams of the methodology not pooled yet, and never more
  than all of the vintage's verified grams less those residents retired (donations of grams) and
  those already pooled: the same grams are never pooled twice, even by concurrent issuances;
- the block is the next free serials (the table's exclusion constraint refuses any overlap);
- the grams move on the ledger from the residents' pool (``system:residents_pool``, flagged as
  an issuance-like source: residents keep their grams and points) to the programme's account
  (``system:offset_programme``) by one posted transfer whose ``source_ref`` names the block.

Idempotent by ``request_key`` (the route's Idempotency-Key): a replay returns the original block.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

import msgspec

from enterprises import offsets_repository as repo
from enterprises.offsets_errors import PoolEmpty
from kit.db import Tx
from points import service as ledger
from points.schemas import FLAG_ISSUANCE, AccountKey, Owner, PointsPolicy, TransferRequest, utcnow

RESIDENTS_POOL: Final = Owner("system", "residents_pool")
PROGRAMME: Final = Owner("system", "offset_programme")
KIND: Final = "offset_pooling"


class Block(msgspec.Struct, frozen=True, kw_only=True):
    """An issued serial block: serials ``serial_start`` to ``serial_end``, both included."""

    id: int
    programme: str
    methodology: str
    vintage: int
    amount: int
    serial_start: int
    serial_end: int
    transfer_id: int | None
    issued_at: datetime


def serial_ref(issuance_id: int, start: int, end: int) -> str:
    """The pooling transfer's ``source_ref``: the block's serials in the journal."""
    return f"offset-issuance:{issuance_id}:serials:{start}-{end}"


def _block(r: Any) -> Block:
    return Block(
        id=r["id"],
        programme=r["programme"],
        methodology=r["methodology"],
        vintage=r["vintage"],
        amount=r["amount"],
        serial_start=r["serial_start"],
        serial_end=r["serial_end"],
        transfer_id=r["transfer_id"],
        issued_at=r["issued_at"],
    )


async def open_accounts(conn: Any) -> None:
    await ledger.open_accounts(
        conn, [AccountKey("system", RESIDENTS_POOL.owner_id, "CO2E_G")], flags=FLAG_ISSUANCE
    )
    await ledger.open_accounts(conn, [AccountKey("system", PROGRAMME.owner_id, "CO2E_G")])


async def issue(
    tx: Tx,
    policy: PointsPolicy,
    *,
    request_key: str,
    methodology: str,
    vintage: int,
    amount: int | None = None,
    programme: str = "regional",
    region_code: str,
    now: datetime | None = None,
) -> Block:
    """Pool ``amount`` grams (all that may be pooled when None) of ``methodology``'s verified
    reductions of ``vintage`` into a new serial block.

    Refused: ``offset_pool_empty`` when ``amount`` is zero or more than the grams still
    poolable (nothing written)."""
    now = now or utcnow()
    conn = tx.conn
    await repo.lock_pooling(conn)
    done = await repo.issuance_by_key(conn, request_key)
    if done is not None:
        return _block(done)
    free, verified = await repo.available(conn, vintage, policy.timezone, methodology)
    grams = free if amount is None else amount
    if grams <= 0 or grams > free:
        raise PoolEmpty(
            "The vintage and methodology do not have that many unpooled verified grams.",
            extra={"available_g": free},
        )
    await open_accounts(conn)
    row = await repo.insert_issuance(
        conn,
        request_key=request_key,
        programme=programme,
        methodology=methodology,
        vintage=vintage,
        amount=grams,
        vintage_verified_g=verified,
    )
    [t] = await ledger.transfer(
        tx,
        [
            TransferRequest(
                idempotency_key=f"offset-issuance:{row['id']}",
                debit=RESIDENTS_POOL,
                credit=PROGRAMME,
                asset="CO2E_G",
                amount=grams,
                kind=KIND,
                reason_code="reductions_pooled",
                region_code=region_code,
                occurred_at=now,
                source_ref=serial_ref(row["id"], row["serial_start"], row["serial_end"]),
            )
        ],
        policy,
        now=now,
    )
    await repo.set_transfer(conn, row["id"], int(t.id))
    return msgspec.structs.replace(_block(row), transfer_id=int(t.id))


async def blocks(conn: Any) -> list[Block]:
    return [_block(r) for r in await repo.issuances(conn)]


async def block_by_key(conn: Any, request_key: str) -> Block | None:
    """The block issued for ``request_key``, if any (a replay answers it)."""
    row = await repo.issuance_by_key(conn, request_key)
    return None if row is None else _block(row)


async def lock(conn: Any) -> None:
    """Take the pooling's transaction lock (rewards.donations, before residents retire grams:
    a retirement and an issuance of one vintage never interleave)."""
    await repo.lock_pooling(conn)


async def retirement_room(conn: Any, vintage: int, zone: str) -> int | None:
    """Grams residents may still retire of ``vintage`` without retiring pooled ones (None: the
    vintage has no issuance, no limit); call after :func:`lock`, in the retirement's
    transaction."""
    return await repo.retirement_room(conn, vintage, zone)
