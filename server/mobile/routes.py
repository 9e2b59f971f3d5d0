"""Residents' mobile API v1 (`/api/mobile/v1`): thin controllers over ``service``.

Every resident route is guarded by the one role guard of the JWT surfaces
(``server.guards.roles``), which verifies the bearer token and its resident role from the
headers before any body is decoded; its session check here refuses the token of an erased
account or of an ended sign-in (one Redis read; docs/mobile.md). The caller's identity
always comes from the token, never from a path or a parameter.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, NamedTuple
from zoneinfo import ZoneInfo

import msgspec
from litestar import Controller, Request, Response, Router, delete, get, patch, post, put
from litestar.connection import ASGIConnection
from litestar.di import NamedDependency, Provide
from litestar.handlers.base import BaseRouteHandler
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, FromQuery, HeaderParameter, JSONBody, QueryParameter

import residents.service as residents
from behaviours.pipeline import IngestPolicy
from behaviours.tracks import REASONS as TRACK_REASONS
from kit import idempotency
from kit.auth import JwtKeys, Principal, Role
from kit.db import Tx, transaction
from kit.i18n import Language
from residents.settings import ResidentsConfig
from server.errors import language, problem_responses
from server.guards import authenticate, provide_principal, roles
from server.mobile import service
from server.mobile.errors import CATALOGUE
from server.mobile.schemas import (
    Activity,
    DataSource,
    Export,
    HistoryItem,
    HistoryPage,
    Leaderboard,
    Levels,
    LinkRequest,
    Monthly,
    Profile,
    ProfileUpdate,
    RefreshRequest,
    SmsCodeRequest,
    SmsCodeSent,
    SmsSignIn,
    Summary,
    TokenPair,
    Verdict,
    WechatSignIn,
)

PREFIX = "/api/mobile/v1"
_GUARDED = (
    "token_missing",
    "token_invalid",
    "token_expired",
    "token_revoked",
    "role_required",
    "account_deleted",
)
# Handler option: the handler reads the revocation markers itself, in a Redis pipeline it needs
# anyway (the summary), so ``resident_session`` does not read them a second time.
SESSION_CHECKED_BY_HANDLER = "session_checked_by_handler"
_ALWAYS = ("internal_error", "retry_later")
EventKind = Literal[
    "transit_trip", "bike_trip", "walk", "daily_steps", "meter_reading", "ev_mileage"
]


def errors(*codes: str) -> dict[int, ResponseSpec]:
    """OpenAPI responses for the stable error codes an operation may answer with."""
    return problem_responses(CATALOGUE, (*codes, *_ALWAYS))


def family_of(principal: Principal) -> str | None:
    """The sign-in (refresh-token family) an access token belongs to."""
    fam = principal.claims.get("fam")
    return fam if isinstance(fam, str) else None


async def _check_session(
    connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler, principal: Principal
) -> None:
    """The resident routes' session check, after the guard accepted the token and its role: an
    account not erased and a sign-in not ended (one Redis read), unless the handler reads the
    revocation markers itself (``SESSION_CHECKED_BY_HANDLER``)."""
    if handler.opt.get(SESSION_CHECKED_BY_HANDLER):
        return
    await residents.check_session(
        connection.app.state.redis, principal.subject, family_of(principal)
    )


resident_session = roles(Role.RESIDENT, session=_check_session)


class Reader(NamedTuple):
    """What a read handler needs, as one dependency: Litestar resolves a handler's several
    dependencies concurrently in a task group of their own, one dependency directly."""

    principal: Principal
    pool: Any
    redis: Any
    zone: ZoneInfo  # the programme's time zone (TANPUHUI_TIMEZONE): months and days shown
    lang: Language  # the answer's language (Accept-Language, else TANPUHUI_LANGUAGE)

    @property
    def resident_id(self) -> str:
        return self.principal.subject


def _provide_reader(request: Request[Any, Any, Any]) -> Reader:
    state = request.app.state
    zone = ZoneInfo(state.settings.timezone)  # zoneinfo caches its zones: no file read
    return Reader(authenticate(request), state.pool, state.redis, zone, language(request))


def _provide_residents_config(request: Request[Any, Any, Any]) -> ResidentsConfig:
    """The residents' configuration, built once per app from its settings."""
    state = request.app.state
    cfg: ResidentsConfig | None = state.get("residents_config")
    if cfg is None:
        cfg = state["residents_config"] = service.residents_config(state.settings)
    return cfg


def _client_ip(request: Request[Any, Any, Any]) -> str:
    return request.client.host if request.client else "unknown"


