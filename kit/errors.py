"""One error hierarchy: every error leaves as RFC 9457 problem+json.

Domain packages raise :class:`DomainError` subclasses (or instances with their own ``code``);
they never import Litestar. The composition root's handlers (``server.errors``) turn them,
Litestar's own HTTP and validation exceptions, and anything unexpected into one shape::

    {"type": "https://tanpuhui.org/problems/<code>", "title": ..., "status": ...,
     "detail": ..., "code": "<stable code>", "request_id": ..., "errors": [{path, message}]}

A 500 carries only its request id; the traceback goes to the log.
"""

from __future__ import annotations

from typing import Any, ClassVar

import msgspec

PROBLEM_JSON = "application/problem+json"
PROBLEM_BASE = "https://tanpuhui.org/problems/"


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
    code = "input_invalid"
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
