"""The enterprise API's account kinds (docs/account_kinds.md): the catalogue of kinds with
their activity schemas and grading rules, and an enterprise's year account of its kind (the
activity declared, validated by the kind's schema, accounted by its method and graded). Thin
controllers over ``enterprises.kinds.service``."""

from __future__ import annotations

from typing import Annotated

from litestar import get, put
from litestar.di import NamedDependency
from litestar.params import JSONBody, QueryParameter

from enterprises.factors import Basis
from enterprises.kinds import service as kinds
from enterprises.kinds.schemas import KindAccount, KindAccountIn, KindCatalogue
from kit.db import Tx
from server.enterprise.base import SCOPE, Caller, Guarded
from server.enterprise.errors import SCOPED, errors
from server.settings import Settings

Year = Annotated[int, QueryParameter(ge=2000, le=2100, description="The account's calendar year.")]


class KindsController(Guarded):
    """The account kinds (enterprises/account_kinds.json) and an enterprise's kind accounts."""

    path = SCOPE
    tags = ["account kinds"]  # noqa: RUF012 (Litestar's class attribute)

    @get(
        "/account-kinds",
        summary=(
            "账户类型：各类的活动数据字段、核算方法、强度分母与分级规则 · "
            "Account kinds: each kind's activity fields, method, intensity denominator and "
            "grading rule"
        ),
        responses=errors(*SCOPED),
    )
    async def list_kinds(self, caller: NamedDependency[Caller]) -> KindCatalogue:
        async with caller.pool.acquire() as conn:
            return await kinds.catalogue_for(conn, caller.enterprise_id)

    @put(
        "/kind-accounts",
        summary=(
            "申报某年的活动数据（按企业账户类型校验），核算排放、强度与等级；整年替换 · "
            "Declare a year's activity (validated by the enterprise's kind), accounted into "
            "emissions, intensity and grade; it replaces the year's"
        ),
        description=(
            "字段见 `GET /account-kinds`；不合字段的数据以 `validation_failed` 逐字段拒绝"
            "（`activity.<字段>`）。同样内容再次申报不变。工业企业按能源报告核算、按行业分级，"
            "不在此申报。\n\n"
            "The fields are the kind's (`GET /account-kinds`); a refused field is named in "
            "`errors` (`activity.<field>`) of a `validation_failed`. The same activity again "
            "changes nothing (`recorded_at` stays). Grid electricity uses the year's factor "
            "under the programme's basis, fuels the factor library's. Industrial enterprises "
            "are accounted from their activity reports and graded against their industry."
        ),
        responses=errors(*SCOPED, "kind_not_self_reported", "factor_missing"),
    )
    async def declare(
        self,
        caller: NamedDependency[Caller],
        tx: NamedDependency[Tx],
        settings: NamedDependency[Settings],
        data: JSONBody[KindAccountIn],
    ) -> KindAccount:
        return await kinds.record(tx, caller.enterprise_id, data, Basis.of(settings.enterprises))

    @get(
        "/kind-accounts",
        summary="各年的类型账户，最近的在前 · The enterprise's kind accounts, newest year first",
        responses=errors(*SCOPED),
    )
    async def list_accounts(self, caller: NamedDependency[Caller]) -> list[KindAccount]:
        async with caller.pool.acquire() as conn:
            return await kinds.accounts(conn, caller.enterprise_id)

    @get(
        "/kind-account",
        summary=(
            "某年的类型账户：排放（按来源及因子）、强度及其分母、等级 · "
            "A year's kind account: emissions (by source, with factors), intensity with its "
            "denominator, grade"
        ),
        responses=errors(*SCOPED, "not_found"),
    )
    async def one(self, caller: NamedDependency[Caller], year: Year) -> KindAccount:
        async with caller.pool.acquire() as conn:
            return await kinds.account(conn, caller.enterprise_id, year)
