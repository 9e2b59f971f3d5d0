"""What every value-moving POST of the HTTP surfaces shares: the ``Idempotency-Key`` header
(optional or required), the request's digest, replay-or-run answered as one ``Response``
(kit.idempotency: the same key and body answer the first answer again, another body
``idempotency_key_reused``), and the ledger policy of the settings."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

import msgspec
from litestar import Request, Response
from litestar.params import HeaderParameter

from kit import idempotency
from kit.db import Tx
from points.schemas import PointsPolicy
from server.settings import Settings

T = TypeVar("T")

IdempotencyKey = Annotated[
    str | None,
    HeaderParameter(name="Idempotency-Key", min_length=1, max_length=128, required=False),
]
RequiredKey = Annotated[str, HeaderParameter(name="Idempotency-Key", min_length=1, max_length=128)]
_encoder = msgspec.json.Encoder()


def digest(request: Request[Any, Any, Any], body: Any) -> bytes:
    """The request's identity for its key: method, path and the decoded body re-encoded."""
    return idempotency.request_hash(request.method, request.url.path, _encoder.encode(body))


async def once(
    request: Request[Any, Any, Any],
    tx: Tx,
    scope: str,
    key: str | None,
    body: Any,
    run: Callable[[], Awaitable[T]],
    answer_type: type[T],
    *,
    status: int = 201,
) -> Response[T]:
    """``run()`` once per (``scope``, ``key``) in ``tx``: its answer, or the remembered one."""
    code, value = await idempotency.replay_or_run(
        tx, scope, key, digest(request, body), run, answer_type, status=status
    )
    return Response(content=value, status_code=code)


def ledger_policy(settings: Settings) -> PointsPolicy:
    return PointsPolicy.from_settings(settings.points, timezone=settings.timezone)
