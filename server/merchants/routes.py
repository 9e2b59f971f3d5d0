"""Merchants' API (``/api/merchants/v1``), HMAC-signed with the operators' scheme: thin handlers.

Every request is signed as an operator's is (``kit.auth``: ``X-Operator-Id`` carries the
merchant's id, ``X-Key-Id``, ``X-Timestamp``, ``X-Nonce``, ``X-Signature`` over
``METHOD\\nPATH\\nTIMESTAMP\\nNONCE\\nsha256(body)``) and verified the same way, before any
transaction is opened: the headers first (before a byte of the body is read), then the bounded
body, the key (one query on the pool, the merchants' own ``merchant_keys``), the MAC, the nonce.
Only then is the body decoded and one service call made, in ``kit.db.transaction(pool)`` for
writes (``Idempotency-Key`` honoured: the same key and body replay the first answer) and on the
pool for reads. Answers name no resident and mask codes.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypeVar

import msgspec
from litestar import Request, Response, Router, get, post
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, HeaderParameter, QueryParameter

from kit import idempotency
from kit.auth import SignedCaller
from kit.db import transaction
from kit.errors import FieldError, InvalidInput
from rewards import service
from rewards.schemas import CodeRequest, MerchantReward, RefundRequest, Statement
from server.settings import Settings
from server.signed import signed_path, signed_request

PREFIX = "/api/merchants/v1"
MAX_BODY_BYTES = 16 * 1024
CSV_MEDIA_TYPE = "text/csv"
DATE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
T = TypeVar("T")
IdempotencyKey = Annotated[
    str | None,
    HeaderParameter(name="Idempotency-Key", min_length=1, max_length=128, required=False),
]


class DeliveryRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    status: Literal["shipped", "delivered"]


async def _signed(
    request: Request[Any, Any, Any], pool: Any, redis: Any, settings: Settings, *, body: bool
) -> tuple[SignedCaller, bytes]:
    """The verified merchant and the body (bounded; none read for a GET). Holds no pooled
    connection while the body arrives."""
    lookup = service.secret_lookup(pool, service.config_of(settings))
    return await signed_request(
        request, redis, settings, lookup, limit=MAX_BODY_BYTES if body else 0
    )


def _decode(raw: bytes, kind: type[T]) -> T:
    try:
        return msgspec.json.decode(raw, type=kind, strict=True)
    except msgspec.ValidationError as exc:
        raise InvalidInput(
            "The body does not match the schema.",
            code="validation_failed",
            errors=[FieldError("$", str(exc))],
        ) from None
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        raise InvalidInput("The body is not JSON.", code="validation_failed") from None


async def _write(
    request: Request[Any, Any, Any],
    pool: Any,
    caller: SignedCaller,
    raw: bytes,
    key: str | None,
    run: Any,
) -> MerchantReward:
    digest = idempotency.request_hash(request.method, signed_path(request), raw)
    async with transaction(pool) as tx:
        _, answer = await idempotency.replay_or_run(
            tx, f"merchant:{caller.operator_id}", key, digest, lambda: run(tx), MerchantReward
        )
    return answer


@post(
    "/rewards/lookup",
    status_code=200,
    summary="按券码（文本或二维码内容）查询奖励，券码打码 · Look up a reward by its code (masked)",
)
async def lookup(
    request: Request[Any, Any, Any],
    pool: NamedDependency[Any],
    redis: NamedDependency[Any],
    settings: NamedDependency[Settings],
) -> MerchantReward:
    caller, raw = await _signed(request, pool, redis, settings, body=True)
    data = _decode(raw, CodeRequest)
    return await service.lookup(pool, service.config_of(settings), caller.operator_id, data.code)


@post(
    "/rewards/confirm",
    status_code=200,
    summary=(
        "核销：奖励在柜台被使用，冻结积分划入商户账户（仅一次） · "
        "Confirm use at the till: the hold is posted to the merchant (once)"
    ),
)
async def confirm(
    request: Request[Any, Any, Any],
    pool: NamedDependency[Any],
    redis: NamedDependency[Any],
    settings: NamedDependency[Settings],
    idempotency_key: IdempotencyKey = None,
) -> MerchantReward:
    caller, raw = await _signed(request, pool, redis, settings, body=True)
    data = _decode(raw, CodeRequest)
    cfg = service.config_of(settings)
    return await _write(
        request,
        pool,
        caller,
        raw,
        idempotency_key,
        lambda tx: service.confirm(tx, cfg, caller.operator_id, data.code),
    )


@post(
    "/rewards/refund",
    status_code=200,
    summary=(
        "退款：已核销奖励的积分退回居民（冲正，仅一次） · "
        "Refund a confirmed reward: its points go back to the resident (once)"
    ),
)
async def refund(
    request: Request[Any, Any, Any],
    pool: NamedDependency[Any],
    redis: NamedDependency[Any],
    settings: NamedDependency[Settings],
    idempotency_key: IdempotencyKey = None,
) -> MerchantReward:
    caller, raw = await _signed(request, pool, redis, settings, body=True)
    data = _decode(raw, RefundRequest)
    cfg = service.config_of(settings)
    return await _write(
        request,
        pool,
        caller,
        raw,
        idempotency_key,
        lambda tx: service.refund(tx, cfg, caller.operator_id, data.reward_id),
    )


@post(
    "/rewards/{reward_id:uuid}/delivery",
    status_code=200,
    summary="实物奖励的配送状态 · Delivery status of a physical reward",
)
async def delivery(
    request: Request[Any, Any, Any],
    pool: NamedDependency[Any],
    redis: NamedDependency[Any],
    settings: NamedDependency[Settings],
    reward_id: FromPath[Any],
) -> MerchantReward:
    caller, raw = await _signed(request, pool, redis, settings, body=True)
    data = _decode(raw, DeliveryRequest)
    cfg = service.config_of(settings)
    async with transaction(pool) as tx:
        return await service.set_delivery(tx, cfg, caller.operator_id, str(reward_id), data.status)


@get(
    "/statements",
    summary=(
        "结算单：期间内核销和退款的奖励及积分（JSON 或 CSV），与账本逐分核对 · "
        "Settlement statement: rewards confirmed and refunded in a period (JSON or CSV)"
    ),
    responses={
        200: ResponseSpec(
            Statement,
            description="JSON (`format=json`), or CSV (`format=csv`): one row per line, a total",
        )
    },
)
async def statement(
    request: Request[Any, Any, Any],
    pool: NamedDependency[Any],
    redis: NamedDependency[Any],
    settings: NamedDependency[Settings],
    start: Annotated[str, QueryParameter(pattern=DATE, description="YYYY-MM-DD, included")],
    end: Annotated[str, QueryParameter(pattern=DATE, description="YYYY-MM-DD, excluded")],
    out: Annotated[Literal["json", "csv"], QueryParameter(name="format")] = "json",
) -> Response[Any]:
    caller, _ = await _signed(request, pool, redis, settings, body=False)
    cfg = service.config_of(settings)
    found = await service.statement(pool, cfg, caller.operator_id, start, end)
    if out == "csv":
        return Response(content=service.statement_csv(found), media_type=CSV_MEDIA_TYPE)
    return Response(content=found)


merchants_router = Router(
    path=PREFIX,
    route_handlers=[lookup, confirm, refund, delivery, statement],
    tags=["merchants"],
)
