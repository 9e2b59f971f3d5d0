"""Operators' API (``/api/operators/v1``), HMAC-signed: thin handlers. Each reads the raw
body, verifies the signature over it *before* decoding, decodes with msgspec in one pass and
calls one service function."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from litestar import Request, Response, Router, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, QueryParameter

from behaviours import service
from behaviours.errors import BodyTooLarge, InvalidRecords, TooManyRecords
from behaviours.events import EventBatch, Source, batch_decoder
from server.auth import SignedCaller, verify_signature
from server.db import Tx
from server.errors import FieldError
from server.settings import Settings

_encoder = msgspec.json.Encoder()


def _signed_path(request: Request[Any, Any, Any]) -> str:
    query = request.scope.get("query_string", b"")
    path: str = request.scope["path"]
    return f"{path}?{query.decode('latin-1')}" if query else path


async def _read_limited(request: Request[Any, Any, Any], limit: int, what: str) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(f"{what} is {declared} bytes; the limit is {limit} bytes.")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(f"{what} exceeds the limit of {limit} bytes.")
        chunks.append(chunk)
    return b"".join(chunks)


async def _caller(
    request: Request[Any, Any, Any],
    tx: NamedDependency[Tx],
    redis: NamedDependency[Any],
    settings: NamedDependency[Settings],
    body: bytes,
) -> SignedCaller:
    return await verify_signature(
        method=request.method,
        path=_signed_path(request),
        headers=request.headers,
        body=body,
        lookup_secret=service.secret_lookup(tx.conn),
        redis=redis,
        skew_s=settings.auth.signature_skew_s,
    )


def _json(obj: Any, status: int = 200) -> Response[bytes]:
    return Response(content=_encoder.encode(obj), status_code=status, media_type="application/json")


@post(
    "/events",
    summary="Push a batch of events (at most 5,000); one verdict per record",
    request_max_body_size=None,
    status_code=200,
)
async def push_events(
    request: Request[Any, Any, Any],
    tx: NamedDependency[Tx],
    redis: NamedDependency[Any],
    settings: NamedDependency[Settings],
) -> Response[bytes]:
    limits = settings.ingest
    body = await _read_limited(request, limits.max_batch_bytes, "The batch body")
    caller = await _caller(request, tx, redis, settings, body)
    try:
        batch: EventBatch = batch_decoder.decode(body)
    except msgspec.ValidationError as exc:
        message, _, path = str(exc).partition(" - at `")
        raise InvalidRecords(
            "The batch does not match the event schema; nothing was stored.",
            errors=[FieldError(path=path.rstrip("`") or "$", message=message)],
        ) from None
    except msgspec.DecodeError as exc:
        raise InvalidRecords(f"The body is not valid JSON: {exc}") from None
    if len(batch.events) > limits.max_batch_records:
        raise TooManyRecords(
            f"{len(batch.events)} events in one batch; the limit is {limits.max_batch_records}."
        )
    verdicts = await service.ingest(
        tx, Source(operator_id=caller.operator_id), batch.events, settings=settings
    )
    return _json(service.summarise(verdicts))


@post(
    "/files",
    summary="Upload a daily file (NDJSON or CSV); processed in the background",
    request_max_body_size=None,
    status_code=202,
)
async def upload_file(
    request: Request[Any, Any, Any],
    tx: NamedDependency[Tx],
    redis: NamedDependency[Any],
    settings: NamedDependency[Settings],
    file_format: Annotated[Literal["ndjson", "csv"], QueryParameter(name="format")] = "ndjson",
) -> Response[bytes]:
    from integrations.tasks import process_file
    from server.worker import enqueue_after_commit

    body = await _read_limited(request, settings.ingest.max_file_bytes, "The file")
    caller = await _caller(request, tx, redis, settings, body)
    file_id, new = await service.create_file(tx, caller.operator_id, file_format, body)
    if new:
        enqueue_after_commit(tx, process_file, file_id)
    status = await service.file_status(tx.conn, caller.operator_id, file_id)
    return _json(status, 202 if new else 200)


@get("/files/{file_id:str}", summary="Status and counts of an uploaded file")
async def file_status(
    request: Request[Any, Any, Any],
    tx: NamedDependency[Tx],
    redis: NamedDependency[Any],
    settings: NamedDependency[Settings],
    file_id: FromPath[str],
) -> Response[bytes]:
    caller = await _caller(request, tx, redis, settings, b"")
    return _json(await service.file_status(tx.conn, caller.operator_id, file_id))


@get("/files/{file_id:str}/results", summary="Per-record verdicts of a file, as NDJSON")
async def file_results(
    request: Request[Any, Any, Any],
    tx: NamedDependency[Tx],
    redis: NamedDependency[Any],
    settings: NamedDependency[Settings],
    file_id: FromPath[str],
) -> Response[bytes]:
    caller = await _caller(request, tx, redis, settings, b"")
    content = await service.file_results(tx.conn, caller.operator_id, file_id)
    return Response(content=content, media_type="application/x-ndjson")


operators_router = Router(
    path="/api/operators/v1",
    route_handlers=[push_events, upload_file, file_status, file_results],
    tags=["operators"],
)
