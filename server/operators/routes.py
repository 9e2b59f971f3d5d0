"""Operators' API (``/api/operators/v1``), HMAC-signed: thin handlers.

The signed caller is resolved before any transaction is opened, so unauthenticated bytes never
hold a pooled connection: the signature headers are checked (present, well-formed, timestamp in
the window) before a byte of the body is read; then the body is read (bounded), the signing key
looked up on the pool (one short query, no transaction), the HMAC and the nonce verified. Only
then is the body decoded (msgspec, one pass) and one service function called, inside
``kit.db.transaction(pool)`` for writes and straight on the pool for reads (the GETs: one
SELECT each, no BEGIN).

Handlers return Structs, so the OpenAPI at ``/schema`` shows each answer's schema; a file's
results stay NDJSON (one :class:`~behaviours.files.FileResultLine` per line), documented in
the route's ``responses``, and are streamed chunk by chunk. A daily file's body is spooled (memory
up to 1 MiB, then a temporary file) and hashed as it arrives, so the signature is verified
before anything is stored and the upload's memory does not grow with the file.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

import msgspec
from litestar import Request, Response, Router, get, post
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, QueryParameter
from litestar.response import Stream

from behaviours import files, service
from behaviours.errors import BodyTooLarge, TooManyRecords
from behaviours.events import BatchResult, Source, Verdict, decode_batch
from behaviours.files import INTERNAL_FAILURE, FileResultLine, FileStatus, Spool
from behaviours.pipeline import IngestPolicy
from behaviours.tasks import process_file
from kit.auth import SignedCaller, check_signature_headers, verify_signed
from kit.db import transaction
from kit.tasks import enqueue_after_commit
from server.errors import catalogue, language, verdict_message
from server.settings import Settings
from server.signed import signed_path, signed_request
from server.wire import ACCEPTS

# The media types a daily file may be sent as (anything else: 415 unsupported_media_type).
FILE_MEDIA_TYPES = (
    "application/x-ndjson",
    "application/jsonl",
    "text/csv",
    "text/plain",
    "application/octet-stream",
)
RESULTS_MEDIA_TYPE = "application/x-ndjson"


def _localised(verdicts: list[Verdict], lang: str) -> list[Verdict]:
    """The verdicts with their messages in ``lang`` (the codes unchanged)."""
    if lang == "en":
        return verdicts
    return [
        msgspec.structs.replace(v, message=verdict_message(lang, v.reason_code, v.message))
        if v.message is not None
        else v
        for v in verdicts
    ]


def _localised_status(status: FileStatus, lang: str) -> FileStatus:
    """A file's status with its ``error`` in ``lang``: the catalogue's sentence for what went
    wrong (``internal_error`` when processing stopped on our side, else ``file_invalid``),
    followed by the file's own specifics (the column, the line) as processing wrote them."""
    if status.error is None or lang == "en":
        return status
    cat = catalogue()
    if status.error == INTERNAL_FAILURE:
        text = cat.get(lang, "texts.file_internal_failure") or status.error
    else:
        generic = cat.get(lang, "errors.file_invalid.detail") or ""
        text = f"{generic}（{status.error}）"
    return msgspec.structs.replace(status, error=text)


def _localised_lines(content: bytes, lang: str) -> bytes:
    """A file's NDJSON results with each line's message in ``lang`` (keys kept in order)."""
    if lang == "en":
        return content
    out: list[bytes] = []
    for raw in content.splitlines():
        if not raw.strip():
            continue
        line = msgspec.json.decode(raw)
        if isinstance(line, dict) and line.get("message") is not None:
            line["message"] = verdict_message(lang, line["reason_code"], line.get("message"))
            raw = msgspec.json.encode(line)
        out.append(raw)
    return b"".join(x + b"\n" for x in out)


def _lookup(pool: Any, settings: Settings) -> Any:
    return service.secret_lookup(pool, settings.privacy)


async def signed_operator(
    request: Request[Any, Any, Any],
    pool: Any,
    redis: Any,
    settings: Settings,
    *,
    limit: int = 0,
    what: str = "",
) -> tuple[SignedCaller, bytes]:
    """The verified operator and the body (server.signed.signed_request with operators' keys)."""
    return await signed_request(
        request, redis, settings, _lookup(pool, settings), limit=limit, what=what or "The body"
    )


