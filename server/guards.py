"""Litestar glue for auth: role guards for JWT surfaces and the ``principal`` dependency.

Usage in a domain's routes.py::

    @get("/me", guards=[roles(Role.RESIDENT)])
    async def me(principal: Principal) -> ...
"""

from __future__ import annotations

from typing import Any

from litestar.connection import ASGIConnection
from litestar.di import Provide
from litestar.handlers.base import BaseRouteHandler
from litestar.types import Guard

from kit.auth import JwtKeys, Principal, Role, bearer_token, require_role
from kit.errors import Unauthenticated

_KEY = "principal"


def authenticate(connection: ASGIConnection[Any, Any, Any, Any]) -> Principal:
    """The caller's verified token (cached on the request)."""
    state = connection.scope.setdefault("state", {})
    cached = state.get(_KEY)
    if isinstance(cached, Principal):
        return cached
    jwt_keys: JwtKeys = connection.app.state.jwt
    principal = jwt_keys.verify(bearer_token(connection.headers.get("authorization")))
    if principal.claims.get("typ", "access") != "access":
        raise Unauthenticated("This token cannot be used for API calls.", code="token_invalid")
    state[_KEY] = principal
    return principal


def roles(*allowed: Role) -> Guard:
    # async, so Litestar runs it on the event loop instead of handing it to a worker thread
    async def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        require_role(authenticate(connection), *allowed)

    return guard


def _provide_principal(request: Any) -> Principal:
    return authenticate(request)


provide_principal = Provide(_provide_principal, sync_to_thread=False)
