"""Signing in to the government surface (``/api/gov/v1/sessions``, public) and the signed-in
user (``/api/gov/v1/me``, GOV_READ). Thin routes over ``reporting.users``."""

from __future__ import annotations

from typing import Any

from litestar import Request, Router, get, post
from litestar.di import NamedDependency
from litestar.params import JSONBody

from kit.auth import JwtKeys
from reporting import users
from reporting.users import GovSession
from server.gov.errors import document
from server.gov.guards import GOV_READ, GovCaller, provide_gov_caller
from server.gov.schemas import GovSignIn, GovUserView, user_view
from server.settings import Settings

PREFIX = "/api/gov/v1"


def _client_ip(request: Request[Any, Any, Any]) -> str:
    return request.client.host if request.client else "unknown"


@post(
    "/sessions",
    status_code=201,
    tags=["gov sign-in"],
    summary="政府用户登录（密码 + 动态口令） · Sign in as a government user (password + TOTP)",
    description=(
        "密码与 RFC 6238 动态口令（6 位，30 秒）两个因素；每个口令只能用一次。失败的尝试按登录名和"
        "客户端限流。访问令牌短期有效（`expires_at`），没有刷新令牌。\n\n"
        "Two factors: the password and an RFC 6238 TOTP code (6 digits, 30 s); each code is "
        "accepted once. Unknown login, wrong password, wrong or replayed code and disabled user "
        "are one answer, `sign_in_rejected`; failed attempts are rate-limited per login and "
        "client. The access token is short-lived (`expires_at`) and has no refresh token."
    ),
)
async def sign_in(
    request: Request[Any, Any, Any],
    data: JSONBody[GovSignIn],
    pool: NamedDependency[Any],
    redis: NamedDependency[Any],
    settings: NamedDependency[Settings],
    jwt: NamedDependency[JwtKeys],
) -> GovSession:
    return await users.sign_in(
        pool,
        redis,
        settings.gov_users,
        settings.privacy,
        jwt,
        login=data.login,
        password=data.password,
        totp=data.totp,
        client=_client_ip(request),
    )


@get(
    "/me",
    tags=["gov sign-in"],
    summary="当前政府用户 · The signed-in government user",
    guards=[GOV_READ],
    dependencies={"gov_caller": provide_gov_caller},
    security=[{"BearerToken": []}],
)
async def me(gov_caller: NamedDependency[GovCaller], pool: NamedDependency[Any]) -> GovUserView:
    async with pool.acquire() as conn:
        return user_view(await users.user(conn, gov_caller.user_id))


# Each route's codes in the served OpenAPI (sign-in is not behind the guard).
document(
    [sign_in],
    {"sign_in": ("validation_failed", "sign_in_rejected", "gov_sign_in_rate_limited")},
    guarded=False,
)
document([me], {})

gov_sessions_router = Router(path=PREFIX, route_handlers=[sign_in, me])
