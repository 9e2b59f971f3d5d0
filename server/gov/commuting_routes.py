"""The administration API's funding of enterprises' points (``/api/gov/v1/admin/enterprises/
{enterprise_id}/points``, GOV_ADMIN only): an administrator records points an enterprise bought
off-system (its employee commuting programmes pay their bonuses from them). One call of
``reporting.commuting.fund_enterprise``, which moves the points on the ledger and writes the
audit entry in the same transaction (docs/commuting.md)."""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Controller, Request, Response, Router, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody

from kit.db import Tx
from reporting import commuting as commuting_reports
from reporting.commuting import Funded, FundingIn
from server.gov.guards import GOV_ADMIN, GovCaller, provide_gov_caller
from server.keyed import RequiredKey, ledger_policy, once
from server.settings import Settings

PREFIX = "/api/gov/v1/admin"


class EnterprisePointsController(Controller):
    guards = [GOV_ADMIN]  # noqa: RUF012 (Litestar's class attribute)
    dependencies = {"gov_caller": provide_gov_caller}  # noqa: RUF012
    security = [{"BearerToken": []}]  # noqa: RUF012
    path = "/enterprises/{enterprise_id:uuid}/points"
    tags = ["gov admin: merchants, projects, enterprises"]  # noqa: RUF012

    @post(
        "",
        status_code=201,
        summary=(
            "记录企业在系统外购买的积分，记入其积分账户（审计） · "
            "Record points an enterprise bought off-system, credited to its POINT account "
            "(audited)"
        ),
        description=(
            "积分来自带发行标志的系统账户 `system:enterprise_points_sales`；企业的员工通勤计划"
            "从该账户支付奖励。必须带 `Idempotency-Key`。\n\n"
            "The points come from the flagged issuance-like account "
            "`system:enterprise_points_sales`; the enterprise's commuting programmes pay their "
            "bonuses from them. `Idempotency-Key` is required."
        ),
    )
    async def fund(
        self,
        request: Request[Any, Any, Any],
        gov_caller: NamedDependency[GovCaller],
        tx: NamedDependency[Tx],
        settings: NamedDependency[Settings],
        enterprise_id: FromPath[uuid.UUID],
        data: JSONBody[FundingIn],
        idempotency_key: RequiredKey,
    ) -> Response[Funded]:
        policy = ledger_policy(settings)

        async def run() -> Funded:
            return await commuting_reports.fund_enterprise(
                tx,
                policy,
                enterprise_id,
                data,
                actor=gov_caller.actor,
                request_key=f"{gov_caller.user_id}:{idempotency_key}",
                region_code=settings.region_code,
            )

        return await once(
            request,
            tx,
            gov_caller.idempotency_scope,
            idempotency_key,
            data,
            run,
            Funded,
            status=201,
        )


gov_commuting_router = Router(path=PREFIX, route_handlers=[EnterprisePointsController])

__all__ = ["gov_commuting_router"]
