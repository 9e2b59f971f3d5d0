"""The public API (``/api/public/v1``): what anyone may read without signing in. The
journal's signed checkpoints and its blocks, so that third parties can keep checkpoints and
later check that the ledger still extends them (docs/ledger.md, "The witness"); the
public-welfare projects' pages and the donation certificates, each with the proof that its
transfer is in the journal (docs/rewards.md, "Donation")."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Router, get
from litestar.di import NamedDependency
from litestar.params import Parameter, PathParameter, QueryParameter

from points import journal, witness
from rewards import certificates, projects
from rewards.donation_schemas import Certificate, Project, ProjectPage
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


# Donation (rewards/): projects' public pages and certificates, checkable offline -------------


@get(
    "/projects",
    summary="公益项目及其公开计数和进度（游标分页） · Public-welfare projects, counters, progress",
)
async def projects_list(
    pool: NamedDependency[Any],
    cursor: Annotated[str | None, QueryParameter(max_length=512)] = None,
    limit: Annotated[int, QueryParameter(ge=1, le=100)] = 20,
    open_only: Annotated[bool, QueryParameter(name="open")] = False,
) -> ProjectPage:
    """Latest start first. ``open=true``: only those taking donations now."""
    async with pool.acquire() as conn:
        return await projects.page(conn, cursor=cursor, limit=limit, open_only=open_only)


@get(
    "/projects/{project_id:str}",
    summary="一个公益项目：捐赠积分、注销克数、捐赠人数和进度 · One project: totals and progress",
)
async def project_page(
    pool: NamedDependency[Any],
    project_id: Annotated[str, PathParameter(min_length=1, max_length=64)],
) -> Project:
    async with pool.acquire() as conn:
        return await projects.get(conn, project_id)


@get(
    "/certificates/{serial:str}",
    summary=(
        "捐赠证书及其默克尔包含证明、区块头和见证签名（无需登录） · "
        "A donation certificate with its Merkle proof, block header and witness signature"
    ),
)
async def certificate(
    pool: NamedDependency[Any],
    settings: NamedDependency[Settings],
    serial: Annotated[str, PathParameter(min_length=1, max_length=40)],
) -> Certificate:
    """The donor is a pseudonym; no personal data. Save the answer as a file and check it
    offline with ``python -m points.verify certificate.json`` (standard library only). While
    the transfer's block is not sealed yet (a few seconds), ``status`` is ``pending`` and the
    proof absent: ask again."""
    async with pool.acquire() as conn:
        return await certificates.certificate(
            conn,
            serial,
            key=witness.settings_key(settings),
            origin=witness.origin_of(settings.region_code),
        )


public_router = Router(
    path="/api/public/v1",
    route_handlers=[
        journal_checkpoint,
        journal_block,
        projects_list,
        project_page,
        certificate,
    ],
    tags=["public"],
)