async def _signed_spool(
    request: Request[Any, Any, Any], pool: Any, redis: Any, settings: Settings, *, limit: int
) -> tuple[SignedCaller, Spool]:
    """:func:`signed_operator` for a daily file: the body goes to a :class:`~behaviours.files.Spool`
    (bounded memory) and its digest, taken as it arrived, is what the signature is checked
    against. The caller closes the spool."""
    headers = check_signature_headers(request.headers, skew_s=settings.auth.signature_skew_s)
    declared = request.headers.get("content-length")
    if declared and declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(f"The file is {declared} bytes; the limit is {limit} bytes.")
    spool = Spool()
    try:
        async for chunk in request.stream():
            if spool.size + len(chunk) > limit:
                raise BodyTooLarge(f"The file exceeds the limit of {limit} bytes.")
            spool.write(chunk)
        caller = await verify_signed(
            headers,
            method=request.method,
            path=signed_path(request),
            body=b"",
            body_sha256=spool.sha256,
            lookup_secret=_lookup(pool, settings),
            redis=redis,
        )
    except BaseException:
        spool.close()
        raise
    return caller, spool


@post(
    "/events",
    summary=(
        "推送一批事件（最多 5,000 条）；每条记录一个核验结果 · "
        "Push a batch of events (at most 5,000); one verdict per record"
    ),
    request_max_body_size=None,
    status_code=200,
)
async def push_events(
    request: Request[Any, Any, Any],
    pool: NamedDependency[Any],
    redis: NamedDependency[Any],
    settings: NamedDependency[Settings],
    ingest_policy: NamedDependency[IngestPolicy],
) -> BatchResult:
    limits = settings.ingest
    caller, body = await signed_operator(
        request, pool, redis, settings, limit=limits.max_batch_bytes, what="The batch body"
    )
    batch = decode_batch(body)
    if len(batch.events) > limits.max_batch_records:
        raise TooManyRecords(
            f"{len(batch.events)} events in one batch; the limit is {limits.max_batch_records}."
        )
    async with transaction(pool) as tx:
        verdicts = await service.ingest(
            tx, Source(operator_id=caller.operator_id), batch.events, policy=ingest_policy
        )
    return service.summarise(_localised(verdicts, language(request)))


@post(
    "/files",
    summary=(
        "上传日文件（NDJSON 或 CSV）；后台处理 · "
        "Upload a daily file (NDJSON or CSV); processed in the background"
    ),
    request_max_body_size=None,
    opt={ACCEPTS: FILE_MEDIA_TYPES},
    status_code=202,
    responses={
        200: ResponseSpec(
            FileStatus, description="The same content was uploaded before: that file's status"
        )
    },
)
async def upload_file(
    request: Request[Any, Any, Any],
    pool: NamedDependency[Any],
    redis: NamedDependency[Any],
    settings: NamedDependency[Settings],
    file_format: Annotated[Literal["ndjson", "csv"], QueryParameter(name="format")] = "ndjson",
) -> Response[FileStatus]:
    caller, spool = await _signed_spool(
        request, pool, redis, settings, limit=settings.ingest.max_file_bytes
    )
    with spool:
        async with transaction(pool) as tx:
            file_id, new = await files.create_file(
                tx,
                caller.operator_id,
                file_format,
                spool,
                chunk_records=settings.ingest.file_chunk_records,
            )
            if new:  # several processes on one file: each claims the chunks free then
                for _ in range(settings.ingest.file_workers):
                    enqueue_after_commit(tx, process_file, file_id)
            status = await files.file_status(tx.conn, caller.operator_id, file_id)
    return Response(
        content=_localised_status(status, language(request)), status_code=202 if new else 200
    )


@get(
    "/files/{file_id:str}",
    summary="已上传文件的状态和计数 · Status and counts of an uploaded file",
)
async def file_status(
    request: Request[Any, Any, Any],
    pool: NamedDependency[Any],
    redis: NamedDependency[Any],
    settings: NamedDependency[Settings],
    file_id: FromPath[str],
) -> FileStatus:
    caller, _ = await signed_operator(request, pool, redis, settings)
    status = await files.file_status(pool, caller.operator_id, file_id)
    return _localised_status(status, language(request))


@get(
    "/files/{file_id:str}/results",
    summary="文件每条记录的核验结果（NDJSON） · Per-record verdicts of a file, as NDJSON",
    media_type=RESULTS_MEDIA_TYPE,
    responses={
        200: ResponseSpec(
            FileResultLine,
            media_type=RESULTS_MEDIA_TYPE,
            description=(
                "NDJSON: one object per line of the file processed so far, in order (streamed "
                "chunk by chunk)"
            ),
        )
    },
)
async def file_results(
    request: Request[Any, Any, Any],
    pool: NamedDependency[Any],
    redis: NamedDependency[Any],
    settings: NamedDependency[Settings],
    file_id: FromPath[str],
) -> Stream:
    caller, _ = await signed_operator(request, pool, redis, settings)
    key = await files.check_owner(pool, caller.operator_id, file_id)
    lang = language(request)

    async def lines() -> AsyncIterator[bytes]:
        async for part in files.results_stream(pool, key):
            yield _localised_lines(part, lang)

    return Stream(lines(), media_type=RESULTS_MEDIA_TYPE)


operators_router = Router(
    path="/api/operators/v1",
    route_handlers=[push_events, upload_file, file_status, file_results],
    tags=["operators"],
)
