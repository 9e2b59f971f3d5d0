"""The one handler: every error leaves as RFC 9457 problem+json (the hierarchy is the kernel's,
``kit.errors``; domains raise it and never import Litestar). Litestar's own HTTP and validation
exceptions, store failures that say "not now" and anything unexpected get the same shape; a 500
carries only its request id, the traceback goes to the log.
"""

from __future__ import annotations

import logging
from typing import Any

import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException

from kit.errors import PROBLEM_JSON, DomainError, FieldError, Problem, RateLimited, problem

log = logging.getLogger("tanpuhui.errors")

_HTTP_CODES = {
    400: ("bad_request", "Bad request"),
    401: ("unauthenticated", "Authentication required"),
    403: ("forbidden", "Not allowed"),
    404: ("not_found", "Not found"),
    405: ("method_not_allowed", "Method not allowed"),
    413: ("payload_too_large", "Payload too large"),
    415: ("unsupported_media_type", "Unsupported media type"),
    429: ("rate_limited", "Too many requests"),
    503: ("unavailable", "Service unavailable"),
}


def _request_id(request: Request[Any, Any, Any]) -> str | None:
    rid = request.scope.get("state", {}).get("request_id")
    return rid if isinstance(rid, str) else None


def _respond(body: Problem, headers: dict[str, str] | None = None) -> Response[bytes]:
    return Response(
        content=msgspec.json.encode(body),
        status_code=body.status,
        media_type=PROBLEM_JSON,
        headers=headers,
    )


def _validation_errors(extra: Any) -> list[FieldError]:
    out: list[FieldError] = []
    for item in extra if isinstance(extra, list) else []:
        if isinstance(item, dict):
            key = item.get("key")
            source = item.get("source")
            path = str(key) if key else ("body" if source in (None, "body") else str(source))
            out.append(FieldError(path=path, message=str(item.get("message", "invalid"))))
    return out


def handle_domain_error(request: Request[Any, Any, Any], exc: DomainError) -> Response[bytes]:
    headers = None
    if isinstance(exc, RateLimited) and exc.extra and "retry_after_s" in exc.extra:
        headers = {"Retry-After": str(exc.extra["retry_after_s"])}
    return _respond(
        problem(
            exc.status,
            exc.code,
            exc.title,
            exc.detail,
            request_id=_request_id(request),
            errors=exc.errors,
            extra=exc.extra,
        ),
        headers,
    )


def handle_http_exception(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    assert isinstance(exc, HTTPException)
    status = exc.status_code
    if status >= 500:
        return handle_unexpected(request, exc)
    code, title = _HTTP_CODES.get(status, ("http_error", "Request refused"))
    errors = None
    detail: str | None = exc.detail
    if isinstance(exc, ValidationException) or (status == 400 and exc.extra):
        code, title = "validation_failed", "Validation failed"
        errors = _validation_errors(exc.extra) or [FieldError(path="body", message=exc.detail)]
        detail = "The request does not match the expected schema."
    return _respond(
        problem(status, code, title, detail, request_id=_request_id(request), errors=errors),
        dict(exc.headers or {}) or None,
    )


def handle_unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    rid = _request_id(request)
    log.error(
        "unhandled error",
        exc_info=exc,
        extra={"path": request.url.path, "method": request.method},
    )
    return _respond(
        problem(
            500,
            "internal_error",
            "Internal error",
            f"Something went wrong on our side; quote request id {rid} when reporting it.",
            request_id=rid,
        )
    )


RETRY_AFTER_S = 2


def handle_transient(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    """A store said "not now" (timeout, deadlock, too many connections): the transaction was
    rolled back whole, so the same request can be sent again as it is."""
    log.warning(
        "transient store failure", extra={"path": request.url.path, "error": type(exc).__name__}
    )
    return _respond(
        problem(
            503,
            "retry_later",
            "Busy, nothing was changed",
            "The request was rolled back whole; send it again after Retry-After seconds.",
            request_id=_request_id(request),
        ),
        {"Retry-After": str(RETRY_AFTER_S)},
    )


def exception_handlers(
    transient: tuple[type[BaseException], ...] = (),
) -> dict[type[Exception] | int, Any]:
    handlers: dict[type[Exception] | int, Any] = {
        DomainError: handle_domain_error,
        HTTPException: handle_http_exception,
        Exception: handle_unexpected,
    }
    for kind in transient:
        if issubclass(kind, Exception):
            handlers[kind] = handle_transient
    return handlers
