"""What every guarded controller of the enterprise API shares: the prefix and scope, the
caller dependency (user, enterprise, pool, zone, language) set by the session check, the
Idempotency-Key header and request digest (from server.keyed), and ``Guarded``, the base class
of every controller behind the sign-in. Controllers live in ``server.enterprise.routes`` and
its sibling modules; the router (``routes.enterprise_router``) lists them all."""

from __future__ import annotations

import uuid
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from litestar import Controller, Request
from litestar.connection import ASGIConnection
from litestar.di import Provide
from litestar.handlers.base import BaseRouteHandler

from enterprises import users
from enterprises.energy_errors import EnterpriseNotFound
from kit.auth import Principal, Role
from kit.errors import Unauthenticated
from kit.i18n import Language
from server.errors import language
from server.guards import roles
from server.keyed import IdempotencyKey as IdempotencyKey  # re-exported for the controllers
from server.keyed import digest as digest

PREFIX = "/api/enterprise/v1"
SCOPE = "/enterprises/{enterprise_id:uuid}"
_CALLER = "enterprise_caller"  # request-scope state key


class Caller(NamedTuple):
    """Who is calling and what the handler reads with, as one dependency."""

    user_id: uuid.UUID
    enterprise_id: uuid.UUID
    pool: Any
    zone: ZoneInfo  # the programme's time zone (months, issue times shown)
    lang: Language

    @property
    def idempotency_scope(self) -> str:
        return f"enterprise-user:{self.user_id}"


async def _check_scope(
    connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler, principal: Principal
) -> None:
    """After the guard accepted the token: the user still enabled, the token's enterprise the
    user's, and the path's enterprise (when it names one) that one; otherwise 404 as for an
    enterprise that does not exist."""
    state = connection.app.state
    async with state.pool.acquire() as conn:
        enterprise_id = await users.caller_scope(conn, principal.subject)
    if principal.claims.get("ent") != str(enterprise_id):
        raise Unauthenticated("The token names another enterprise.", code="token_invalid")
    wanted = connection.path_params.get("enterprise_id")
    if wanted is not None and wanted != enterprise_id:
        raise EnterpriseNotFound("No such enterprise.")
    connection.scope.setdefault("state", {})[_CALLER] = Caller(
        uuid.UUID(principal.subject),
        enterprise_id,
        state.pool,
        ZoneInfo(state.settings.timezone),
        language(connection),  # type: ignore[arg-type]  # reads headers and app state only
    )


enterprise_session = roles(Role.ENTERPRISE_ADMIN, session=_check_scope)


def provide_caller(request: Request[Any, Any, Any]) -> Caller:
    caller: Caller = request.scope["state"][_CALLER]
    return caller


def client_ip(request: Request[Any, Any, Any]) -> str:
    return request.client.host if request.client else "unknown"


class Guarded(Controller):
    guards = [enterprise_session]  # noqa: RUF012 (Litestar's class attribute)
    dependencies = {"caller": Provide(provide_caller, sync_to_thread=False)}  # noqa: RUF012
    security = [{"BearerToken": []}]  # noqa: RUF012
