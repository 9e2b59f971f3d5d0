"""The enterprise API's offsets (``.../enterprises/{enterprise_id}/offsets``): buy pooled
reductions, retire them against a year's emissions within the cap (each retirement a public
certificate), and read holdings, purchases, retirements and the net emissions back. Thin
controllers over ``enterprises.offsets`` (docs/offsets.md). Both writes need an
``Idempotency-Key``: a retry with the same key and body answers the first, and the service's own
request key (the caller's scope and the key) makes a retry safe even past the header store."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import JSONBody, QueryParameter

from enterprises import offsets
from enterprises.offsets_schemas import (
    Holdings,
    NetEmissions,
    Purchase,
    PurchaseIn,
    Retirement,
    RetirementIn,
)
from kit.db import Tx
from server.enterprise.base import SCOPE, Caller, Guarded
from server.enterprise.errors import SCOPED, errors
from server.keyed import RequiredKey, ledger_policy, once
from server.settings import Settings

Year = Annotated[int, QueryParameter(ge=2000, le=2100)]


class OffsetsController(Guarded):
    """Pooled reductions bought and retired (enterprises.offsets)."""

    path = SCOPE + "/offsets"
    tags = ["offsets"]  # noqa: RUF012 (Litestar's class attribute)

    @post(
        "/purchases",
        status_code=201,
        summary=(
            "购买汇集的居民减排量：项目持有的最小空闲序列号，记录价格（不处理付款） · "
            "Buy pooled reductions: the programme's lowest free serials, the price recorded "
            "(no payment)"
        ),
        description=(
            "必须带 `Idempotency-Key`。一个序列号即一克；所购序列号可能跨越多个签发区块。\n\n"
            "Send `Idempotency-Key`. One serial is one gram; the serials bought may span "
            "several issued blocks."
        ),
        responses=errors(*SCOPED, "idempotency_key_reused", "offset_supply_short"),
    )
    async def buy(
        self,
        request: Request[Any, Any, Any],
        caller: NamedDependency[Caller],
        tx: NamedDependency[Tx],
        settings: NamedDependency[Settings],
        data: JSONBody[PurchaseIn],
        idempotency_key: RequiredKey,
    ) -> Response[Purchase]:
        async def run() -> Purchase:
            return await offsets.buy(
                tx,
                ledger_policy(settings),
                request_key=f"{caller.idempotency_scope}:{idempotency_key}",
                enterprise_id=caller.enterprise_id,
                quantity_g=data.quantity_g,
                price_yuan_per_t=data.price_yuan_per_t,
            )

        return await once(
            request,
            tx,
            caller.idempotency_scope,
            idempotency_key,
            data,
            run,
            Purchase,
            status=201,
        )

    @post(
        "/retirements",
        status_code=201,
        summary=(
            "注销持有的抵消量以抵消某年排放（上限内），得到一张公开证书 · "
            "Retire held offsets against a year's emissions (within the cap): a public "
            "certificate"
        ),
        description=(
            "必须带 `Idempotency-Key`。注销最小的持有序列号；注销的序列号永远不能再转移。上限为"
            "该年排放量的一定比例（设置 `offset_cap_share`），减去已针对该年注销的量。证书地址见 "
            "`certificate_url`，区块封存后附带默克尔证明。\n\n"
            "Send `Idempotency-Key`. The lowest held serials are retired; retired serials never "
            "move again. The cap is a share of the year's emissions (setting "
            "`offset_cap_share`) less what was retired against the year already. The "
            "certificate is at `certificate_url`, with its Merkle proof once its block is sealed."
        ),
        responses=errors(
            *SCOPED, "idempotency_key_reused", "offset_holdings_short", "offset_cap_exceeded"
        ),
    )
    async def retire(
        self,
        request: Request[Any, Any, Any],
        caller: NamedDependency[Caller],
        tx: NamedDependency[Tx],
        settings: NamedDependency[Settings],
        data: JSONBody[RetirementIn],
        idempotency_key: RequiredKey,
    ) -> Response[Retirement]:
        async def run() -> Retirement:
            return await offsets.retire(
                tx,
                ledger_policy(settings),
                settings.enterprises,
                request_key=f"{caller.idempotency_scope}:{idempotency_key}",
                enterprise_id=caller.enterprise_id,
                quantity_g=data.quantity_g,
                period=data.period,
            )

        return await once(
            request,
            tx,
            caller.idempotency_scope,
            idempotency_key,
            data,
            run,
            Retirement,
            status=201,
        )

    @get(
        "/holdings",
        summary=(
            "持有和已注销的序列号段，最小的在前 · Serial ranges held and retired, lowest first"
        ),
        responses=errors(*SCOPED),
    )
    async def holdings(self, caller: NamedDependency[Caller]) -> Holdings:
        async with caller.pool.acquire() as conn:
            return await offsets.holdings(conn, caller.enterprise_id)

    @get(
        "/purchases",
        summary="购买记录，最新的在前 · Purchases, newest first",
        responses=errors(*SCOPED),
    )
    async def purchases(
        self,
        caller: NamedDependency[Caller],
        limit: Annotated[int, QueryParameter(ge=1, le=100)] = 20,
    ) -> list[Purchase]:
        async with caller.pool.acquire() as conn:
            return await offsets.purchases(conn, caller.enterprise_id, limit=limit)

    @get(
        "/retirements",
        summary=(
            "注销记录及其证书（可按年份筛选），最新的在前 · "
            "Retirements and their certificates (optionally of one year), newest first"
        ),
        responses=errors(*SCOPED),
    )
    async def retirements(
        self,
        caller: NamedDependency[Caller],
        period: Annotated[int | None, QueryParameter(ge=2000, le=2100)] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=100)] = 20,
    ) -> list[Retirement]:
        async with caller.pool.acquire() as conn:
            return await offsets.retirements(conn, caller.enterprise_id, period=period, limit=limit)

    @get(
        "/net",
        summary=(
            "某年的净排放：总排放、已注销的抵消量、净额及上限 · "
            "A year's net emissions: gross, offsets retired, net, and the cap"
        ),
        responses=errors(*SCOPED),
    )
    async def net(
        self, caller: NamedDependency[Caller], settings: NamedDependency[Settings], year: Year
    ) -> NetEmissions:
        async with caller.pool.acquire() as conn:
            return await offsets.net(conn, caller.enterprise_id, year, settings.enterprises)
