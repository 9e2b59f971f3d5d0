"""Targets and emission rights, the government's side (``/api/gov/v1/admin/allowances/...``,
GOV_ADMIN only; docs/allowances.md): set a region's control target for a year, allocate it
(historical share, benchmark x output, or by hand; the method recorded), close the period, and
list periods, allocations and every settled transfer between enterprises. Each write is audited
in its transaction (``reporting.allowances_admin``) and needs an ``Idempotency-Key``. In the
``government`` approval mode (TANPUHUI_ENTERPRISES_ALLOWANCE_APPROVAL, the default) a purchase
waits for an administrator: list the pending transfers, approve one (the legality checked
again, then the ledger transfer) or reject it with a reason (the offer open again)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from litestar import Controller, Request, Response, Router, get, post
from litestar.di import NamedDependency
from litestar.handlers import HTTPRouteHandler
from litestar.params import FromPath, JSONBody, QueryParameter

from enterprises.allowances_schemas import (
    Allocation,
    AllocationIn,
    Closed,
    Offer,
    OfferPage,
    Period,
    PeriodRef,
    RejectIn,
    TargetIn,
)
from kit.db import Tx
from points.schemas import utcnow
from reporting import allowances_admin
from server.gov.errors import document
from server.gov.guards import GOV_ADMIN, GovCaller, provide_gov_caller
from server.keyed import RequiredKey, ledger_policy, once
from server.settings import Settings

PREFIX = "/api/gov/v1/admin"
Region = Annotated[str, QueryParameter(pattern=r"^[1-9][0-9]{5}$", min_length=6, max_length=6)]
Year = Annotated[int, QueryParameter(ge=2000, le=2100)]


class AllowancesAdminController(Controller):
    path = "/allowances"
    tags = ["gov admin: allowances"]  # noqa: RUF012 (Litestar's class attribute)
    guards = [GOV_ADMIN]  # noqa: RUF012
    dependencies = {"gov_caller": provide_gov_caller}  # noqa: RUF012
    security = [{"BearerToken": []}]  # noqa: RUF012

    @get("/periods", summary="控制目标（按区域与年份） · Control targets, by region and year")
    async def list_periods(
        self,
        pool: NamedDependency[Any],
        year: Annotated[int | None, QueryParameter(ge=2000, le=2100)] = None,
    ) -> list[Period]:
        async with pool.acquire() as conn:
            return await allowances_admin.periods(conn, year)

    @post(
        "/targets",
        status_code=201,
        summary=(
            "设定或调整某区域某年的碳排放控制目标（记入审计日志） · "
            "Set or revise a region's control target for a year (audited)"
        ),
        description=(
            "必须带 `Idempotency-Key`。目标不得低于已分配量（`allowance_target_below_allocated`），"
            "期间关闭后不再变化（`allowance_period_closed`）。\n\n"
            "Send `Idempotency-Key`. Never below what is allocated "
            "(`allowance_target_below_allocated`); fixed once the period is closed "
            "(`allowance_period_closed`)."
        ),
    )
    async def set_target(
        self,
        request: Request[Any, Any, Any],
        gov_caller: NamedDependency[GovCaller],
        tx: NamedDependency[Tx],
        data: JSONBody[TargetIn],
        idempotency_key: RequiredKey,
    ) -> Response[Period]:
        async def run() -> Period:
            return await allowances_admin.set_target(tx, data, actor=gov_caller.actor)

        return await once(
            request,
            tx,
            gov_caller.idempotency_scope,
            idempotency_key,
            data,
            run,
            Period,
            status=201,
        )

    @post(
        "/allocations",
        status_code=201,
        summary=(
            "按历史份额、基准×产出或手工分配控制目标，发放配额（记入审计日志） · "
            "Allocate the target by historical share, benchmark x output or by hand, issuing "
            "ALLOWANCE_G (audited)"
        ),
        description=(
            "必须带 `Idempotency-Key`。合计不超过目标的剩余量（`allowance_exceeds_target`）。\n\n"
            "Send `Idempotency-Key`. The sum never exceeds what is left of the target "
            "(`allowance_exceeds_target`); each line is a ledger transfer from "
            "`system:allowance_issuance` to the enterprise."
        ),
    )
    async def allocate(
        self,
        request: Request[Any, Any, Any],
        gov_caller: NamedDependency[GovCaller],
        tx: NamedDependency[Tx],
        settings: NamedDependency[Settings],
        data: JSONBody[AllocationIn],
        idempotency_key: RequiredKey,
    ) -> Response[Allocation]:
        async def run() -> Allocation:
            return await allowances_admin.allocate(
                tx, ledger_policy(settings), settings.enterprises, data, actor=gov_caller.actor
            )

        return await once(
            request,
            tx,
            gov_caller.idempotency_scope,
            idempotency_key,
            data,
            run,
            Allocation,
            status=201,
        )

    @get("/allocations", summary="某期间的分配记录与明细 · A period's allocation rounds and lines")
    async def list_allocations(
        self, pool: NamedDependency[Any], region_code: Region, year: Year
    ) -> list[Allocation]:
        async with pool.acquire() as conn:
            return await allowances_admin.allocations(conn, region_code, year)

    @post(
        "/periods/close",
        status_code=200,
        summary=(
            "关闭期间：撤回未成交报价，为各企业清缴配额（记入审计日志） · "
            "Close a period: open offers withdrawn, each enterprise's allowance surrendered "
            "(audited)"
        ),
    )
    async def close_period(
        self,
        request: Request[Any, Any, Any],
        gov_caller: NamedDependency[GovCaller],
        tx: NamedDependency[Tx],
        settings: NamedDependency[Settings],
        data: JSONBody[PeriodRef],
        idempotency_key: RequiredKey,
    ) -> Response[Closed]:
        async def run() -> Closed:
            return await allowances_admin.close(
                tx, ledger_policy(settings), settings.enterprises, data, actor=gov_caller.actor
            )

        return await once(
            request,
            tx,
            gov_caller.idempotency_scope,
            idempotency_key,
            data,
            run,
            Closed,
            status=200,
        )

    @get(
        "/transfers",
        summary=(
            "全部已成交的排放权转让（新的在前） · "
            "Every settled emission-right transfer, newest first"
        ),
    )
    async def list_transfers(
        self,
        pool: NamedDependency[Any],
        region_code: Annotated[
            str | None, QueryParameter(pattern=r"^[1-9][0-9]{5}$", min_length=6, max_length=6)
        ] = None,
        year: Annotated[int | None, QueryParameter(ge=2000, le=2100)] = None,
        cursor: Annotated[str | None, QueryParameter(min_length=1, max_length=200)] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=200)] = 50,
    ) -> OfferPage:
        async with pool.acquire() as conn:
            return await allowances_admin.transfers(
                conn, region_code=region_code, year=year, cursor=cursor, limit=limit
            )

    @get(
        "/approvals",
        summary=(
            "待审批的排放权转让（按申请先后） · "
            "Emission-right transfers awaiting approval, oldest request first"
        ),
    )
    async def list_approvals(
        self,
        pool: NamedDependency[Any],
        region_code: Annotated[
            str | None, QueryParameter(pattern=r"^[1-9][0-9]{5}$", min_length=6, max_length=6)
        ] = None,
        year: Annotated[int | None, QueryParameter(ge=2000, le=2100)] = None,
    ) -> list[Offer]:
        async with pool.acquire() as conn:
            return await allowances_admin.pending(conn, region_code=region_code, year=year)

    @post(
        "/approvals/{offer_id:uuid}/approve",
        status_code=200,
        summary=(
            "批准一笔待审批的转让：再次合法性检查后以账本转账结算（记入审计日志） · "
            "Approve a pending transfer: legality checked again, then settled by a ledger "
            "transfer (audited)"
        ),
        description=(
            "必须带 `Idempotency-Key`。检查不通过时答复其代码，转让仍待审批（可驳回）。\n\n"
            "Send `Idempotency-Key`. A check that fails answers its code and changes nothing: "
            "the transfer stays pending (reject it, or approve it later). Two approvals at once "
            "settle it once (`allowance_approval_not_pending`)."
        ),
    )
    async def approve(
        self,
        request: Request[Any, Any, Any],
        gov_caller: NamedDependency[GovCaller],
        tx: NamedDependency[Tx],
        settings: NamedDependency[Settings],
        offer_id: FromPath[uuid.UUID],
        idempotency_key: RequiredKey,
    ) -> Response[Offer]:
        async def run() -> Offer:
            return await allowances_admin.approve(
                tx,
                ledger_policy(settings),
                settings.enterprises,
                offer_id,
                actor=gov_caller.actor,
                now=utcnow(),
            )

        return await once(
            request, tx, gov_caller.idempotency_scope, idempotency_key, None, run, Offer, status=200
        )

    @post(
        "/approvals/{offer_id:uuid}/reject",
        status_code=200,
        summary=(
            "驳回一笔待审批的转让并说明理由：报价重新开放（记入审计日志） · "
            "Reject a pending transfer with a reason: the offer is open again (audited)"
        ),
        description=(
            "必须带 `Idempotency-Key`。买方在其转让记录中看到驳回理由。\n\n"
            "Send `Idempotency-Key`. The buyer reads the reason in its transfers listing."
        ),
    )
    async def reject(
        self,
        request: Request[Any, Any, Any],
        gov_caller: NamedDependency[GovCaller],
        tx: NamedDependency[Tx],
        offer_id: FromPath[uuid.UUID],
        data: JSONBody[RejectIn],
        idempotency_key: RequiredKey,
    ) -> Response[Offer]:
        async def run() -> Offer:
            return await allowances_admin.reject(tx, offer_id, data, actor=gov_caller.actor)

        return await once(
            request, tx, gov_caller.idempotency_scope, idempotency_key, data, run, Offer, status=200
        )


_KEYED = ("idempotency_key_reused",)
_LEGALITY = (
    "allowance_surplus_insufficient",
    "allowance_surrendered",
    "allowance_region_mismatch",
    "allowance_other_region",
    "allowance_own_offer",
)
# Each operation's own codes in the served OpenAPI, beside the guard's and validation's.
document(
    [h for h in vars(AllowancesAdminController).values() if isinstance(h, HTTPRouteHandler)],
    {
        "set_target": ("allowance_period_closed", "allowance_target_below_allocated", *_KEYED),
        "allocate": (
            "allowance_period_not_found",
            "allowance_period_closed",
            "allowance_exceeds_target",
            "allowance_nothing_to_allocate",
            "allowance_enterprise_outside_region",
            "allowance_other_region",
            *_KEYED,
        ),
        "list_allocations": ("allowance_period_not_found",),
        "close_period": ("allowance_period_not_found", "allowance_period_closed", *_KEYED),
        "list_transfers": ("cursor_invalid",),
        "approve": (
            "allowance_offer_not_found",
            "allowance_approval_not_pending",
            "allowance_period_closed",
            *_LEGALITY,
            *_KEYED,
        ),
        "reject": ("allowance_offer_not_found", "allowance_approval_not_pending", *_KEYED),
    },
)

gov_allowances_router = Router(path=PREFIX, route_handlers=[AllowancesAdminController])
