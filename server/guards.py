"""The one role guard of every JWT surface, and the ``principal`` dependency.

``roles(*allowed)`` verifies the bearer token from the headers only, before any body is
decoded: signature and issuer (kit.auth), expiry, that it is an access token, the caller's
role, and that its subject has the form the role's ids have. A surface adds its own check of
the session (e.g. the residents' revocation markers) with ``session=``. Usage::

    guards = [roles(Role.RESIDENT, session=check_resident_session)]
    async def me(principal: NamedDependency[Principal]) -> ...
"""

from __future__ import annotations

import functools
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.di import Provide
from litestar.handlers.base import BaseRouteHandler
from litestar.types import Guard

from kit.auth import JwtKeys, Principal, Role, bearer_token, require_role
from kit.errors import Unauthenticated

_KEY = "principal"  # request-scope state key
clock = time.time  # the expiry check's clock (tests move it)

# A surface's own check of the caller's session, after the token and role were accepted.
SessionCheck = Callable[
    [ASGIConnection[Any, Any, Any, Any], BaseRouteHandler, Principal], Awaitable[None]
]


@functools.lru_cache(maxsize=8192)
def _verified(keys: JwtKeys, token: str) -> Principal:
    """Signature, issuer and claims of a token, checked once per process while it stays in this
    cache (an app reuses its access token for many calls). Only successes are cached; expiry
    and the token's type are checked again on every call by :func:`authenticate`. Keys are
    fixed for a process's life, so a cached verdict cannot outlive its key."""
    return keys.verify(token)


def authenticate(connection: ASGIConnection[Any, Any, Any, Any]) -> Principal:
    """The caller's verified, unexpired access token (kept on the request once checked)."""
    state = connection.scope.setdefault("state", {})
    cached = state.get(_KEY)
    if isinstance(cached, Principal):
        return cached
    jwt_keys: JwtKeys = connection.app.state.jwt
    principal = _verified(jwt_keys, bearer_token(connection.headers.get("authorization")))
    if principal.expires_at <= clock():
        raise Unauthenticated("The token has expired.", code="token_expired")
    if principal.claims.get("typ", "access") != "access":
        raise Unauthenticated("This token cannot be used for API calls.", code="token_invalid")
    state[_KEY] = principal
    return principal


def _is_uuid(subject: str) -> bool:
    """An id in its canonical UUID form (as sign-ins issue them)."""
    try:
        return str(uuid.UUID(subject)) == subject
    except ValueError:
        return False


# The form of the subject each role's tokens must have. Signed by us but not naming such an
# id (a key shared with another system, or a bug): refused in the guard, never passed on to SQL.
SUBJECT_FORMS: dict[Role, Callable[[str], bool]] = {
    Role.RESIDENT: _is_uuid,
    Role.ENTERPRISE_ADMIN: _is_uuid,  # an enterprise_users id
    Role.GOV_ANALYST: _is_uuid,  # a gov_users id
    Role.GOV_ADMIN: _is_uuid,  # a gov_users id
}


def authorize(connection: ASGIConnection[Any, Any, Any, Any], *allowed: Role) -> Principal:
    """:func:`authenticate`, then the caller's role and the form of its subject."""
    principal = authenticate(connection)
    require_role(principal, *allowed)
    form = SUBJECT_FORMS.get(principal.role)
    if form is not None and not form(principal.subject):
        raise Unauthenticated(f"The token does not name a {principal.role}.", code="token_invalid")
    return principal


def roles(*allowed: Role, session: SessionCheck | None = None) -> Guard:
    # async, so Litestar runs it on the event loop instead of handing it to a worker thread
    async def guard(
        connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
    ) -> None:
        principal = authorize(connection, *allowed)
        if session is not None:
            await session(connection, handler, principal)

    return guard


def _provide_principal(request: Request[Any, Any, Any]) -> Principal:
    return authenticate(request)


provide_principal = Provide(_provide_principal, sync_to_thread=False)
