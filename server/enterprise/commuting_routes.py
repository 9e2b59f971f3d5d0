"""The enterprise API's employee commuting programmes
(``.../enterprises/{enterprise_id}/commuting-programmes``): create a programme (bonus rule,
employee codes, invitation link), add codes, renew the invitation, read the employees' commuting
only as protected totals of current members, and the bonus runs. Thin controllers over
``enterprises.commuting`` and ``reporting.commuting`` (docs/commuting.md)."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated, Any

import msgspec
from litestar import Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, QueryParameter

from enterprises import commuting
from enterprises.commuting_schemas import (
    Aggregates,
    BonusRun,
    CodesAdded,
    CodesIn,
    Invitation,
    Programme,
    ProgrammeCreated,
    ProgrammeIn,
)
from kit import idempotency
from kit.db import Tx
from reporting import commuting as commuting_reports
from server.enterprise.base import SCOPE, Caller, Guarded, IdempotencyKey, digest
from server.enterprise.errors import SCOPED, errors
from server.settings import Settings

Month = Annotated[
    str, QueryParameter(pattern=r"^20[0-9]{2}-(0[1-9]|1[0-2])$", min_length=7, max_length=7)
]


def _month(value: str) -> date:
    return date(int(value[:4]), int(value[5:7]), 1)


class CommutingController(Guarded):
    """Employee commuting programmes (enterprises.commuting)."""

    path = SCOPE + "/commuting-programmes"
    tags = ["commuting"]  # noqa: RUF012 (Litestar's class attribute)

    @post(
        "",
        status_code=201,
        summary=(
            "创建员工通勤计划：奖励规则、员工码、邀请链接（令牌只在本应答中出现一次） · "
            "Create an employee commuting programme: bonus rule, employee codes, invitation "
            "link (its token is in this answer only)"
        ),
        description=(
            "规则中未给出的字段取默认值（× 1.2：奖励为行程积分的 0.2 倍，向下取整；地铁、公交、"
            "自行车、步行；工作日 07:00-10:00 和 16:30-20:00 出发）。奖励从企业自己的积分账户"
            "支付。同一 `Idempotency-Key` 的重试返回同一计划，但 `invitation_token` 为 null"
            "（服务器只保存其哈希；可重新生成邀请链接）。\n\n"
            "Rule fields left out take the documented default (x 1.2: the bonus is 0.2 x the "
            "trip's points, rounded down; metro, bus, bike, walk; trips starting 07:00-10:00 "
            "or 16:30-20:00 on working days). Bonuses are paid from the enterprise's own POINT "
            "account. A retry with the same `Idempotency-Key` answers the same programme with "
            "`invitation_token` null (the server keeps only its hash; renew the invitation)."
        ),
        responses=errors(*SCOPED, "commuting_programme_exists", "idempotency_key_reused"),
    )
    async def create(
        self,
        request: Request[Any, Any, Any],
        caller: NamedDependency[Caller],
        tx: NamedDependency[Tx],
        data: JSONBody[ProgrammeIn],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[ProgrammeCreated]:
        key, request_digest = idempotency_key, digest(request, data)
        if key:
            stored = await idempotency.replay(tx, caller.idempotency_scope, key, request_digest)
            if stored is not None:
                view = msgspec.json.decode(stored.body, type=ProgrammeCreated)
                return Response(content=view, status_code=stored.status)
        created = await commuting.create_programme(
            tx, caller.enterprise_id, data, created_by=caller.user_id
        )
        if key:
            # Remembered without the token: a secret is never stored in clear.
            kept = msgspec.structs.replace(created, invitation_token=None)
            await idempotency.remember(
                tx,
                caller.idempotency_scope,
                key,
                request_digest,
                201,
                msgspec.json.encode(kept),
            )
        return Response(content=created, status_code=201)

    @get(
        "",
        summary="员工通勤计划 · The enterprise's commuting programmes",
        responses=errors(*SCOPED),
    )
    async def list_programmes(self, caller: NamedDependency[Caller]) -> list[Programme]:
        async with caller.pool.acquire() as conn:
            return await commuting.programmes(conn, caller.enterprise_id)

    @get(
        "/{programme_id:uuid}",
        summary="一个员工通勤计划 · One commuting programme",
        responses=errors(*SCOPED, "commuting_programme_not_found"),
    )
    async def one(
        self, caller: NamedDependency[Caller], programme_id: FromPath[uuid.UUID]
    ) -> Programme:
        async with caller.pool.acquire() as conn:
            return await commuting.programme(conn, caller.enterprise_id, programme_id)

    @post(
        "/{programme_id:uuid}/employee-codes",
        status_code=200,
        summary=(
            "增发员工码（已有的不变；服务器只保存哈希） · "
            "Add employee codes (codes given before are unchanged; only their hashes are kept)"
        ),
        responses=errors(*SCOPED, "commuting_programme_not_found"),
    )
    async def add_codes(
        self,
        caller: NamedDependency[Caller],
        tx: NamedDependency[Tx],
        programme_id: FromPath[uuid.UUID],
        data: JSONBody[CodesIn],
    ) -> CodesAdded:
        return await commuting.add_codes(tx, caller.enterprise_id, programme_id, data.codes)

    @post(
        "/{programme_id:uuid}/invitation",
        status_code=200,
        summary=(
            "生成新的邀请链接令牌，旧链接立即失效 · "
            "Renew the invitation link's token: the previous link stops working at once"
        ),
        responses=errors(*SCOPED, "commuting_programme_not_found"),
    )
    async def renew_invitation(
        self,
        caller: NamedDependency[Caller],
        tx: NamedDependency[Tx],
        programme_id: FromPath[uuid.UUID],
    ) -> Invitation:
        return await commuting.new_invitation(tx, caller.enterprise_id, programme_id)

    @get(
        "/{programme_id:uuid}/aggregates",
        summary=(
            "同意的在册员工通勤合计（按月和方式），低于最小分组人数时不公布 · "
            "Current consenting members' commuting totals by month and mode, suppressed below "
            "the minimum group size"
        ),
        description=(
            "只统计当前成员加入后的行程；退出的员工立即不再计入任何之后读取的合计。成员少于"
            "`min_group_size` 时没有任何明细和人数；人数少于它的格子及其补充格子显示为 "
            "`suppressed`。没有行程的格子不列出（即为 0）。\n\n"
            "Only trips current members made after joining: an employee who left is in no "
            "total read after leaving. With fewer members than `min_group_size` there is no "
            "breakdown and no participant count; a cell of fewer residents, and its "
            "complements, read `suppressed`. Cells without trips are left out (zero)."
        ),
        responses=errors(*SCOPED, "commuting_programme_not_found"),
    )
    async def aggregates(
        self,
        caller: NamedDependency[Caller],
        settings: NamedDependency[Settings],
        programme_id: FromPath[uuid.UUID],
        start_month: Month,
        end_month: Month,
    ) -> Aggregates:
        async with caller.pool.acquire() as conn:
            return await commuting_reports.employees_aggregates(
                conn,
                caller.enterprise_id,
                programme_id,
                start_month=_month(start_month),
                end_month=_month(end_month),
                zone=settings.timezone,
                min_group=settings.enterprises.commuting_min_group,
            )

    @get(
        "/{programme_id:uuid}/bonus-runs",
        summary=(
            "奖励积分的发放记录（已发放，或余额不足未发放及原因），最新的在前 · "
            "Bonus runs (paid, or underfunded and why), newest first"
        ),
        responses=errors(*SCOPED, "commuting_programme_not_found"),
    )
    async def bonus_runs(
        self,
        caller: NamedDependency[Caller],
        settings: NamedDependency[Settings],
        programme_id: FromPath[uuid.UUID],
        limit: Annotated[int, QueryParameter(ge=1, le=200)] = 50,
    ) -> list[BonusRun]:
        async with caller.pool.acquire() as conn:
            return await commuting.bonus_runs(
                conn,
                caller.enterprise_id,
                programme_id,
                limit=limit,
                min_group=settings.enterprises.commuting_min_group,
            )
