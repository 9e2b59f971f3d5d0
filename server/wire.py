"""What every request must be before a handler sees it: strict JSON, a declared media type, no NUL.

Set once for the whole app in :func:`server.app.create_app`:

- :class:`StrictRequest` decodes a handler's ``data`` body in one strict msgspec pass against the
  handler's declared type (``"steps": "8000"`` is refused, as the operator API refuses it), and
  answers bytes that are not JSON (invalid UTF-8, nesting deeper than msgspec follows, garbage)
  400 ``bad_request`` and a body that does not match the schema 400 ``validation_failed``, where
  Litestar's default (untyped decode, then a lax conversion) coerced strings to numbers and let
  ``UnicodeDecodeError`` / ``RecursionError`` out as 500s.
- :func:`check_request` (an app-level guard: it runs before any other guard, body or dependency)
  refuses a POST/PUT/PATCH whose body comes with another media type than the handler accepts (415
  ``unsupported_media_type``; JSON unless the handler's ``opt[ACCEPTS]`` says otherwise), and a
  NUL character in the path or the query string (400 ``bad_request``: PostgreSQL refuses NUL in
  text, so it must never reach SQL).
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

import msgspec
from litestar import Request
from litestar.exceptions import ClientException, HTTPException, ValidationException
from litestar.types import Empty

if TYPE_CHECKING:
    from litestar.connection import ASGIConnection
    from litestar.handlers.base import BaseRouteHandler

# Handler option: the media types a handler accepts for its body (lower case, no parameters).
ACCEPTS = "accepts"
JSON_ONLY: tuple[str, ...] = ("application/json",)
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
NOT_JSON = "The body is not valid JSON (UTF-8, nested at most a few hundred levels)."


class UnsupportedMediaType(HTTPException):
    status_code = 415


def not_json(detail: str = NOT_JSON) -> ClientException:
    return ClientException(detail)


def schema_mismatch(exc: msgspec.ValidationError) -> ValidationException:
    message, _, path = str(exc).partition(" - at `")
    key = path.rstrip("`").removeprefix("$").removeprefix(".") or None
    return ValidationException(
        "The body does not match the expected schema.",
        extra=[{"key": key, "message": message, "source": "body"}],
    )


@functools.lru_cache(maxsize=256)
def _decoder(target: Any) -> msgspec.json.Decoder[Any]:
    return msgspec.json.Decoder(target, strict=True)


def decode_strict(body: bytes, target: Any = Any) -> Any:
    """``body`` decoded as ``target`` in one strict pass; client errors as Litestar's 400s."""
    try:
        return _decoder(target).decode(body)
    except msgspec.ValidationError as exc:
        raise schema_mismatch(exc) from None
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        raise not_json() from None


def _body_type(handler: Any) -> Any:
    data = handler.parsed_fn_signature.parameters.get("data")
    return Any if data is None else data.annotation


class StrictRequest(Request[Any, Any, Any]):
    """Litestar's request, whose JSON body is decoded strictly into the handler's ``data`` type.

    The decoded Struct passes Litestar's later conversion unchanged (msgspec returns an instance
    of the target type as it is), so the handler receives exactly what was decoded here."""

    async def json(self) -> Any:
        if self._json is Empty:
            value = self._connection_state.json
            if value is Empty:
                body = await self.body()
                value = decode_strict(body or b"null", _body_type(self.route_handler))
                self._connection_state.json = value
            self._json = value
        return self._json


def _has_body(headers: Any) -> bool:
    length = headers.get("content-length")
    if length is not None:
        return length.strip() not in ("", "0")
    return headers.get("transfer-encoding") is not None


def _media_type(value: str | None) -> str:
    return (value or "").partition(";")[0].strip().lower()


def check_request(
    connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
) -> None:
    """The app's first guard: no NUL in the path or query; a body only of an accepted type."""
    scope = connection.scope
    if "\x00" in scope["path"] or b"%00" in scope.get("query_string", b"").lower():
        raise ClientException("The path or query contains a NUL character.")
    if scope.get("method") not in _BODY_METHODS or not _has_body(connection.headers):
        return
    accepted: tuple[str, ...] = handler.opt.get(ACCEPTS, JSON_ONLY)
    media = _media_type(connection.headers.get("content-type"))
    if media not in accepted:
        raise UnsupportedMediaType(
            f"Send the body as {' or '.join(accepted)} (got {media or 'no Content-Type'})."
        )
