"""The mobile API's errors, and the catalogue of every stable code it can answer with.

The catalogue feeds the published OpenAPI document (each operation lists the codes it may
return, with an example body) and the guide in ``mobile_api_spec/README.md``.
"""

from __future__ import annotations

from typing import NamedTuple

# Imported so that their classes are loaded: the catalogue below derives from them.
from behaviours.errors import InvalidScope, LinkNotFound, UnknownOperator  # noqa: F401
from behaviours.service import SCOPES
from enterprises.commuting_errors import AlreadyMember, CodeInvalid  # noqa: F401

# The classes live with the code that raises them; imported here so that the catalogue below
# derives from them (and for the surface's callers).
from kit.cursor import CursorInvalid as BadCursor
from kit.errors import error_catalogue
from points.errors import InsufficientFunds  # noqa: F401
from residents.errors import (
    AccountGone,
    BadDistrict,
    CodeAttemptsExceeded,
    CodeRejected,
    RefreshRejected,
    SessionRevoked,
    SmsRateLimited,
    SmsUnavailable,
    WechatRejected,
    WechatUnavailable,
)
from rewards.donation_errors import ProjectClosed, ProjectNotFound  # noqa: F401
from rewards.errors import NotAvailable, OutOfStock  # noqa: F401

__all__ = [
    "AccountGone",
    "BadCursor",
    "BadDistrict",
    "CodeAttemptsExceeded",
    "CodeRejected",
    "RefreshRejected",
    "SessionRevoked",
    "SmsRateLimited",
    "SmsUnavailable",
    "WechatRejected",
    "WechatUnavailable",
]


class ErrorCode(NamedTuple):
    status: int
    title: str
    meaning: str


# What each code the mobile API answers with means to an app developer, by code. Status and
# title are not written here: they come from the error classes (kit.errors.error_catalogue), so
# the contract cannot drift from what the server sends. A code without a class, a handler entry
# or an INSTANCE_CODES entry in kit/errors.py fails at import.
MEANINGS: dict[str, str] = {
    "validation_failed": "The body or a parameter does not match the schema.",
    "bad_request": "The request could not be read.",
    "cursor_invalid": "Pass back a `next_cursor` unchanged.",
    "district_invalid": "The district code is not one of the programme's imported districts.",
    "scope_invalid": (
        f"Consent scope must be some of {', '.join(SCOPES)}, or `*` for all of them."
    ),
    "scope_not_offered": (
        "The operator is not registered to report a behaviour of the scope: grant only the "
        "`scopes` its data-source entry lists."
    ),
    "token_missing": "No `Authorization: Bearer <token>` header.",
    "token_invalid": "The access token is malformed, forged or not an access token.",
    "token_expired": "The access token expired: refresh it.",
    "token_revoked": (
        "The sign-in this access token belongs to has ended (signed out, or a refresh token was "
        "reused): sign in again."
    ),
    "account_deleted": "The account was erased; sign in again.",
    "code_invalid": "Wrong, expired or already used SMS code.",
    "wechat_login_failed": "WeChat refused the `wx.login` code.",
    "refresh_invalid": "Unknown, expired or revoked refresh token.",
    "refresh_reused": (
        "A refresh token was used twice; every token of its sign-in is revoked. Sign in again."
    ),
    "role_required": "The token is not a resident's token.",
    "not_found": "No such item among the caller's own data.",
    "unknown_operator": (
        "No such operator to link (the residents' own app, kind `app`, is not one)."
    ),
    "link_not_found": "No active link to this operator.",
    "method_not_allowed": "Wrong HTTP method.",
    "idempotency_key_reused": "The same `Idempotency-Key` came with another body.",
    "concurrent_ingest": "The same activity arrived twice at once; send it again.",
    "payload_too_large": "The body is too large.",
    "unsupported_media_type": "Send `Content-Type: application/json`.",
    "code_attempts_exceeded": "The code is void after too many wrong guesses; ask a new one.",
    "sms_rate_limited": (
        "A code was just sent to this phone, or the hourly limit on codes sent to it (from "
        "this client, or from all) or from this client is reached; wait `Retry-After` seconds."
    ),
    "internal_error": "A fault on the server's side; quote the request id.",
    "retry_later": (
        "A store timed out or a transaction conflicted; the request was rolled back whole. "
        "Send it again after `Retry-After` seconds."
    ),
    "sms_unavailable": "Try again later.",
    "wechat_unavailable": "WeChat sign-in is not configured or WeChat is down.",
    "item_not_found": "No such catalogue item.",
    "not_available": (
        "The item cannot be redeemed now (outside its active window) or not in your district."
    ),
    "out_of_stock": "No stock left of this item; nothing was held.",
    "limit_reached": (
        "You hold as many rewards of this item as its per-resident or per-period limit allows."
    ),
    "insufficient_points": "Not enough available points for this item; nothing was held.",
    "reward_not_found": "No such reward among yours.",
    "reward_already_used": "The reward was used at the merchant: it cannot be cancelled.",
    "reward_expired": "The reward's validity ended; its points were released.",
    "project_not_found": "No such public-welfare project.",
    "project_closed": "The project takes donations only between its `starts_at` and `ends_at`.",
    "grams_pooled": (
        "Grams of a year the programme pooled for enterprises' offsets may be retired only "
        "within what pooling left (`retirable_g`); points can still be donated."
    ),
    "insufficient_funds": (
        "Not enough available points (or verified grams) for this donation; nothing was given."
    ),
    "commuting_consent_required": (
        "Accept the current consent text first: send its `version` (`GET /commuting/consent`) "
        "as `consent_version`; `extra.consent_version` is the current one."
    ),
    "commuting_code_invalid": (
        "No such programme, employee code or invitation, or the code is someone else's."
    ),
    "commuting_already_member": (
        "You are in another employer's commuting programme: leave it first (one at a time)."
    ),
    "commuting_programme_not_found": "You are not, and were not, in this commuting programme.",
}


def _catalogue() -> dict[str, ErrorCode]:
    rows = error_catalogue()
    missing = sorted(set(MEANINGS) - set(rows))
    if missing:
        raise RuntimeError(f"mobile error codes without an error class or registration: {missing}")
    return {
        code: ErrorCode(rows[code].status, rows[code].title, meaning)
        for code, meaning in MEANINGS.items()
    }


# Every code the mobile API answers with, by code (feeds the OpenAPI document's examples and
# ``x-error-codes``; the drift test sees any change).
CATALOGUE: dict[str, ErrorCode] = _catalogue()