class AuthController(Controller):
    path = "/auth"
    tags = ["sign-in"]  # noqa: RUF012 (Litestar's class attribute)

    @post(
        "/sms-codes",
        status_code=202,
        summary="发送短信登录验证码 · Send a one-time sign-in code by SMS",
        responses=errors("validation_failed", "sms_rate_limited", "sms_unavailable"),
    )
    async def send_code(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[SmsCodeRequest],
        redis: NamedDependency[Any],
        residents_config: NamedDependency[ResidentsConfig],
    ) -> SmsCodeSent:
        return await residents.send_code(redis, residents_config, data.phone, _client_ip(request))

    @post(
        "/sms-sign-in",
        status_code=200,
        summary=(
            "用手机号和短信验证码登录（首次即注册） · "
            "Sign in (or sign up) with the phone number and its SMS code"
        ),
        responses=errors(
            "validation_failed", "district_invalid", "code_invalid", "code_attempts_exceeded"
        ),
    )
    async def sms_sign_in(
        self,
        data: JSONBody[SmsSignIn],
        tx: NamedDependency[Tx],
        redis: NamedDependency[Any],
        residents_config: NamedDependency[ResidentsConfig],
        jwt: NamedDependency[JwtKeys],
    ) -> TokenPair:
        return await residents.sign_in_with_code(
            tx, redis, residents_config, jwt, data.phone, data.code, data.district_code
        )

    @post(
        "/wechat-sign-in",
        status_code=200,
        summary=(
            "用微信小程序 `wx.login` 的 code 登录（首次即注册） · "
            "Sign in (or sign up) with a WeChat mini-program `wx.login` code"
        ),
        responses=errors(
            "validation_failed", "district_invalid", "wechat_login_failed", "wechat_unavailable"
        ),
    )
    async def wechat_sign_in(
        self,
        data: JSONBody[WechatSignIn],
        tx: NamedDependency[Tx],
        residents_config: NamedDependency[ResidentsConfig],
        jwt: NamedDependency[JwtKeys],
    ) -> TokenPair:
        return await residents.sign_in_with_wechat(
            tx, residents_config, jwt, data.code, data.district_code
        )

    @post(
        "/refresh",
        status_code=200,
        summary=(
            "用刷新令牌换一对新令牌（旧的随即失效） · "
            "Exchange a refresh token for a new token pair (the old one dies)"
        ),
        responses=errors("validation_failed", "refresh_invalid", "refresh_reused"),
    )
    async def refresh(
        self,
        data: JSONBody[RefreshRequest],
        pool: NamedDependency[Any],
        redis: NamedDependency[Any],
        residents_config: NamedDependency[ResidentsConfig],
        jwt: NamedDependency[JwtKeys],
    ) -> TokenPair:
        async with transaction(pool) as tx:
            outcome = await residents.refresh(tx, redis, residents_config, jwt, data.refresh_token)
        if outcome.error is not None:
            raise outcome.error  # after commit: a detected reuse stays revoked
        assert outcome.pair is not None
        return outcome.pair


