"""The enterprise API (``/api/enterprise/v1``): an enterprise's administrators sign in and read
and feed their enterprise's carbon account. Thin controllers over ``enterprises.*``.

Every route but the sign-in is guarded by the one role guard of the JWT surfaces
(``server.guards.roles``, role ``enterprise_admin``: token, expiry, role, subject form, from the
headers, before any body is decoded); its session check here reads the caller's user (one
query on the pool, no transaction): a disabled user is refused at once (``user_disabled``), and
the enterprise in the path must be the user's own. Any other enterprise is answered 404
``enterprise_not_found``, exactly as an enterprise that does not exist, on every route under
``/enterprises/{enterprise_id}`` (tests/enterprises/test_scope.py walks the app's route table,
so a new route cannot be forgotten); an item of the caller's enterprise that is not there is
the item's own 404. Writes that create something take an optional ``Idempotency-Key``.
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated, Any

from litestar import Controller, Request, Response, Router, get, post, put
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter

from enterprises import accounting, alerts, energy, grades, report, users
from enterprises.accounting import MonthEmissions
from enterprises.alerts import Alert, Budget, BudgetIn
from enterprises.energy_schemas import (
    FlaggedReading,
    Meter,
    MeterIn,
    MeterMonth,
    Period,
    ReportIn,
    ReportStatus,
    Site,
    SiteIn,
)
from enterprises.factors import Basis
from enterprises.grades import Explanation
from kit import idempotency
from kit.auth import JwtKeys
from kit.db import Tx
from kit.errors import NotFound
from server.enterprise.allowances_routes import AllowancesController
from server.enterprise.base import PREFIX, SCOPE, Caller, Guarded, IdempotencyKey, client_ip, digest
from server.enterprise.commuting_routes import CommutingController
from server.enterprise.errors import GUARDED, SCOPED, errors
from server.enterprise.green_routes import GreenController
from server.enterprise.kinds_routes import KindsController
from server.enterprise.offsets_routes import OffsetsController
from server.enterprise.pollutants_routes import PollutantsController
from server.enterprise.schemas import (
    AccountPeriod,
    CarbonReportIn,
    CarbonReportView,
    Profile,
    Session,
    SignIn,
    UserIn,
    UserView,
)
from server.enterprise.uploads import CSV_MAX_BYTES, CSV_MEDIA_TYPES, report_from_csv
from server.settings import Settings
from server.wire import ACCEPTS


def _user_view(u: users.User) -> UserView:
    return UserView(
        id=u.id,
        enterprise_id=u.enterprise_id,
        login=u.login,
        display_name=u.display_name,
        created_at=u.created_at,
        disabled=u.disabled_at is not None,
        disabled_at=u.disabled_at,
    )


def _report_view(r: report.CarbonReport) -> CarbonReportView:
    return CarbonReportView(
        id=r.id,
        sha256=r.sha256,
        period=r.period,
        issued_at=r.issued_at,
        media_type=r.media_type,
        size_bytes=r.size_bytes,
        download=f"{PREFIX}/enterprises/{r.enterprise_id}/carbon-reports/{r.id}/file",
        verify=f"/api/public/v1/enterprise-reports/{r.sha256}",
    )


class SessionController(Controller):
    path = "/sessions"
    tags = ["sign-in"]  # noqa: RUF012 (Litestar's class attribute)

    @post(
        "",
        status_code=200,
        summary="企业管理员登录，得到访问令牌 · Sign in as an enterprise administrator",
        description=(
            "访问令牌短期有效（`expires_in` 秒），没有刷新令牌：过期后重新登录。失败的尝试按"
            "登录名和客户端限流。\n\n"
            "The access token is short-lived (`expires_in` seconds) and has no refresh token: "
            "sign in again when it expires. Failed attempts are rate-limited per login and "
            "client."
        ),
        responses=errors("validation_failed", "sign_in_failed", "sign_in_rate_limited"),
    )
    async def sign_in(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[SignIn],
        pool: NamedDependency[Any],
        redis: NamedDependency[Any],
        settings: NamedDependency[Settings],
        jwt: NamedDependency[JwtKeys],
    ) -> Session:
        signed = await users.sign_in(
            pool,
            redis,
            settings.enterprise_users,
            settings.privacy,
            jwt,
            login=data.login,
            password=data.password,
            client=client_ip(request),
        )
        return Session(
            access_token=signed.access_token,
            expires_in=signed.expires_in,
            user=_user_view(signed.user),
        )


class MeController(Guarded):
    path = "/me"
    tags = ["sign-in"]  # noqa: RUF012

    @get(
        "",
        summary="当前用户及其企业 · The signed-in user and its enterprise",
        responses=errors(*GUARDED),
    )
    async def me(self, caller: NamedDependency[Caller]) -> UserView:
        async with caller.pool.acquire() as conn:
            return _user_view(await users.user(conn, caller.enterprise_id, caller.user_id))


class EnterpriseController(Guarded):
    path = SCOPE
    tags = ["enterprise"]  # noqa: RUF012

    @get("", summary="企业档案 · The enterprise's profile", responses=errors(*SCOPED))
    async def profile(self, caller: NamedDependency[Caller]) -> Profile:
        async with caller.pool.acquire() as conn:
            e = await users.enterprise_profile(conn, caller.enterprise_id)
        return Profile(
            id=e.id,
            credit_code=e.credit_code,
            name=e.name,
            industry=e.industry,
            district=e.district,
            size_class=e.size_class,
            registered_at=e.registered_at,
        )

    @get(
        "/users",
        tags=["users"],
        summary="企业的用户 · The enterprise's users",
        responses=errors(*SCOPED),
    )
    async def list_users(self, caller: NamedDependency[Caller]) -> list[UserView]:
        async with caller.pool.acquire() as conn:
            return [_user_view(u) for u in await users.users(conn, caller.enterprise_id)]

    @post(
        "/users",
        status_code=201,
        tags=["users"],
        summary="添加一名企业管理员 · Add an administrator to the enterprise",
        responses=errors(*SCOPED, "login_taken", "idempotency_key_reused"),
    )
    async def add_user(
        self,
        request: Request[Any, Any, Any],
        caller: NamedDependency[Caller],
        tx: NamedDependency[Tx],
        data: JSONBody[UserIn],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[UserView]:
        async def run() -> UserView:
            user = await users.add_user(
                tx,
                caller.enterprise_id,
                login=data.login,
                display_name=data.display_name,
                password=data.password,
                created_by=caller.user_id,
            )
            return _user_view(user)

        status, view = await idempotency.replay_or_run(
            tx,
            caller.idempotency_scope,
            idempotency_key,
            digest(request, data),
            run,
            UserView,
            status=201,
        )
        return Response(content=view, status_code=status)

    @post(
        "/users/{user_id:uuid}/disable",
        status_code=200,
        tags=["users"],
        summary=(
            "停用一名用户：其令牌即刻失效（重复停用不变） · "
            "Disable a user: its tokens are refused at once (again: unchanged)"
        ),
        responses=errors(*SCOPED, "not_found", "user_is_self"),
    )
    async def disable_user(
        self, caller: NamedDependency[Caller], tx: NamedDependency[Tx], user_id: FromPath[uuid.UUID]
    ) -> UserView:
        user = await users.disable_user(tx, caller.enterprise_id, user_id, by=caller.user_id)
        return _user_view(user)


class DataController(Guarded):
    """Sites, meters and the activity data the enterprise sends (enterprises.energy)."""

    path = SCOPE
    tags = ["data"]  # noqa: RUF012

    @get("/sites", summary="厂区 · The enterprise's sites", responses=errors(*SCOPED))
    async def list_sites(self, caller: NamedDependency[Caller]) -> list[Site]:
        async with caller.pool.acquire() as conn:
            return await energy.list_sites(conn, caller.enterprise_id)

    @post(
        "/sites",
        status_code=201,
        summary="添加厂区 · Add a site",
        responses=errors(*SCOPED, "site_name_taken", "idempotency_key_reused"),
    )
    async def add_site(
        self,
        request: Request[Any, Any, Any],
        caller: NamedDependency[Caller],
        tx: NamedDependency[Tx],
        data: JSONBody[SiteIn],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[Site]:
        status, site = await idempotency.replay_or_run(
            tx,
            caller.idempotency_scope,
            idempotency_key,
            digest(request, data),
            lambda: energy.add_site(tx, caller.enterprise_id, data),
            Site,
            status=201,
        )
        return Response(content=site, status_code=status)

    @get(
        "/meters",
        summary="计量表（可按厂区筛选） · The enterprise's meters (optionally of one site)",
        responses=errors(*SCOPED),
    )
    async def list_meters(
        self, caller: NamedDependency[Caller], site_id: FromQuery[uuid.UUID | None] = None
    ) -> list[Meter]:
        async with caller.pool.acquire() as conn:
            return await energy.list_meters(conn, caller.enterprise_id, site_id=site_id)

    @post(
        "/meters",
        status_code=201,
        summary=(
            "添加计量表：能源种类、单位、间隔和允许推送读数的一方 · "
            "Add a meter: energy kind, unit, interval and the party allowed to push it"
        ),
        responses=errors(*SCOPED, "site_not_found", "meter_ref_taken", "idempotency_key_reused"),
    )
    async def add_meter(
        self,
        request: Request[Any, Any, Any],
        caller: NamedDependency[Caller],
        tx: NamedDependency[Tx],
        data: JSONBody[MeterIn],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[Meter]:
        status, meter = await idempotency.replay_or_run(
            tx,
            caller.idempotency_scope,
            idempotency_key,
            digest(request, data),
            lambda: energy.add_meter(tx, caller.enterprise_id, data),
            Meter,
            status=201,
        )
        return Response(content=meter, status_code=status)

    @get(
        "/meter-months",
        summary=(
            "各表各月读数合计（已剔除被标记的读数） · "
            "Per meter and month: summed readings (flagged ones excluded)"
        ),
        responses=errors(*SCOPED),
    )
    async def meter_months(
        self, caller: NamedDependency[Caller], start: FromQuery[date], end: FromQuery[date]
    ) -> list[MeterMonth]:
        async with caller.pool.acquire() as conn:
            return await energy.meter_months(conn, caller.enterprise_id, start=start, end=end)

    @get(
        "/flagged-readings",
        summary=(
            "被标记（倒走、缺口、突增）而未计入的读数 · "
            "Readings flagged (backwards, gap, spike) and not summed"
        ),
        responses=errors(*SCOPED),
    )
    async def flagged_readings(
        self,
        caller: NamedDependency[Caller],
        meter_id: FromQuery[uuid.UUID | None] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 100,
    ) -> list[FlaggedReading]:
        async with caller.pool.acquire() as conn:
            return await energy.flagged_readings(
                conn, caller.enterprise_id, meter_id=meter_id, limit=limit
            )

    @post(
        "/activity-reports",
        status_code=200,
        summary=(
            "上报月度或年度能源与经济数据（JSON）；同样内容再次上报不变，新内容为新版本 · "
            "Upload a monthly or annual report (JSON); the same content again changes nothing, "
            "new content is a new version"
        ),
        responses=errors(*SCOPED, "green_certificate_claimed"),
    )
    async def submit_report(
        self, caller: NamedDependency[Caller], tx: NamedDependency[Tx], data: JSONBody[ReportIn]
    ) -> ReportStatus:
        return await energy.submit_report(tx, caller.enterprise_id, data)

    @post(
        "/activity-reports/csv",
        status_code=200,
        summary=(
            "以 CSV 上报月度或年度数据（列：kind,quantity,unit[,certificates]） · "
            "Upload a monthly or annual report as CSV (columns kind,quantity,unit[,certificates])"
        ),
        description=(
            "`period` 与 `period_start` 为查询参数；证书序列号以空格或分号分隔。\n\n"
            "`period` and `period_start` are query parameters; certificate serials are "
            "separated by spaces or semicolons. Lines that cannot be read are named in "
            "`errors` (`line N: field`)."
        ),
        opt={ACCEPTS: CSV_MEDIA_TYPES},
        request_max_body_size=CSV_MAX_BYTES,
        responses=errors(*SCOPED, "payload_too_large", "green_certificate_claimed"),
    )
    async def submit_report_csv(
        self,
        request: Request[Any, Any, Any],
        caller: NamedDependency[Caller],
        tx: NamedDependency[Tx],
        period: FromQuery[Period],
        period_start: FromQuery[date],
    ) -> ReportStatus:
        # The body is CSV text, read as bytes (bounded by the route) and decoded at the edge.
        found = report_from_csv(await request.body(), period, period_start)
        return await energy.submit_report(tx, caller.enterprise_id, found)

    @get(
        "/activity-reports",
        summary=(
            "已上报的数据及其状态（history=true：所有版本） · "
            "Reports uploaded and their status (history=true: every version)"
        ),
        responses=errors(*SCOPED),
    )
    async def list_reports(
        self, caller: NamedDependency[Caller], history: FromQuery[bool] = False
    ) -> list[ReportStatus]:
        async with caller.pool.acquire() as conn:
            return await energy.list_reports(conn, caller.enterprise_id, history=history)

    @get(
        "/activity-reports/{report_id:uuid}",
        summary="一份上报数据的状态 · One uploaded report's status",
        responses=errors(*SCOPED, "activity_report_not_found"),
    )
    async def report_status(
        self, caller: NamedDependency[Caller], report_id: FromPath[uuid.UUID]
    ) -> ReportStatus:
        async with caller.pool.acquire() as conn:
            return await energy.report_status(conn, caller.enterprise_id, report_id)


class AccountController(Guarded):
    """Emissions, grade, budgets and alerts (enterprises.accounting, grades, alerts)."""

    path = SCOPE
    tags = ["account"]  # noqa: RUF012

    @get(
        "/emissions",
        summary=(
            "某月或某年的排放，按月和能源种类，附所用因子（集、年份、版本） · "
            "Emissions of a month or a year, by month and energy kind, with the factors used"
        ),
        description=(
            "项目默认因子基准下已记录的结果（`basis`）；迟到的数据会重算它涉及的月份。\n\n"
            "The results recorded under the programme's default factor basis (`basis`); late "
            "data re-computes the months it touches."
        ),
        responses=errors(*SCOPED),
    )
    async def emissions(
        self,
        caller: NamedDependency[Caller],
        settings: NamedDependency[Settings],
        period: FromQuery[AccountPeriod],
    ) -> list[MonthEmissions]:
        start, end = report.period_bounds(period)
        async with caller.pool.acquire() as conn:
            return await accounting.monthly_emissions(
                conn,
                caller.enterprise_id,
                start=start,
                end=end,
                basis=Basis.of(settings.enterprises),
            )

    @get(
        "/grade",
        summary=(
            "某年的碳效等级及其说明：投入、行业基准、因子版本、同比 · "
            "The year's carbon-efficiency grade and its explanation: inputs, benchmark, "
            "factor versions, year on year"
        ),
        responses=errors(*SCOPED, "not_found"),
    )
    async def grade(
        self,
        caller: NamedDependency[Caller],
        settings: NamedDependency[Settings],
        year: Annotated[int, QueryParameter(ge=report.FIRST_YEAR, le=2100)],
    ) -> Explanation:
        async with caller.pool.acquire() as conn:
            found = await grades.explain(conn, caller.enterprise_id, year, settings.enterprises)
        if found is None:
            raise NotFound(f"The enterprise has no recorded data in {year}.")
        return found

    @get(
        "/budgets",
        summary="能耗与碳排放预算 · Energy and carbon budgets",
        responses=errors(*SCOPED),
    )
    async def list_budgets(self, caller: NamedDependency[Caller]) -> list[Budget]:
        async with caller.pool.acquire() as conn:
            return await alerts.budgets(conn, caller.enterprise_id)

    @put(
        "/budgets",
        summary=(
            "设定（或替换）某指标某期间的预算；以最后一次设定为准 · "
            "Set (or replace) the budget of a metric and period; the latest setting stands"
        ),
        responses=errors(*SCOPED),
    )
    async def set_budget(
        self, caller: NamedDependency[Caller], tx: NamedDependency[Tx], data: JSONBody[BudgetIn]
    ) -> Budget:
        return await alerts.set_budget(tx, caller.enterprise_id, data, set_by="enterprise")

    @get(
        "/alerts",
        summary=(
            "预算预警：按当期进度预测超过预警值时发出，回落时解除 · "
            "Budget alerts: raised when the period's run-rate projects beyond a warning value, "
            "cleared when it falls back"
        ),
        responses=errors(*SCOPED),
    )
    async def list_alerts(
        self, caller: NamedDependency[Caller], raised_only: FromQuery[bool] = False
    ) -> list[Alert]:
        async with caller.pool.acquire() as conn:
            return await alerts.alerts(conn, caller.enterprise_id, raised_only=raised_only)


class CarbonReportController(Guarded):
    """The downloadable carbon account report and its hash (enterprises.report)."""

    path = SCOPE + "/carbon-reports"
    tags = ["carbon report"]  # noqa: RUF012

    @post(
        "",
        status_code=201,
        summary=(
            "签发一份碳账户报告（PDF），附其 SHA-256，银行可向公开接口核验 · "
            "Issue a carbon account report (PDF) with its SHA-256, which a bank can verify "
            "at the public API"
        ),
        responses=errors(*SCOPED, "idempotency_key_reused"),
    )
    async def issue(
        self,
        request: Request[Any, Any, Any],
        caller: NamedDependency[Caller],
        tx: NamedDependency[Tx],
        settings: NamedDependency[Settings],
        data: JSONBody[CarbonReportIn],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[CarbonReportView]:
        async def run() -> CarbonReportView:
            issued = await report.issue_for(
                tx,
                caller.enterprise_id,
                data.period,
                issued_by=caller.user_id,
                zone=caller.zone,
                settings=settings.enterprises,
            )
            return _report_view(issued)

        status, view = await idempotency.replay_or_run(
            tx,
            caller.idempotency_scope,
            idempotency_key,
            digest(request, data),
            run,
            CarbonReportView,
            status=201,
        )
        return Response(content=view, status_code=status)

    @get(
        "",
        summary="已签发的报告，最新的在前 · Reports issued, newest first",
        responses=errors(*SCOPED),
    )
    async def list_issued(
        self,
        caller: NamedDependency[Caller],
        limit: Annotated[int, QueryParameter(ge=1, le=100)] = 20,
    ) -> list[CarbonReportView]:
        async with caller.pool.acquire() as conn:
            found = await report.reports(conn, caller.enterprise_id, limit=limit)
        return [_report_view(r) for r in found]

    @get(
        "/{report_id:uuid}/file",
        summary="下载报告文件（签发时的原样字节） · Download the report (the bytes as issued)",
        media_type=report.MEDIA_TYPE,
        responses={
            200: ResponseSpec(
                data_container=bytes,
                media_type=report.MEDIA_TYPE,
                description="The PDF; its SHA-256 is in the `X-Content-SHA256` header too.",
                generate_examples=False,
            ),
            **errors(*SCOPED, "not_found"),
        },
    )
    async def download(
        self, caller: NamedDependency[Caller], report_id: FromPath[uuid.UUID]
    ) -> Response[bytes]:
        async with caller.pool.acquire() as conn:
            found = await report.report_file(conn, caller.enterprise_id, report_id)
        r = found.report
        return Response(
            content=found.content,
            media_type=r.media_type,
            headers={
                "X-Content-SHA256": r.sha256,
                "Content-Disposition": (
                    f'attachment; filename="carbon-report-{r.period}-{r.sha256[:12]}.pdf"'
                ),
            },
        )


enterprise_router = Router(
    path=PREFIX,
    route_handlers=[
        SessionController,
        MeController,
        EnterpriseController,
        DataController,
        AccountController,
        CarbonReportController,
        AllowancesController,
        CommutingController,
        GreenController,
        KindsController,
        OffsetsController,
        PollutantsController,
    ],
)
