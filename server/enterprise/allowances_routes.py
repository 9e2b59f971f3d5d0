"""The enterprise API's emission rights (``.../enterprises/{enterprise_id}/allowance``): the
allowance of a year (allocated, held, the year's emissions), offers of surplus for sale, the
region's open offers, purchases, every settled transfer (both sides) and the compliance status.
Thin controllers over ``enterprises.allowances`` (docs/allowances.md). Writes need an
``Idempotency-Key``: a retry with the same key and body answers the first."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from litestar import Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, QueryParameter

from enterprises import allowances
from enterprises.allowances_schemas import (
    Allowance,
    Compliance,
    Offer,
    OfferIn,
    OfferPage,
    Surrender,
    SurrenderIn,
)
from kit.db import Tx
from points.schemas import utcnow
from server.enterprise.base import SCOPE, Caller, Guarded
from server.enterprise.errors import SCOPED, errors
from server.keyed import RequiredKey, ledger_policy, once
from server.settings import Settings

Year = Annotated[int, QueryParameter(ge=2000, le=2100)]
OptionalYear = Annotated[int | None, QueryParameter(ge=2000, le=2100)]
Cursor = Annotated[str | None, QueryParameter(min_length=1, max_length=200)]
Limit = Annotated[int, QueryParameter(ge=1, le=allowances.PAGE_MAX)]


class AllowancesController(Guarded):
    """Allowance held, offered, bought and surrendered (enterprises.allowances)."""

    path = SCOPE + "/allowance"
    tags = ["emission rights"]  # noqa: RUF012 (Litestar's class attribute)

    @get(
        "",
        summary=(
            "某年的配额：已分配、持有、当年排放与可出售余量 · "
            "The allowance of a year: allocated, held, the year's emissions and the surplus"
        ),
        responses=errors(*SCOPED),
    )
    async def allowance(
        self, caller: NamedDependency[Caller], settings: NamedDependency[Settings], year: Year
    ) -> Allowance:
        async with caller.pool.acquire() as conn:
            return await allowances.allowance(
                conn, settings.enterprises, caller.enterprise_id, year
            )

    @post(
        "/offers",
        status_code=201,
        summary=(
            "挂出富余配额（合法性检查：余量、期间开放、未清缴） · "
            "Offer surplus allowance for sale (legality checked: surplus, period open, not "
            "surrendered)"
        ),
        description=(
            "必须带 `Idempotency-Key`。数量不得超过持有配额减去当年排放与其他未成交报价。\n\n"
            "Send `Idempotency-Key`. The quantity may not exceed the allowance held less the "
            "year's emissions less the other open offers (`allowance_surplus_insufficient`)."
        ),
        responses=errors(
            *SCOPED,
            "idempotency_key_reused",
            "allowance_surplus_insufficient",
            "allowance_period_closed",
            "allowance_surrendered",
        ),
    )
    async def make_offer(
        self,
        request: Request[Any, Any, Any],
        caller: NamedDependency[Caller],
        tx: NamedDependency[Tx],
        settings: NamedDependency[Settings],
        data: JSONBody[OfferIn],
        idempotency_key: RequiredKey,
    ) -> Response[Offer]:
        async def run() -> Offer:
            return await allowances.make_offer(
                tx, settings.enterprises, caller.enterprise_id, data, now=utcnow()
            )

        return await once(
            request, tx, caller.idempotency_scope, idempotency_key, data, run, Offer, status=201
        )

    @get(
        "/offers",
        summary=("本区域的未成交报价（旧的在前） · The region's open offers, oldest first"),
        responses=errors(*SCOPED, "cursor_invalid"),
    )
    async def open_offers(
        self,
        caller: NamedDependency[Caller],
        year: OptionalYear = None,
        cursor: Cursor = None,
        limit: Limit = 50,
    ) -> OfferPage:
        async with caller.pool.acquire() as conn:
            return await allowances.open_offers(
                conn, caller.enterprise_id, year=year, cursor=cursor, limit=limit
            )

    @get(
        "/my-offers",
        summary="本企业挂出的报价 · The enterprise's own offers, newest first",
        responses=errors(*SCOPED),
    )
    async def my_offers(
        self, caller: NamedDependency[Caller], year: OptionalYear = None
    ) -> list[Offer]:
        async with caller.pool.acquire() as conn:
            return await allowances.my_offers(conn, caller.enterprise_id, year)

    @post(
        "/offers/{offer_id:uuid}/purchase",
        status_code=201,
        summary=(
            "购买一份报价（整份；合法性检查后以账本转账结算，或待政府审批） · "
            "Buy an offer whole (legality checked, then settled by a ledger transfer, or "
            "pending the government's approval)"
        ),
        description=(
            "必须带 `Idempotency-Key`；同一报价只能成交一次。政府审批模式下（默认），"
            "报价进入 `pending_approval`，由政府管理员批准（再次检查后结算）"
            "或驳回（报价重新开放）。\n\n"
            "Send `Idempotency-Key`; an offer is bought once only, however many buy at once. "
            "In the government approval mode (the default, "
            "`TANPUHUI_ENTERPRISES_ALLOWANCE_APPROVAL`) the answer is the offer in "
            "`pending_approval` with the buyer recorded: no allowance moves until a government "
            "administrator approves it (the checks run again, then the ledger transfer) or "
            "rejects it (the offer is open again; the reason in `approval`)."
        ),
        responses=errors(
            *SCOPED,
            "idempotency_key_reused",
            "allowance_offer_not_found",
            "allowance_offer_not_open",
            "allowance_own_offer",
            "allowance_region_mismatch",
            "allowance_other_region",
            "allowance_period_closed",
            "allowance_surrendered",
            "allowance_surplus_insufficient",
        ),
    )
    async def buy(
        self,
        request: Request[Any, Any, Any],
        caller: NamedDependency[Caller],
        tx: NamedDependency[Tx],
        settings: NamedDependency[Settings],
        offer_id: FromPath[uuid.UUID],
        idempotency_key: RequiredKey,
    ) -> Response[Offer]:
        async def run() -> Offer:
            return await allowances.buy(
                tx,
                ledger_policy(settings),
                settings.enterprises,
                caller.enterprise_id,
                offer_id,
                now=utcnow(),
            )

        return await once(
            request, tx, caller.idempotency_scope, idempotency_key, None, run, Offer, status=201
        )

    @post(
        "/offers/{offer_id:uuid}/withdraw",
        status_code=200,
        summary="撤回本企业的未成交报价 · Withdraw one of the enterprise's open offers",
        responses=errors(
            *SCOPED,
            "idempotency_key_reused",
            "allowance_offer_not_found",
            "allowance_offer_not_open",
        ),
    )
    async def withdraw(
        self,
        request: Request[Any, Any, Any],
        caller: NamedDependency[Caller],
        tx: NamedDependency[Tx],
        offer_id: FromPath[uuid.UUID],
        idempotency_key: RequiredKey,
    ) -> Response[Offer]:
        async def run() -> Offer:
            return await allowances.withdraw_offer(tx, caller.enterprise_id, offer_id, now=utcnow())

        return await once(
            request, tx, caller.idempotency_scope, idempotency_key, None, run, Offer, status=200
        )

    @get(
        "/transfers",
        summary=(
            "本企业的转让记录：已成交、待审批与被驳回的（买卖双方，新的在前） · "
            "The enterprise's transfers, either side, newest first: settled, pending approval "
            "and rejected (with the reason, in `approval`)"
        ),
        responses=errors(*SCOPED, "cursor_invalid"),
    )
    async def transfers(
        self,
        caller: NamedDependency[Caller],
        year: OptionalYear = None,
        cursor: Cursor = None,
        limit: Limit = 50,
    ) -> OfferPage:
        async with caller.pool.acquire() as conn:
            return await allowances.transfers(
                conn, enterprise_id=caller.enterprise_id, year=year, cursor=cursor, limit=limit
            )

    @get(
        "/compliance",
        summary=(
            "履约状态：排放量对比持有与清缴的配额及已注销的抵消量 · "
            "Compliance: emissions against allowance held and surrendered, and offsets retired"
        ),
        responses=errors(*SCOPED),
    )
    async def compliance(
        self, caller: NamedDependency[Caller], settings: NamedDependency[Settings], year: Year
    ) -> Compliance:
        async with caller.pool.acquire() as conn:
            return await allowances.compliance(
                conn, settings.enterprises, caller.enterprise_id, year
            )

    @post(
        "/surrender",
        status_code=201,
        summary=(
            "清缴某年配额（排放量减去已注销的抵消量；此后不再交易该年配额） · "
            "Surrender a year's allowance (emissions less offsets retired; no more trading "
            "of that year)"
        ),
        description=(
            "必须带 `Idempotency-Key`。未成交报价先撤回。\n\n"
            "Send `Idempotency-Key`. Open offers are withdrawn first; surrendered allowance "
            "never leaves `system:allowance_surrendered`."
        ),
        responses=errors(
            *SCOPED,
            "idempotency_key_reused",
            "allowance_period_not_found",
            "allowance_period_closed",
            "allowance_surrendered",
        ),
    )
    async def surrender(
        self,
        request: Request[Any, Any, Any],
        caller: NamedDependency[Caller],
        tx: NamedDependency[Tx],
        settings: NamedDependency[Settings],
        data: JSONBody[SurrenderIn],
        idempotency_key: RequiredKey,
    ) -> Response[Surrender]:
        async def run() -> Surrender:
            return await allowances.surrender(
                tx,
                ledger_policy(settings),
                settings.enterprises,
                caller.enterprise_id,
                data.year,
                now=utcnow(),
            )

        return await once(
            request, tx, caller.idempotency_scope, idempotency_key, data, run, Surrender, status=201
        )