class ResidentController(Controller):
    """Routes for a signed-in resident."""

    guards = [resident_session]  # noqa: RUF012 (Litestar's class attribute)
    dependencies = {  # noqa: RUF012
        "principal": provide_principal,
        "reader": Provide(_provide_reader, sync_to_thread=False),
    }
    security = [{"BearerToken": []}]  # noqa: RUF012
    tags = ["resident"]  # noqa: RUF012

    @post(
        "/auth/sign-out",
        status_code=204,
        tags=["sign-in"],
        summary=(
            "退出登录：结束本次登录（它的刷新令牌和访问令牌） · "
            "Sign out: end this sign-in (its refresh and access tokens)"
        ),
        responses=errors(*_GUARDED),
    )
    async def sign_out(
        self,
        principal: NamedDependency[Principal],
        tx: NamedDependency[Tx],
        redis: NamedDependency[Any],
        residents_config: NamedDependency[ResidentsConfig],
    ) -> None:
        await residents.sign_out(
            tx,
            redis,
            residents_config,
            principal.subject,
            family_of(principal),
            principal.expires_at,
        )

    @get(
        "/me",
        summary="我的资料（手机号已打码） · The caller's profile (phone masked)",
        responses=errors(*_GUARDED),
    )
    async def me(self, reader: NamedDependency[Reader]) -> Profile:
        async with reader.pool.acquire() as conn:
            return await service.profile(conn, reader.resident_id, reader.lang)

    @patch(
        "/me",
        summary="设置所在区（用于区排行榜） · Set the home district (for the district leaderboard)",
        description=(
            '按 PATCH 语义：未给出的字段不变；`"district_code": null` 清除所在区。区代码必须是'
            "本项目已导入的区之一。\n\n"
            'PATCH semantics: a field left out is unchanged; `"district_code": null` clears '
            "the district. A code must be one of the programme's imported districts."
        ),
        responses=errors(*_GUARDED, "validation_failed", "district_invalid"),
    )
    async def update_me(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[Principal],
        data: JSONBody[ProfileUpdate],
        tx: NamedDependency[Tx],
        redis: NamedDependency[Any],
        residents_config: NamedDependency[ResidentsConfig],
    ) -> Profile:
        p = await residents.update_profile(
            tx, redis, residents_config, principal.subject, data.district_code
        )
        return await service.profile_view(tx.conn, p, language(request))

    @delete(
        "/me",
        status_code=204,
        summary=(
            "注销账户：个人数据删除，账本记录以假名保留 · "
            "Delete my account: personal data erased, ledger entries kept under a pseudonym"
        ),
        responses=errors(*_GUARDED),
    )
    async def delete_me(
        self,
        principal: NamedDependency[Principal],
        tx: NamedDependency[Tx],
        redis: NamedDependency[Any],
        residents_config: NamedDependency[ResidentsConfig],
    ) -> None:
        await residents.delete_account(tx, redis, residents_config, principal.subject)

    @get(
        "/me/export",
        summary=(
            "导出关于我的全部数据（一个 JSON 文档） · "
            "Everything kept about me, as one JSON document"
        ),
        responses=errors(*_GUARDED),
    )
    async def export_me(self, reader: NamedDependency[Reader]) -> Export:
        async with reader.pool.acquire() as conn:
            return await service.export(
                conn, reader.resident_id, zone=reader.zone, lang=reader.lang
            )

    @get(
        "/summary",
        tags=["reads"],
        summary=(
            "总览：减排克数，可用 / 待入账 / 30 天内到期的积分，区内排名 · "
            "Totals: grams, points available / pending / expiring in 30 days, district rank"
        ),
        responses=errors(*_GUARDED),
        opt={SESSION_CHECKED_BY_HANDLER: True},
    )
    async def summary(self, reader: NamedDependency[Reader]) -> Summary:
        async with reader.pool.acquire() as conn:
            return await service.summary(
                conn,
                reader.redis,
                reader.resident_id,
                family_of(reader.principal),
                reader.lang,
                zone=reader.zone,
            )

    @get(
        "/history",
        tags=["reads"],
        summary=(
            "我的活动，最新的在前，各附核验结果（游标分页） · "
            "My activities, newest first, each with its verdict (cursor pagination)"
        ),
        responses=errors(*_GUARDED, "validation_failed", "cursor_invalid"),
    )
    async def history(
        self,
        reader: NamedDependency[Reader],
        kind: FromQuery[EventKind | None] = None,
        status: FromQuery[Literal["accepted", "rejected"] | None] = None,
        cursor: Annotated[str | None, QueryParameter(max_length=512)] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=100)] = 20,
    ) -> HistoryPage:
        async with reader.pool.acquire() as conn:
            return await service.history(
                conn,
                reader.resident_id,
                kind=kind,
                status=status,
                cursor=cursor,
                limit=limit,
                lang=reader.lang,
            )

    @get(
        "/history/{event_id:str}",
        tags=["reads"],
        summary="我的一条活动 · One of my activities",
        responses=errors(*_GUARDED, "validation_failed", "not_found"),
    )
    async def history_item(
        self, reader: NamedDependency[Reader], event_id: FromPath[str]
    ) -> HistoryItem:
        async with reader.pool.acquire() as conn:
            return await service.history_item(conn, reader.resident_id, event_id, reader.lang)

    @get(
        "/monthly",
        tags=["reads"],
        summary="按月份和出行方式统计的已通过活动 · Accepted activities per month and mode",
        responses=errors(*_GUARDED, "validation_failed"),
    )
    async def monthly(
        self,
        reader: NamedDependency[Reader],
        months: Annotated[int, QueryParameter(ge=1, le=24)] = 12,
    ) -> Monthly:
        async with reader.pool.acquire() as conn:
            return await service.monthly(conn, reader.resident_id, months, zone=reader.zone)

    @get(
        "/leaderboard",
        tags=["reads"],
        summary=(
            "本区按核证减排克数的排行榜（他人只显示昵称） · "
            "My district's leaderboard by verified grams (others shown by nickname only)"
        ),
        responses=errors(*_GUARDED, "validation_failed"),
    )
    async def leaderboard(
        self,
        reader: NamedDependency[Reader],
        limit: Annotated[int, QueryParameter(ge=1, le=100)] = 20,
    ) -> Leaderboard:
        async with reader.pool.acquire() as conn:
            return await service.leaderboard(conn, reader.redis, reader.resident_id, limit)

    @get(
        "/levels",
        tags=["reads"],
        summary="按累计核证减排克数划分的成长等级 · Growth levels by cumulative verified grams",
        responses=errors(*_GUARDED),
    )
    async def growth_levels(self, reader: NamedDependency[Reader]) -> Levels:
        return await service.levels(reader.pool, reader.resident_id, reader.lang)

    @get(
        "/data-sources",
        tags=["data sources"],
        summary="可关联的运营方和我的关联 · Operators I can link, and my links",
        responses=errors(*_GUARDED),
    )
    async def data_sources(self, reader: NamedDependency[Reader]) -> list[DataSource]:
        async with reader.pool.acquire() as conn:
            await residents.require_active(conn, reader.resident_id)
            return await service.data_sources(conn, reader.resident_id)

    @put(
        "/data-sources/{operator_id:str}/link",
        tags=["data sources"],
        summary=(
            "关联运营方：同意其在某范围内的数据（得到我在该运营方的假名） · "
            "Link an operator: consent to its data for a scope (yields my pseudonym there)"
        ),
        responses=errors(
            *_GUARDED, "validation_failed", "scope_invalid", "scope_not_offered", "unknown_operator"
        ),
    )
    async def link(
        self,
        principal: NamedDependency[Principal],
        tx: NamedDependency[Tx],
        operator_id: FromPath[str],
        data: JSONBody[LinkRequest],
    ) -> DataSource:
        return await service.link(tx, principal.subject, operator_id, data.scope)

    @delete(
        "/data-sources/{operator_id:str}/link",
        status_code=204,
        tags=["data sources"],
        summary=(
            "解除关联：该运营方此后的事件被拒绝（`consent_revoked`） · "
            "Unlink an operator: its later events are rejected (`consent_revoked`)"
        ),
        responses=errors(*_GUARDED, "validation_failed", "link_not_found"),
    )
    async def unlink(
        self,
        principal: NamedDependency[Principal],
        tx: NamedDependency[Tx],
        operator_id: FromPath[str],
    ) -> None:
        await service.unlink(tx, principal.subject, operator_id)

    @post(
        "/activities",
        status_code=200,
        tags=["activities"],
        summary=(
            "上报 GPS 轨迹记录的骑行或步行，或当日步数；返回核验结果 · "
            "Report a GPS-tracked ride or walk, or the day's steps; the verdict comes back"
        ),
        description=(
            "请带上 `Idempotency-Key`（每条活动一个唯一字符串）：相同键和相同请求体的重试返回"
            "第一次的应答；相同键而请求体不同则被拒绝。轨迹核查的原因码："
            + "、".join(f"`{code}`" for code in TRACK_REASONS)
            + "；流水线的原因码见开发指南。\n\n"
            "Send `Idempotency-Key` (any unique string per activity): a retry with the same key "
            "and body returns the first answer; the same key with another body is refused. "
            "Track findings (reason codes): "
            + ", ".join(f"`{code}`" for code in TRACK_REASONS)
            + "; pipeline reasons are listed in the guide."
        ),
        responses=errors(
            *_GUARDED, "validation_failed", "idempotency_key_reused", "concurrent_ingest"
        ),
    )
    async def report(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[Principal],
        tx: NamedDependency[Tx],
        ingest_policy: NamedDependency[IngestPolicy],
        data: JSONBody[Activity],
        idempotency_key: Annotated[
            str | None,
            HeaderParameter(name="Idempotency-Key", min_length=1, max_length=128, required=False),
        ] = None,
    ) -> Response[Verdict]:
        digest = idempotency.request_hash("POST", "activities", _encoder.encode(data))
        status, verdict = await idempotency.replay_or_run(
            tx,
            f"resident:{principal.subject}",
            idempotency_key,
            digest,
            lambda: service.report_activity(tx, ingest_policy, principal.subject, data),
            Verdict,
        )
        verdict = service.verdict_view(verdict, language(request))
        return Response(content=verdict, status_code=status)


_encoder = msgspec.json.Encoder()


mobile_router = Router(
    path=PREFIX,
    route_handlers=[AuthController, ResidentController],
    dependencies={
        "residents_config": Provide(_provide_residents_config, sync_to_thread=False),
    },
)
