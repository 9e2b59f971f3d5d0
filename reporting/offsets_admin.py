"""Issuing pooled reductions, an administrator's act (docs/offsets.md): the gov admin API
(``POST /api/gov/v1/admin/offsets/issuances``) and ``tanpuhui offsets issue`` both call
:func:`issue`, which pools the grams through the owner (``enterprises.pooling``) and writes the
audit entry (reporting/audit.py) in the same transaction, as every act of reporting.admin."""

from __future__ import annotations

from typing import Any

from enterprises import pooling
from enterprises.offsets_schemas import IssuanceIn
from kit.db import Tx
from points.schemas import PointsPolicy
from reporting import audit

ACTION = "offsets.issue"


async def issue(
    tx: Tx,
    policy: PointsPolicy,
    spec: IssuanceIn,
    *,
    request_key: str,
    region_code: str,
    actor: str,
) -> pooling.Block:
    """Pool ``spec``'s grams into a new serial block, audited (a replay of ``request_key``
    answers the original block and records nothing new)."""
    before = await pooling.block_by_key(tx.conn, request_key)
    block = await pooling.issue(
        tx,
        policy,
        request_key=request_key,
        methodology=spec.methodology,
        vintage=spec.vintage,
        amount=spec.amount,
        region_code=region_code,
    )
    if before is None:
        await audit.record(tx, actor=actor, action=ACTION, target=str(block.id), after=block)
    return block


async def blocks(conn: Any) -> list[pooling.Block]:
    return await pooling.blocks(conn)
