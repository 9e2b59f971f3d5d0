"""The one handler: every error leaves as RFC 9457 problem+json (the hierarchy is the kernel's,
``kit.errors``; domains raise it and never import Litestar). Litestar's own HTTP and validation
exceptions, store failures that say "not now" and anything unexpected get the same shape; a 500
carries only its request id, the traceback goes to the log.

Titles and details are in the request's language (:func:`language`: ``Accept-Language``, else
the programme's ``language`` setting), from the catalogue (``kit.i18n``); the codes never change.
In English a detail stays the error's own sentence; in another language it is the code's
template filled from the error's context (``extra``) when that carries every placeholder, else
the code's generic sentence. The answer says its language in ``Content-Language`` (added by
``server.app.App`` for every answer that was localised).
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Iterable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any, Protocol

import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import Example

from kit.errors import (
    PROBLEM_BASE,
    PROBLEM_JSON,
    DomainError,
    FieldError,
    Problem,
    RateLimited,
    problem,
)
from kit.i18n import (
    DEFAULT_LANGUAGE,
    Language,
    Messages,
    field_message,
    messages,
    negotiate,
    note_message,
    read_texts,
)

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


# The key, in the ASGI scope's state, of the language an answer was localised in (server.app
# sends it as Content-Language).
LANGUAGE_STATE = "language"


def level_messages() -> dict[str, dict[str, str]]:
    """The growth levels' names by language (``levels.<n>``), from residents' levels.json."""
    raw = json.loads(resources.files("residents").joinpath("levels.json").read_text("utf-8"))
    out: dict[str, dict[str, str]] = {}
    for lv in raw["levels"]:
        for lang, name in (lv.get("names") or {}).items():
            out.setdefault(lang, {})[f"levels.{lv['level']}"] = name
    return out


# The domain packages whose messages sit beside their code (``<package>/messages/<lang>.json``:
# their error titles and details, their reasons): one name each, as for SURFACES.
MESSAGE_PACKAGES: tuple[str, ...] = ("enterprises", "rewards", "reporting")


def domain_messages() -> dict[str, dict[str, str]]:
    """Every domain package's own messages by language (a package without them adds none)."""
    out: dict[str, dict[str, str]] = {}
    for package in MESSAGE_PACKAGES:
        try:
            folder = Path(str(resources.files(package))) / "messages"
        except ModuleNotFoundError:
            continue
        for lang, texts in read_texts(folder).items():
            out.setdefault(lang, {}).update(texts)
    return out


@functools.cache
def catalogue() -> Messages:
    """The programme's catalogue: the kernel's messages, the domains' own and the growth
    levels' names."""
    return messages().merged(domain_messages()).merged(level_messages())


def language(request: Request[Any, Any, Any]) -> Language:
    """The language of this request's answer (negotiated once, remembered in the scope)."""
    state = request.scope.setdefault("state", {})
    lang: Language | None = state.get(LANGUAGE_STATE)
    if lang is None:
        settings = request.app.state.get("settings")
        default: Language = getattr(settings, "language", DEFAULT_LANGUAGE)
        lang = negotiate(request.headers.get("accept-language"), default)
        state[LANGUAGE_STATE] = lang
    return lang


def verdict_message(lang: str, reason_code: str | None, message: str | None) -> str | None:
    """A verdict's message (or a track finding's) as it leaves the API, in ``lang``: English
    keeps the stored sentence (the rules' own wording, with its specifics); another language
    has the catalogue's text of the reason code (its ``{detail}``: the stored sentence), or
    for an accepted verdict's note its translation (``kit.i18n.note_message``)."""
    if lang == "en":
        return message
    if reason_code is None:  # accepted: its note, if any (a distance clipped or capped)
        return None if message is None else note_message(lang, message)
    return catalogue().reason(lang, reason_code, message) or message


def _localised(
    request: Request[Any, Any, Any],
    status: int,
    code: str,
    title: str,
    detail: str | None,
    context: dict[str, Any] | None = None,
    **fields: Any,
) -> Problem:
    lang = language(request)
    cat = catalogue()
    if lang != "en" or detail is None:
        detail = cat.error_detail(lang, code, context, detail)
    if lang != "en" and fields.get("errors"):
        fields["errors"] = [
            FieldError(path=e.path, message=field_message(lang, e.message))
            for e in fields["errors"]
        ]
    return problem(
        status,
        code,
        cat.error_title(lang, code, title),
        detail,
        request_id=_request_id(request),
        **fields,
    )


class _Described(Protocol):
    """A catalogue's entry for one code (each surface's ``ErrorCode``)."""

    @property
    def status(self) -> int: ...
    @property
    def title(self) -> str: ...
    @property
    def meaning(self) -> str: ...


def problem_responses(
    catalogue: Mapping[str, _Described], codes: Iterable[str]
) -> dict[int, ResponseSpec]:
    """OpenAPI responses for the stable error codes an operation may answer with (each surface's
    ``errors(*codes)``, from its own catalogue): one response per status, an example per code."""
    by_status: dict[int, list[str]] = {}
    for code in dict.fromkeys(codes):
        by_status.setdefault(catalogue[code].status, []).append(code)
    out: dict[int, ResponseSpec] = {}
    for status, group in sorted(by_status.items()):
        examples = [
            Example(
                id=code,
                summary=catalogue[code].meaning,
                value={
                    "type": PROBLEM_BASE + code,
                    "title": catalogue[code].title,
                    "status": status,
                    "code": code,
                    "detail": catalogue[code].meaning,
                    "request_id": "3f2a9c0e5b7d4e1f8a6b2c9d0e1f2a3b",
                },
            )
            for code in group
        ]
        out[status] = ResponseSpec(
            data_container=Problem,
            generate_examples=False,
            media_type=PROBLEM_JSON,
            description="\n".join(f"- `{c}`: {catalogue[c].meaning}" for c in group),
            examples=examples,
        )
    return out


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
        _localised(
            request,
            exc.status,
            exc.code,
            exc.title,
            exc.detail,
            exc.extra,
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
        _localised(request, status, code, title, detail, errors=errors),
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
        _localised(
            request,
            500,
            "internal_error",
            "Internal error",
            f"Something went wrong on our side; quote request id {rid} when reporting it.",
            {"request_id": rid},
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
        _localised(
            request,
            503,
            "retry_later",
            "Busy, nothing was changed",
            "The request was rolled back whole; send it again after Retry-After seconds.",
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
