"""Residents' donation routes of the mobile API v1 (`/api/mobile/v1`): public-welfare
projects, donating points or retiring grams to one, and my certificates.

Thin controllers over ``rewards`` (projects, donations); the same guard and session check as
every resident route (``server.mobile.routes.resident_session``), the caller from the token.
Registered in ``server.app.SURFACES``; the contract (``mobile_api_spec``) takes every route
under the mobile prefix.
"""

from __future__ import annotations

from typing import Annotated

import msgspec
from litestar import Controller, Response, Router, get, post
from litestar.di import NamedDependency, Provide
from litestar.params import HeaderParameter, JSONBody, PathParameter, QueryParameter

import residents.service as residents
from kit import idempotency
from kit.auth import Principal
from kit.db import Tx
from points.schemas import PointsPolicy
from rewards import donations, projects
from rewards.donation_schemas import (
    Donation,
    DonationPage,
    DonationRequest,
    Project,
    ProjectPage,
)
from server.guards import provide_principal
from server.mobile.routes import (
    _GUARDED,
    PREFIX,
    Reader,
    _provide_reader,
    errors,
    resident_session,
)
from server.settings import Settings

_encoder = msgspec.json.Encoder()
ProjectId = Annotated[str, PathParameter(min_length=1, max_length=64)]


class DonationController(Controller):
    """Projects, donations and certificates of a signed-in resident."""

    guards = [resident_session]  # noqa: RUF012 (Litestar's class attribute)
    dependencies = {  # noqa: RUF012
        "principal": provide_principal,
        "reader": Provide(_provide_reader, sync_to_thread=False),
    }
    security = [{"BearerToken": []}]  # noqa: RUF012
    tags = ["donation"]  # noqa: RUF012

    @get(
        "/projects",
        summary=(
            "可捐赠的公益项目及其进度（游标分页） · "
            "Public-welfare projects to give to, with their progress (cursor pagination)"
        ),
        responses=errors(*_GUARDED, "validation_failed", "cursor_invalid"),
    )
    async def project_list(
        self,
        reader: NamedDependency[Reader],
        cursor: Annotated[str | None, QueryParameter(max_length=512)] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=100)] = 20,
        open_only: Annotated[bool, QueryParameter(name="open")] = False,
    ) -> ProjectPage:
        async with reader.pool.acquire() as conn:
            await residents.require_active(conn, reader.resident_id)
            return await projects.page(conn, cursor=cursor, limit=limit, open_only=open_only)

    @get(
        "/projects/{project_id:str}",
        summary="一个公益项目 · One public-welfare project",
        responses=errors(*_GUARDED, "validation_failed", "project_not_found"),
    )
    async def project(self, reader: NamedDependency[Reader], project_id: ProjectId) -> Project:
        async with reader.pool.acquire() as conn:
            await residents.require_active(conn, reader.resident_id)
            return await projects.get(conn, project_id)

    @post(
        "/projects/{project_id:str}/donations",
        status_code=201,
        summary=(
            "向项目捐赠积分（POINT）或注销核证减排克数（CO2E_G），得到一张证书 · "
            "Donate points (POINT) or retire verified grams (CO2E_G) to a project: a certificate"
        ),
        description=(
            "必须带 `Idempotency-Key`：相同键和相同请求体的重试返回第一次的应答（只捐一次）。"
            "注销的克数永远不能再出售或抵消。证书的公开地址见 `certificate_url`，区块封存后"
            "（几秒）附带默克尔证明。\n\n"
            "Send `Idempotency-Key`: a retry with the same key and body returns the first "
            "answer (given once). Retired grams can never be sold or offset again. The "
            "certificate's public address is `certificate_url`; once its block is sealed (a "
            "few seconds) it carries its Merkle proof."
        ),
        responses=errors(
            *_GUARDED,
            "validation_failed",
            "idempotency_key_reused",
            "project_not_found",
            "project_closed",
            "insufficient_funds",
            "grams_pooled",
        ),
    )
    async def donate(
        self,
        principal: NamedDependency[Principal],
        tx: NamedDependency[Tx],
        settings: NamedDependency[Settings],
        project_id: ProjectId,
        data: JSONBody[DonationRequest],
        idempotency_key: Annotated[
            str, HeaderParameter(name="Idempotency-Key", min_length=1, max_length=128)
        ],
    ) -> Response[Donation]:
        policy = PointsPolicy.from_settings(settings.points, timezone=settings.timezone)
        resident_id = principal.subject

        async def run() -> Donation:
            await residents.require_active(tx.conn, resident_id)
            return await donations.donate(
                tx,
                policy,
                resident_id=resident_id,
                project_id=project_id,
                asset=data.asset,
                amount=data.amount,
                region_code=settings.region_code,
            )

        digest = idempotency.request_hash(
            "POST", f"projects/{project_id}/donations", _encoder.encode(data)
        )
        status, donation = await idempotency.replay_or_run(
            tx, f"resident:{resident_id}", idempotency_key, digest, run, Donation, status=201
        )
        return Response(content=donation, status_code=status)

    @get(
        "/certificates",
        summary=(
            "我的捐赠证书（捐赠和注销），最新的在前（游标分页） · "
            "My donation certificates (donations and retirements), newest first"
        ),
        responses=errors(*_GUARDED, "validation_failed", "cursor_invalid"),
    )
    async def my_certificates(
        self,
        reader: NamedDependency[Reader],
        cursor: Annotated[str | None, QueryParameter(max_length=512)] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=100)] = 20,
    ) -> DonationPage:
        async with reader.pool.acquire() as conn:
            await residents.require_active(conn, reader.resident_id)
            return await donations.mine(conn, reader.resident_id, cursor=cursor, limit=limit)


donation_router = Router(path=PREFIX, route_handlers=[DonationController])

__all__ = ["donation_router"]
