"""Residents' reward routes of the mobile API v1 (`/api/mobile/v1`): the catalogue, one item,
redeeming, my rewards (status and codes) and cancelling an unused one.

Thin controllers over ``rewards.service``; the same guard and session check as every resident
route (``server.mobile.routes.resident_session``), the caller from the token. Registered in
``server.app.SURFACES``; the contract (``mobile_api_spec``) takes every route under the mobile
prefix.
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
from rewards import service
from rewards.schemas import Item, ItemPage, Kind, RedeemRequest, Reward, RewardPage, Status
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
Id = Annotated[
    str,
    PathParameter(
        min_length=36,
        max_length=36,
        pattern=r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$",
    ),
]


class RewardsController(Controller):
    """The catalogue and the rewards of a signed-in resident."""

    guards = [resident_session]  # noqa: RUF012 (Litestar's class attribute)
    dependencies = {  # noqa: RUF012
        "principal": provide_principal,
        "reader": Provide(_provide_reader, sync_to_thread=False),
    }
    security = [{"BearerToken": []}]  # noqa: RUF012
    tags = ["rewards"]  # noqa: RUF012

    @get(
        "/catalogue",
        summary=(
            "可兑换的奖励（我所在区可兑的，按积分从低到高，游标分页） · "
            "Rewards to redeem (those open to my district, cheapest first, cursor pagination)"
        ),
        responses=errors(*_GUARDED, "validation_failed", "cursor_invalid"),
    )
    async def catalogue(
        self,
        reader: NamedDependency[Reader],
        kind: Annotated[Kind | None, QueryParameter()] = None,
        merchant_id: Annotated[str | None, QueryParameter(max_length=64)] = None,
        max_cost: Annotated[int | None, QueryParameter(ge=1, le=100_000_000)] = None,
        cursor: Annotated[str | None, QueryParameter(max_length=512)] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=100)] = 20,
    ) -> ItemPage:
        async with reader.pool.acquire() as conn:
            district = await residents.require_active(conn, reader.resident_id)
            return await service.browse(
                conn,
                kind=kind,
                merchant_id=merchant_id,
                max_cost=max_cost,
                district=district,
                any_district=False,
                cursor=cursor,
                limit=limit,
            )

    @get(
        "/catalogue/{item_id:str}",
        summary="一个奖励的详情 · One catalogue item",
        responses=errors(*_GUARDED, "validation_failed", "item_not_found"),
    )
    async def item(self, reader: NamedDependency[Reader], item_id: Id) -> Item:
        async with reader.pool.acquire() as conn:
            await residents.require_active(conn, reader.resident_id)
            return await service.get_item(conn, item_id)

    @post(
        "/redemptions",
        status_code=201,
        summary=(
            "兑换：冻结积分、预留一件库存并发放奖励（券码和二维码内容） · "
            "Redeem: points held, one unit reserved, the reward issued (code and QR payload)"
        ),
        description=(
            "必须带 `Idempotency-Key`：相同键和相同请求体的重试返回第一次的应答（只发放一次）。"
            "积分在商户核销前处于冻结状态；有效期结束未核销则自动释放，也可以主动取消。\n\n"
            "Send `Idempotency-Key`: a retry with the same key and body returns the first answer "
            "(issued once). The points stay on hold until the merchant confirms the reward; "
            "unconfirmed at the end of its validity, it expires and they are released (or "
            "cancel it)."
        ),
        responses=errors(
            *_GUARDED,
            "validation_failed",
            "idempotency_key_reused",
            "item_not_found",
            "not_available",
            "out_of_stock",
            "limit_reached",
            "insufficient_points",
        ),
    )
    async def redeem(
        self,
        principal: NamedDependency[Principal],
        tx: NamedDependency[Tx],
        settings: NamedDependency[Settings],
        data: JSONBody[RedeemRequest],
        idempotency_key: Annotated[
            str, HeaderParameter(name="Idempotency-Key", min_length=1, max_length=128)
        ],
    ) -> Response[Reward]:
        cfg = service.config_of(settings)
        resident_id = principal.subject
        await residents.require_active(tx.conn, resident_id)
        digest = idempotency.request_hash("POST", "redemptions", _encoder.encode(data))
        status, reward = await idempotency.replay_or_run(
            tx,
            f"resident:{resident_id}",
            idempotency_key,
            digest,
            lambda: service.redeem(tx, cfg, resident_id, data.item_id),
            Reward,
            status=201,
        )
        return Response(content=reward, status_code=status)

    @get(
        "/rewards",
        summary=(
            "我的奖励（状态和券码），最新的在前（游标分页） · "
            "My rewards (status and codes), newest first (cursor pagination)"
        ),
        responses=errors(*_GUARDED, "validation_failed", "cursor_invalid"),
    )
    async def my_rewards(
        self,
        reader: NamedDependency[Reader],
        settings: NamedDependency[Settings],
        status: Annotated[Status | None, QueryParameter()] = None,
        cursor: Annotated[str | None, QueryParameter(max_length=512)] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=100)] = 20,
    ) -> RewardPage:
        cfg = service.config_of(settings)
        async with reader.pool.acquire() as conn:
            await residents.require_active(conn, reader.resident_id)
            return await service.my_rewards(
                conn, cfg, reader.resident_id, status=status, cursor=cursor, limit=limit
            )

    @get(
        "/rewards/{reward_id:str}",
        summary="我的一个奖励 · One of my rewards",
        responses=errors(*_GUARDED, "validation_failed", "reward_not_found"),
    )
    async def my_reward(
        self, reader: NamedDependency[Reader], settings: NamedDependency[Settings], reward_id: Id
    ) -> Reward:
        async with reader.pool.acquire() as conn:
            await residents.require_active(conn, reader.resident_id)
            return await service.my_reward(
                conn, service.config_of(settings), reader.resident_id, reward_id
            )

    @post(
        "/rewards/{reward_id:str}/cancel",
        status_code=200,
        summary=(
            "取消未使用的奖励：冻结积分释放，库存退回（再次取消返回同一结果） · "
            "Cancel an unused reward: points released, stock given back (idempotent)"
        ),
        responses=errors(
            *_GUARDED,
            "validation_failed",
            "reward_not_found",
            "reward_already_used",
            "reward_expired",
        ),
    )
    async def cancel(
        self,
        principal: NamedDependency[Principal],
        tx: NamedDependency[Tx],
        settings: NamedDependency[Settings],
        reward_id: Id,
    ) -> Reward:
        await residents.require_active(tx.conn, principal.subject)
        return await service.cancel(tx, service.config_of(settings), principal.subject, reward_id)


rewards_mobile_router = Router(path=PREFIX, route_handlers=[RewardsController])

__all__ = ["rewards_mobile_router"]
