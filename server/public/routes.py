"""The public API (``/api/public/v1``): what anyone may read without signing in. Today the
journal's signed checkpoints and its blocks, so that third parties can keep checkpoints and
later check that the ledger still extends them (docs/ledger.md, "The witness")."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Router, get
from litestar.di import NamedDependency
from litestar.params import Parameter

from points import journal, witness
from server.settings import Settings

_MAX_SEQ = 2**63 - 1


@get(
    "/journal/checkpoint",
    summary=(
        "账本日志头部的签名检查点（Ed25519）：保存它以发现日后的改写 · "
        "The journal's head, signed (Ed25519): keep it to detect a later rewrite"
    ),
)
async def journal_checkpoint(
    pool: NamedDependency[Any], settings: NamedDependency[Settings]
) -> witness.Checkpoint:
    """Sequence number and hash of the last sealed block, the time, and an Ed25519 signature
    over them by the programme's witness key (not held by the database). The text signed is
    documented in docs/ledger.md; pin ``public_key`` out of band."""
    async with pool.acquire() as conn:
        return await journal.checkpoint(
            conn, witness.settings_key(settings), witness.origin_of(settings.region_code)
        )


@get(
    "/journal/blocks/{seq:int}",
    summary="按序号读取账本日志的一个封存区块 · A sealed block of the journal, by sequence number",
)
async def journal_block(
    pool: NamedDependency[Any],
    seq: Annotated[int, Parameter(ge=1, le=_MAX_SEQ)],
) -> journal.PublishedBlock:
    async with pool.acquire() as conn:
        return await journal.published_block(conn, seq)


public_router = Router(
    path="/api/public/v1", route_handlers=[journal_checkpoint, journal_block], tags=["public"]
)
