"""One error hierarchy and one handler: every error leaves as RFC 9457 problem+json.

Domain packages raise :class:`DomainError` subclasses (or instances with their own ``code``);
they never import Litestar. The handlers registered by :func:`exception_handlers` turn them,
Litestar's own HTTP and validation exceptions, and anything unexpected into one shape::

    {"type": "https://tanpuhui.org/problems/<code>", "title": ..., "status": ...,
     "detail": ..., "code": "<stable code>", "request_id": ..., "errors": [{path, message}]}

A 500 carries only its request id; the traceback goes to the log.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, ClassVar

import msgspec

if TYPE_CHECKING:
    from litestar import Request, Response

PROBLEM_JSON = "application/problem+json"
PROBLEM_BASE = "https://tanpuhui.org/problems/"

log = logging.getLogger("tanpuhui.errors")


class FieldError(msgspec.Struct, frozen=True):
    path: str
    message: str


class Problem(msgspec.Struct, omit_defaults=True):
    """The RFC 9457 body (with this project's ``code`` and ``request_id`` extensions)."""

    type: str
    title: str
    status: int
    code: str
    detail: str | None = None
    request_id: str | None = None
    errors: list[FieldError] | None = None
    extra: dict[str, Any] | None = None


class DomainError(Exception):
    """Base of every error a domain raises on purpose.

    Subclasses set ``code``, ``status`` and ``title``; an instance may override ``code`` (a more
    specific stable code) and add ``errors`` or ``extra`` (machine-readable context).
    """

    code: ClassVar[str] = "domain_error"
    status: ClassVar[int] = 400
    title: ClassVar[str] = "Request refused"

    def __init__(
        self,
        detail: str,
        *,
        code: str | None = None,
        errors: list[FieldError] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        if code is not None:
            self.code = code  # type: ignore[misc]
        self.errors = errors
        self.extra = extra


class InvalidInput(DomainError):
    code = "invalid_input"
    status = 400
    title = "Invalid input"


class Unauthenticated(DomainError):
    code = "unauthenticated"
    status = 401
    title = "Authentication required"


class Forbidden(DomainError):
    code = "forbidden"
    status = 403
    title = "Not allowed"


class NotFound(DomainError):
    code = "not_found"
    status = 404
    title = "Not found"


class Conflict(DomainError):
    code = "conflict"
    status = 409
    title = "Conflict"


class IdempotencyConflict(Conflict):
    code = "idempotency_key_reused"
    title = "Idempotency key reused with a different request"


class PayloadTooLarge(DomainError):
    code = "payload_too_large"
    status = 413
    title = "Payload too large"


class Unprocessable(DomainError):
    code = "unprocessable"
    status = 422
    title = "Request cannot be carried out"


class RateLimited(DomainError):
    code = "rate_limited"
    status = 429
    title = "Too many requests"


class Unavailable(DomainError):
    code = "unavailable"
    status = 503
    title = "Service unavailable"


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


def problem(
    status: int,
    code: str,
    title: str,
    detail: str | None = None,
    *,
    request_id: str | None = None,
    errors: list[FieldError] | None = None,
    extra: dict[str, Any] | None = None,
) -> Problem:
    return Problem(
        type=PROBLEM_BASE + code,
        title=title,
        status=status,
        code=code,
        detail=detail,
        request_id=request_id,
        errors=errors,
        extra=extra,
    )


def _request_id(request: Request[Any, Any, Any]) -> str | None:
    rid = request.scope.get("state", {}).get("request_id")
    return rid if isinstance(rid, str) else None


def _respond(body: Problem, headers: dict[str, str] | None = None) -> Response[bytes]:
    from litestar import Response

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
    from litestar.exceptions import HTTPException, ValidationException

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
    from litestar.exceptions import HTTPException

    handlers: dict[type[Exception] | int, Any] = {
        DomainError: handle_domain_error,
        HTTPException: handle_http_exception,
        Exception: handle_unexpected,
    }
    for kind in transient:
        if issubclass(kind, Exception):
            handlers[kind] = handle_transient
    return handlers
