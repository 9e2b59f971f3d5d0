"""The mobile API's errors, and the catalogue of every stable code it can answer with.

The catalogue feeds the published OpenAPI document (each operation lists the codes it may
return, with an example body) and the guide in ``mobile_api_spec/README.md``.
"""

from __future__ import annotations

from typing import NamedTuple

from behaviours.errors import InvalidScope, LinkNotFound, UnknownOperator
from behaviours.service import SCOPES
from kit.errors import (
    InvalidInput,
    RateLimited,
    Unauthenticated,
    Unavailable,
)


class CodeRejected(Unauthenticated):
    code = "code_invalid"
    title = "Sign-in code not accepted"


class CodeAttemptsExceeded(RateLimited):
    code = "code_attempts_exceeded"
    title = "Too many wrong codes"


class SmsRateLimited(RateLimited):
    code = "sms_rate_limited"
    title = "Too many codes requested"


class SmsUnavailable(Unavailable):
    code = "sms_unavailable"
    title = "SMS gateway unavailable"


class WechatUnavailable(Unavailable):
    code = "wechat_unavailable"
    title = "WeChat sign-in unavailable"


class WechatRejected(Unauthenticated):
    code = "wechat_login_failed"
    title = "WeChat login code not accepted"


class RefreshRejected(Unauthenticated):
    code = "refresh_invalid"
    title = "Refresh token not accepted"


class AccountGone(Unauthenticated):
    code = "account_deleted"
    title = "Account deleted"


class SessionRevoked(Unauthenticated):
    code = "token_revoked"
    title = "Authentication required"


class BadCursor(InvalidInput):
    code = "cursor_invalid"
    title = "Invalid cursor"


class BadDistrict(InvalidInput):
    code = "district_invalid"
    title = "Not a district of the programme"


class ErrorCode(NamedTuple):
    status: int
    title: str
    meaning: str


# Every code the mobile API answers with, by code. Keep in step with the raises above and the
# foundation's codes (server/errors.py, server/auth.py); the drift test sees any change here.
CATALOGUE: dict[str, ErrorCode] = {
    "validation_failed": ErrorCode(
        400, "Validation failed", "The body or a parameter does not match the schema."
    ),
    "bad_request": ErrorCode(400, "Bad request", "The request could not be read."),
    "cursor_invalid": ErrorCode(400, "Invalid cursor", "Pass back a `next_cursor` unchanged."),
    "district_invalid": ErrorCode(
        400,
        BadDistrict.title,
        "The district code is not one of the programme's imported districts.",
    ),
    "scope_invalid": ErrorCode(
        400,
        InvalidScope.title,
        f"Consent scope must be some of {', '.join(SCOPES)}, or `*` for all of them.",
    ),
    "token_missing": ErrorCode(
        401, "Authentication required", "No `Authorization: Bearer <token>` header."
    ),
    "token_invalid": ErrorCode(
        401,
        "Authentication required",
        "The access token is malformed, forged or not an access token.",
    ),
    "token_expired": ErrorCode(
        401, "Authentication required", "The access token expired: refresh it."
    ),
    "token_revoked": ErrorCode(
        401,
        "Authentication required",
        "The sign-in this access token belongs to has ended (signed out, or a refresh token was "
        "reused): sign in again.",
    ),
    "account_deleted": ErrorCode(401, "Account deleted", "The account was erased; sign in again."),
    "code_invalid": ErrorCode(
        401, "Sign-in code not accepted", "Wrong, expired or already used SMS code."
    ),
    "wechat_login_failed": ErrorCode(
        401, "WeChat login code not accepted", "WeChat refused the `wx.login` code."
    ),
    "refresh_invalid": ErrorCode(
        401, "Refresh token not accepted", "Unknown, expired or revoked refresh token."
    ),
    "refresh_reused": ErrorCode(
        401,
        "Refresh token not accepted",
        "A refresh token was used twice; every token of its sign-in is revoked. Sign in again.",
    ),
    "role_required": ErrorCode(403, "Not allowed", "The token is not a resident's token."),
    "not_found": ErrorCode(404, "Not found", "No such item among the caller's own data."),
    "unknown_operator": ErrorCode(
        404,
        UnknownOperator.title,
        "No such operator to link (the residents' own app, kind `app`, is not one).",
    ),
    "link_not_found": ErrorCode(404, LinkNotFound.title, "No active link to this operator."),
    "method_not_allowed": ErrorCode(405, "Method not allowed", "Wrong HTTP method."),
    "idempotency_key_reused": ErrorCode(
        409,
        "Idempotency key reused with a different request",
        "The same `Idempotency-Key` came with another body.",
    ),
    "concurrent_ingest": ErrorCode(
        409, "Conflict", "The same activity arrived twice at once; send it again."
    ),
    "payload_too_large": ErrorCode(413, "Payload too large", "The body is too large."),
    "unsupported_media_type": ErrorCode(
        415, "Unsupported media type", "Send `Content-Type: application/json`."
    ),
    "code_attempts_exceeded": ErrorCode(
        429, "Too many wrong codes", "The code is void after too many wrong guesses; ask a new one."
    ),
    "sms_rate_limited": ErrorCode(
        429,
        "Too many codes requested",
        "A code was just sent to this phone, or the hourly limit on codes sent to it (from "
        "this client, or from all) or from this client is reached; wait `Retry-After` seconds.",
    ),
    "internal_error": ErrorCode(
        500, "Internal error", "A fault on the server's side; quote the request id."
    ),
    "retry_later": ErrorCode(
        503,
        "Busy, nothing was changed",
        "A store timed out or a transaction conflicted; the request was rolled back whole. "
        "Send it again after `Retry-After` seconds.",
    ),
    "sms_unavailable": ErrorCode(503, "SMS gateway unavailable", "Try again later."),
    "wechat_unavailable": ErrorCode(
        503, "WeChat sign-in unavailable", "WeChat sign-in is not configured or WeChat is down."
    ),
}
