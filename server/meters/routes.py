"""The meters' API (``/api/meters/v1``): utilities and enterprises' gateways push meter
readings, HMAC-signed with the operators' scheme (they are operators: behaviours' operators and
operator keys, docs/enterprises.md "Data in"). Thin handlers.

As on the operators' API, the caller is resolved before any transaction is opened: the signature
headers are checked before a byte of the body is read, the body is read bounded, the key looked
up on the pool, the HMAC and the nonce verified; only then is the body decoded and one service
call made inside ``kit.db.transaction(pool)``.
"""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

import msgspec
from litestar import Request, Router, post
from litestar.di import NamedDependency

from behaviours.errors import TooManyRecords
from enterprises import energy
from enterprises.energy_schemas import ReadingsResult
from kit.db import transaction
from server.errors import language, verdict_message
from server.operators.routes import signed_operator
from server.settings import Settings


def _localised(result: ReadingsResult, lang: str) -> ReadingsResult:
    if lang == "en":
        return result
    return msgspec.structs.replace(
        result,
        results=[
            msgspec.structs.replace(v, message=verdict_message(lang, v.reason_code, v.message))
            if v.message is not None
            else v
            for v in result.results
        ],
    )


@post(
    "/readings",
    summary=(
        "推送一批计量读数（最多 5,000 条）；每条一个结果 · "
        "Push a batch of meter readings (at most 5,000); one verdict per reading"
    ),
    description=(
        "Each reading names one of the caller's meters (`meter`: the reference it was "
        "registered under), the end of the interval read (`at`, with its UTC offset) and its "
        "value (the register, or the interval's quantity) in the meter's unit or `unit`. "
        "Verdicts: `accepted` (counted), `flagged` (stored, not counted: `reading_backwards`, "
        "`reading_gap`, `reading_spike`), `duplicate` (the same value was stored), `conflict` "
        "(another value is stored for that instant: kept), `rejected` (not stored). Resending a "
        "batch is safe."
    ),
    request_max_body_size=None,
    status_code=200,
)
async def push_readings(
    request: Request[Any, Any, Any],
    pool: NamedDependency[Any],
    redis: NamedDependency[Any],
    settings: NamedDependency[Settings],
) -> ReadingsResult:
    caller, body = await signed_operator(
        request,
        pool,
        redis,
        settings,
        limit=energy.READINGS_MAX_BYTES,
        what="The readings body",
    )
    batch = energy.decode_readings(body)
    if len(batch.readings) > energy.READINGS_MAX:
        raise TooManyRecords(
            f"{len(batch.readings)} readings in one batch; the limit is {energy.READINGS_MAX}."
        )
    async with transaction(pool) as tx:
        result = await energy.ingest_readings(
            tx, caller.operator_id, batch.readings, zone=ZoneInfo(settings.timezone)
        )
    return _localised(result, language(request))


meters_router = Router(path="/api/meters/v1", route_handlers=[push_readings], tags=["meters"])
