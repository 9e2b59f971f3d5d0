"""Residents' employee commuting routes of the mobile API v1 (`/api/mobile/v1/commuting/...`):
the consent text, my memberships, joining an employer's programme (an employee code or an
invitation link's token, with explicit consent) and leaving it (at once).

Thin controllers over ``enterprises.commuting``; the same guard and session check as every
resident route (``server.mobile.routes.resident_session``), the caller from the token.
Registered in ``server.app.SURFACES``; the contract (``mobile_api_spec``) takes every route
under the mobile prefix.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from litestar import Controller, Router, delete, get, post
from litestar.di import NamedDependency, Provide
from litestar.params import JSONBody, PathParameter

import residents.service as residents
from enterprises import commuting
from enterprises.commuting_schemas import CommutingConsent, CommutingJoin, CommutingMembership
from kit.auth import Principal
from kit.db import Tx
from server.guards import provide_principal
from server.mobile.routes import (
    _GUARDED,
    PREFIX,
    Reader,
    _provide_reader,
    errors,
    resident_session,
)

# A str parameter checked as a UUID by pattern (not Litestar's uuid type), so the guard answers
# first whatever the path holds, as on the other resident routes.
ProgrammeId = Annotated[
    str,
    PathParameter(
        min_length=36,
        max_length=36,
        pattern=r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$",
    ),
]


class CommutingController(Controller):
    """A signed-in resident's employee commuting programmes."""

    path = "/commuting"
    guards = [resident_session]  # noqa: RUF012 (Litestar's class attribute)
    dependencies = {  # noqa: RUF012
        "principal": provide_principal,
        "reader": Provide(_provide_reader, sync_to_thread=False),
    }
    security = [{"BearerToken": []}]  # noqa: RUF012
    tags = ["commuting"]  # noqa: RUF012

    @get(
        "/consent",
        summary=(
            "加入员工通勤计划时须同意的说明及其版本 · "
            "The consent text to accept when joining an employer's commuting programme"
        ),
        responses=errors(*_GUARDED),
    )
    async def consent(self, reader: NamedDependency[Reader]) -> CommutingConsent:
        async with reader.pool.acquire() as conn:  # a deleted account is refused here too
            await residents.require_active(conn, reader.resident_id)
        return commuting.consent(reader.lang)

    @get(
        "/memberships",
        summary=(
            "我的员工通勤计划（当前的在前，含已退出的） · "
            "My employee commuting programmes (current first, then those I left)"
        ),
        responses=errors(*_GUARDED),
    )
    async def mine(self, reader: NamedDependency[Reader]) -> list[CommutingMembership]:
        async with reader.pool.acquire() as conn:
            await residents.require_active(conn, reader.resident_id)
            return await commuting.memberships(conn, reader.resident_id)

    @post(
        "/memberships",
        status_code=200,
        summary=(
            "用员工码或邀请链接加入雇主的通勤计划，并同意说明 · "
            "Join an employer's commuting programme with an employee code or an invitation "
            "link, accepting the consent text"
        ),
        description=(
            "`consent_version` 必须是 `GET /commuting/consent` 当前的版本。员工码需同时给出 "
            "`programme_id`；邀请链接只需 `invitation_token`。已是该计划成员时原样返回（幂等）。"
            "企业只看到同意员工的合计，看不到个人行程或谁加入了。\n\n"
            "`consent_version` must be the current one of `GET /commuting/consent`. An "
            "employee code goes with `programme_id`; an invitation link needs only "
            "`invitation_token`. Joining a programme you are in answers the membership "
            "unchanged (idempotent). The employer sees only totals of consenting employees, "
            "never your trips or whether you joined."
        ),
        responses=errors(
            *_GUARDED,
            "validation_failed",
            "commuting_consent_required",
            "commuting_code_invalid",
            "commuting_already_member",
        ),
    )
    async def join(
        self,
        principal: NamedDependency[Principal],
        tx: NamedDependency[Tx],
        data: JSONBody[CommutingJoin],
    ) -> CommutingMembership:
        await residents.require_active(tx.conn, principal.subject)
        return await commuting.join(tx, principal.subject, data)

    @delete(
        "/memberships/{programme_id:str}",
        status_code=204,
        summary=(
            "退出通勤计划（撤回同意，立即生效；再次退出不变） · "
            "Leave a commuting programme (consent withdrawn at once; leaving again changes "
            "nothing)"
        ),
        responses=errors(*_GUARDED, "validation_failed", "commuting_programme_not_found"),
    )
    async def leave(
        self,
        principal: NamedDependency[Principal],
        tx: NamedDependency[Tx],
        programme_id: ProgrammeId,
    ) -> None:
        await residents.require_active(tx.conn, principal.subject)
        await commuting.leave(tx, principal.subject, uuid.UUID(programme_id))


commuting_router = Router(path=PREFIX, route_handlers=[CommutingController])

__all__ = ["commuting_router"]
