"""One error hierarchy: every error leaves as RFC 9457 problem+json.

Domain packages raise :class:`DomainError` subclasses (or instances with their own ``code``);
they never import Litestar. The composition root's handlers (``server.errors``) turn them,
Litestar's own HTTP and validation exceptions, and anything unexpected into one shape::

    {"type": "https://tanpuhui.org/problems/<code>", "title": ..., "status": ...,
     "detail": ..., "code": "<stable code>", "request_id": ..., "errors": [{path, message}]}

A 500 carries only its request id; the traceback goes to the log.
"""

from __future__ import annotations

from typing import Any, ClassVar, NamedTuple

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


class ErrorRow(NamedTuple):
    """One stable code of the catalogue: what a client sees for it."""

    code: str
    status: int
    title: str


# Codes that no class carries as its own ``code``, registered here, in one place, so the
# catalogue derives them too. First, codes raised as an instance's own ``code=``: the class (by
# name, so a class moving between modules changes nothing here) gives status and title.
# tests/test_architecture.py fails on a literal ``code="..."`` that is neither here nor a
# class's own code.
INSTANCE_CODES: dict[str, str] = {
    "token_missing": "Unauthenticated",
    "token_invalid": "Unauthenticated",
    "token_expired": "Unauthenticated",
    "signature_missing": "Unauthenticated",
    "signature_invalid": "Unauthenticated",
    "signature_stale": "Unauthenticated",
    "signature_replayed": "Unauthenticated",
    "role_required": "Forbidden",
    "refresh_reused": "RefreshRejected",
    "cursor_invalid": "InvalidInput",
    "block_not_found": "NotFound",
    "not_ready": "Unavailable",
}

# Then the codes the composition root's handlers (server/errors.py) answer with for what is
# not a DomainError: Litestar's own HTTP and validation exceptions, store failures that say
# "not now", and faults. They win over an instance's class title (``validation_failed`` is
# also raised as an ``InvalidInput``: the catalogue shows the handler's title).
HANDLER_CODES: dict[str, tuple[int, str]] = {
    "bad_request": (400, "Bad request"),
    "validation_failed": (400, "Validation failed"),
    "method_not_allowed": (405, "Method not allowed"),
    "unsupported_media_type": (415, "Unsupported media type"),
    "internal_error": (500, "Internal error"),
    "retry_later": (503, "Busy, nothing was changed"),
}


def _subclasses(cls: type[DomainError]) -> list[type[DomainError]]:
    out = [cls]
    for sub in cls.__subclasses__():
        out.extend(_subclasses(sub))
    return out


def error_catalogue() -> dict[str, ErrorRow]:
    """Every stable code of the loaded error classes, by code: (code, status, title).

    Derived, never maintained by hand: each :class:`DomainError` subclass imported so far gives
    its own ``code`` (a class's own code wins), then :data:`HANDLER_CODES`, then
    :data:`INSTANCE_CODES` through their class. Only the classes of imported modules are seen:
    a surface's catalogue imports the errors it answers with first. Two classes giving one code
    different statuses or titles is an error (one code, one meaning).
    """
    classes = _subclasses(DomainError)
    rows: dict[str, ErrorRow] = {}
    for cls in classes:
        code = cls.__dict__.get("code")
        if not isinstance(code, str):
            continue
        row = ErrorRow(code, cls.status, cls.title)
        if rows.setdefault(code, row) != row:
            raise RuntimeError(f"error code {code!r} has two meanings: {rows[code]} and {row}")
    for code, (status, title) in HANDLER_CODES.items():
        rows.setdefault(code, ErrorRow(code, status, title))
    by_name: dict[str, type[DomainError]] = {}
    for cls in classes:
        if by_name.setdefault(cls.__name__, cls) is not cls:
            by_name[cls.__name__] = DomainError  # ambiguous name: refuse below if used
    for code, name in INSTANCE_CODES.items():
        if code in rows or name not in by_name:
            continue
        owner = by_name[name]
        if owner is DomainError and name != "DomainError":
            raise RuntimeError(f"INSTANCE_CODES[{code!r}]: two loaded classes are named {name}")
        rows[code] = ErrorRow(code, owner.status, owner.title)
    return rows
