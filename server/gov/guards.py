"""The government surface's guards (``/api/gov/v1``): ``GOV_READ`` (analysts and
administrators: the reports) and ``GOV_ADMIN`` (administrators only: ``/admin/...``).

Both are the one role guard of the JWT surfaces (``server.guards.roles``: token, expiry, role,
subject form, from the headers, before any body is decoded), with this surface's session check:
the token's user still exists, is enabled, and still has the token's role (one query on the
pool, no transaction), so disabling a user or changing its role takes effect on its next
request. Handlers read the caller with the ``gov_caller`` dependency (:data:`provide_gov_caller`).
"""

from __future__ import annotations

import uuid
from typing import Any, NamedTuple

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.di import Provide
from litestar.handlers.base import BaseRouteHandler

from kit.auth import Principal, Role
from reporting import users
from server.guards import roles

_CALLER = "gov_caller"  # request-scope state key


class GovCaller(NamedTuple):
    user_id: uuid.UUID
    role: Role

    @property
    def actor(self) -> str:
        """The audit log's name for the caller."""
        return str(self.user_id)

    @property
    def idempotency_scope(self) -> str:
        return f"gov-user:{self.user_id}"


async def _check_session(
    connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler, principal: Principal
) -> None:
    async with connection.app.state.pool.acquire() as conn:
        await users.active_user(conn, principal.subject, principal.role)
    connection.scope.setdefault("state", {})[_CALLER] = GovCaller(
        uuid.UUID(principal.subject), principal.role
    )


GOV_READ = roles(Role.GOV_ANALYST, Role.GOV_ADMIN, session=_check_session)
GOV_ADMIN = roles(Role.GOV_ADMIN, session=_check_session)


def _provide_gov_caller(request: Request[Any, Any, Any]) -> GovCaller:
    caller: GovCaller = request.scope["state"][_CALLER]
    return caller


provide_gov_caller = Provide(_provide_gov_caller, sync_to_thread=False)
