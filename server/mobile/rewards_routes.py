"""Residents' reward routes of the mobile API v1 (`/api/mobile/v1`): the catalogue, one item,
redeeming, my rewards (status and codes) and cancelling an unused one.

Thin controllers over ``rewards.service``; the same guard and session check as every resident
route (``server.mobile.routes.resident_session``), the caller from the token. Registered in
``server.app.SURFACES``; the contract (``mobile_api_spec``) takes every route under the mobile
prefix.

Redeeming goes through the app's micro-batcher (``kit.batcher``, ``app.state.redemptions``,
made by :func:`redemption_batcher` in the lifespan): the requests in flight in this process
are run together, one transaction per batch (:func:`redeem_batch`: the account check, the
``Idempotency-Key`` replays and the redemptions, set-wise), each answered as if it had run
alone; a batch that fails as a whole is run again one request at a time (:func:`redeem_one`,
the one-by-one path), so one request never fails the others ("Redemption at scale",
docs/rewards.md).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any, NamedTuple

import msgspec
from litestar import Controller, Response, Router, get, post
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.params import HeaderParameter, JSONBody, PathParameter, QueryParameter

import residents.service as residents
from kit import idempotency
from kit.auth import Principal
from kit.batcher import Batcher
from kit.db import Tx, transaction
from residents.errors import AccountGone
from rewards import service
from rewards.redemptions import RedeemCall, redeem_many
from rewards.schemas import Item, ItemPage, Kind, RedeemRequest, Reward, RewardPage, Status
from rewards.settings import RewardsConfig
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
log = logging.getLogger("tanpuhui.rewards")
# The micro-batcher's shape: up to 64 requests a batch, two batches in flight (the pool's other
# connections serve the rest of the API).
Id = Annotated[
    str,
    PathParameter(
        min_length=36,
        max_length=36,
        pattern=r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$",
    ),
]


class Redemption(NamedTuple):
    """One ``POST /redemptions`` past its guard: the resident (from the token), the item, the
    ``Idempotency-Key`` and the request's hash."""

    resident_id: str
    item_id: str
    key: str | None
    digest: bytes

    @classmethod
    def of(cls, resident_id: str, data: RedeemRequest, key: str | None) -> Redemption:
        digest = idempotency.request_hash("POST", "redemptions", _encoder.encode(data))
        return cls(resident_id, data.item_id, key, digest)

    @property
    def scope(self) -> str:
        return f"resident:{self.resident_id}"


Answer = tuple[int, Reward]


async def redeem_one(
    pool: Any, cfg: RewardsConfig, r: Redemption, *, now: datetime | None = None
) -> Answer:
    """The one-by-one path: the route's work for one request, in a transaction of its own."""
    async with transaction(pool) as tx:
        await residents.require_active(tx.conn, r.resident_id)
        return await idempotency.replay_or_run(
            tx,
            r.scope,
            r.key,
            r.digest,
            lambda: service.redeem(tx, cfg, r.resident_id, r.item_id, now=now),
            Reward,
            status=201,
        )


async def redeem_in(
    tx: Tx, cfg: RewardsConfig, batch: Sequence[Redemption], *, now: datetime | None = None
) -> list[Answer | Exception]:
    """A batch's work in its transaction: each request's answer or exception, as
    :func:`redeem_one` would give them one after another in this order (the account check
    first, then the key's replay or the redemption)."""
    districts = await residents.active_districts(tx.conn, [r.resident_id for r in batch])
    out: list[Answer | Exception | None] = [None] * len(batch)
    live: list[int] = []
    for i, r in enumerate(batch):
        if r.resident_id in districts:
            live.append(i)
        else:
            out[i] = AccountGone("This account was deleted; sign in again.")

    async def run(indices: list[int]) -> list[Reward | Exception]:
        calls = [RedeemCall(batch[live[i]].resident_id, batch[live[i]].item_id) for i in indices]
        return await redeem_many(tx, cfg, calls, now=now, districts=districts)

    answers = await idempotency.replay_or_run_many(
        tx,
        [idempotency.Keyed(batch[i].scope, batch[i].key, batch[i].digest) for i in live],
        run,
        Reward,
        status=201,
    )
    for i, answer in zip(live, answers, strict=True):
        out[i] = answer
    return [o for o in out if o is not None]


async def redeem_batch(
    pool: Any, cfg: RewardsConfig, batch: Sequence[Redemption], *, now: datetime | None = None
) -> list[Answer | Exception]:
    """One transaction for the batch; if it fails as a whole (a deadlock, a lost connection,
    anything the decisions did not foresee), each request again on the one-by-one path, so
    each gets its own answer (a transient failure of its own stays its 503)."""
    try:
        async with transaction(pool) as tx:
            return await redeem_in(tx, cfg, batch, now=now)
    except Exception:
        log.warning(
            "a batch of %d redemptions failed; running them one by one", len(batch), exc_info=True
        )
    out: list[Answer | Exception] = []
    for r in batch:
        try:
            out.append(await redeem_one(pool, cfg, r, now=now))
        except Exception as exc:
            out.append(exc)
    return out


def redemption_batcher(pool: Any, settings: Settings) -> Batcher[Redemption, Answer]:
    """The app's redemption batcher (one per app, made and closed by its lifespan)."""
    return batcher_of(pool, service.config_of(settings))


def batcher_of(pool: Any, cfg: RewardsConfig) -> Batcher[Redemption, Answer]:
    """A redemption batcher on ``pool`` (the app's, or a benchmark's)."""

    async def run(batch: list[Redemption]) -> list[Answer | Exception]:
        return await redeem_batch(pool, cfg, batch)

    return Batcher(
        run,
        max_batch=cfg.rewards.redemption_batch_max,
        concurrency=cfg.rewards.redemption_batch_concurrency,
    )


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
        state: State,
        data: JSONBody[RedeemRequest],
        idempotency_key: Annotated[
            str, HeaderParameter(name="Idempotency-Key", min_length=1, max_length=128)
        ],
    ) -> Response[Reward]:
        batcher: Batcher[Redemption, Answer] = state.redemptions
        status, reward = await batcher.submit(
            Redemption.of(principal.subject, data, idempotency_key)
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
