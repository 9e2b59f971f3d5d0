"""The programme's offset issuances (``/api/gov/v1/admin/offsets/issuances``, GOV_ADMIN only):
pool residents' verified grams of a vintage and methodology into a serial block (audited, in
the same transaction: reporting.offsets_admin) and list the blocks issued (docs/offsets.md)."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, Router, get, post
from litestar.di import NamedDependency
from litestar.params import JSONBody

from enterprises.offsets_schemas import IssuanceIn
from enterprises.pooling import Block
from kit.db import Tx
from reporting import offsets_admin
from server.gov.guards import GOV_ADMIN, GovCaller, provide_gov_caller
from server.keyed import RequiredKey, ledger_policy, once
from server.settings import Settings

PREFIX = "/api/gov/v1/admin"


class OffsetIssuancesController(Controller):
    path = "/offsets/issuances"
    tags = ["gov admin: offsets"]  # noqa: RUF012 (Litestar's class attribute)
    guards = [GOV_ADMIN]  # noqa: RUF012
    dependencies = {"gov_caller": provide_gov_caller}  # noqa: RUF012
    security = [{"BearerToken": []}]  # noqa: RUF012

    @get("", summary="已签发的汇集减排量区块，按序列号 · Issued serial blocks, by serial")
    async def list_blocks(self, pool: NamedDependency[Any]) -> list[Block]:
        async with pool.acquire() as conn:
            return await offsets_admin.blocks(conn)

    @post(
        "",
        status_code=201,
        summary=(
            "将某年份、某方法学的居民核证减排量汇集为一个序列号区块（记入审计日志） · "
            "Pool residents' verified grams of a vintage and methodology into a serial block "
            "(audited)"
        ),
        description=(
            "必须带 `Idempotency-Key`。不带 `amount`：汇集所有尚可汇集的克数；0 或超过可汇集量："
            "`offset_pool_empty`。\n\n"
            "Send `Idempotency-Key`. Without `amount`: every gram that may still be pooled; "
            "zero or more than that: `offset_pool_empty` (`available_g`)."
        ),
    )
    async def issue(
        self,
        request: Request[Any, Any, Any],
        gov_caller: NamedDependency[GovCaller],
        tx: NamedDependency[Tx],
        settings: NamedDependency[Settings],
        data: JSONBody[IssuanceIn],
        idempotency_key: RequiredKey,
    ) -> Response[Block]:
        policy = ledger_policy(settings)

        async def run() -> Block:
            return await offsets_admin.issue(
                tx,
                policy,
                data,
                request_key=f"{gov_caller.idempotency_scope}:{idempotency_key}",
                region_code=settings.region_code,
                actor=gov_caller.actor,
            )

        return await once(
            request,
            tx,
            gov_caller.idempotency_scope,
            idempotency_key,
            data,
            run,
            Block,
            status=201,
        )


gov_offsets_router = Router(path=PREFIX, route_handlers=[OffsetIssuancesController])
