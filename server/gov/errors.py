"""The government API's errors: the catalogue of the stable codes its reports and sessions
answer with, and the OpenAPI responses built from it (each operation lists its codes, each with
an example body), as the enterprise API does (server/enterprise/errors.py).

Status and title come from the error classes (``kit.errors.error_catalogue``), so the served
document cannot drift from what the server sends; only each code's meaning for a government
analyst's script is written here. ``document(handlers, extra)`` gives every handler of a router
the codes of its guard and of validation, plus the ones ``extra`` names for it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import NamedTuple

from litestar.handlers import HTTPRouteHandler
from litestar.openapi.datastructures import ResponseSpec

# Imported so that their classes are loaded: the catalogue derives from them.
import behaviours.errors  # noqa: F401
import enterprises.allowances_errors
import enterprises.errors  # noqa: F401
import reporting.admin
import reporting.errors
import reporting.users  # noqa: F401
import rewards.errors  # noqa: F401
from kit.errors import error_catalogue
from server.errors import problem_responses


class ErrorCode(NamedTuple):
    status: int
    title: str
    meaning: str


MEANINGS: dict[str, str] = {
    "validation_failed": "A parameter or the body does not match the schema or a rule.",
    "bad_request": "The request could not be read (not JSON).",
    "token_missing": "No `Authorization: Bearer <token>` header.",
    "token_invalid": "The access token is malformed, forged or not an access token.",
    "token_expired": "The access token expired: sign in again.",
    "role_required": "The token's role may not use this operation.",
    "gov_user_disabled": "The token's user was disabled: its tokens are refused.",
    "gov_role_changed": "The token's user has another role now: sign in again.",
    "sign_in_rejected": "Unknown login, wrong password or wrong one-time code (one answer).",
    "gov_sign_in_rate_limited": (
        "Too many failed sign-ins for this login or from this client; wait `Retry-After` seconds."
    ),
    "report_range_invalid": (
        "The period or range is outside 2000-2100, ends before it starts, or spans too many "
        "periods for one answer."
    ),
    "report_not_found": "Nothing to report for that period (or no run yet).",
    "scenario_invalid": "The scenario's inputs are inconsistent (years, bases, rates, dates).",
    "index_weights_invalid": "The configured index weights are not valid.",
    "gov_login_taken": "A government user already has that login.",
    "gov_user_not_found": "No such government user.",
    "gov_last_admin": "The change would leave the programme without an enabled administrator.",
    "operator_exists": "An operator with that id is already registered.",
    "unknown_operator": "No such operator.",
    "scope_not_offered": "A scope the operator's kind does not offer.",
    "signing_key_exists": "The operator already has a signing key with that id.",
    "signing_key_not_found": "The operator has no such signing key.",
    "districts_invalid": "The districts file was refused (its problems are listed).",
    "gtfs_invalid": "The GTFS feed was refused (its problems are listed).",
    "methodology_not_found": "No such published methodology version.",
    "methodology_draft_not_found": "No such methodology draft.",
    "methodology_published": "The draft was published already: it can no longer change.",
    "merchant_exists": "A merchant with that id is already approved.",
    "merchant_not_found": "No such merchant.",
    "merchant_key_exists": "The merchant already has a key with that id.",
    "credit_code_taken": "An enterprise with that unified social credit code is registered.",
    # Targets and emission rights (server/gov/allowances_routes.py, docs/allowances.md).
    "allowance_period_not_found": "No control target is set for that region and year.",
    "allowance_period_closed": "The period is closed: its target, allocation and trades are final.",
    "allowance_target_below_allocated": "The target would be below what is allocated already.",
    "allowance_exceeds_target": "The round's sum exceeds what is left of the target.",
    "allowance_nothing_to_allocate": "No enterprise of the region has the data the method needs.",
    "allowance_enterprise_outside_region": "A line's enterprise is not registered in the region.",
    "allowance_other_region": "An enterprise holds another region's allowance of that year.",
    "allowance_offer_not_found": "No such offer.",
    "allowance_approval_not_pending": (
        "The transfer is not awaiting approval: approved or rejected already (two decisions at "
        "once: one wins), withdrawn, or never requested."
    ),
    "allowance_surplus_insufficient": (
        "Checked again at approval: the seller's surplus after its emissions no longer covers "
        "the offer (`surplus_g`); the transfer stays pending."
    ),
    "allowance_surrendered": "The seller or the buyer surrendered its allowance of that year.",
    "allowance_region_mismatch": "The buyer is not registered in the offer's region.",
    "allowance_own_offer": "The buyer is the offer's seller.",
    "cursor_invalid": "The cursor is not one this list gave.",
    "idempotency_key_reused": "The same `Idempotency-Key` came with another request.",
    "payload_too_large": "The body is too large.",
    "unsupported_media_type": "Send the body as `application/json`.",
    "method_not_allowed": "Wrong HTTP method.",
    "internal_error": "A fault on the server's side; quote the request id.",
    "retry_later": (
        "A store timed out or a transaction conflicted; the request was rolled back whole. "
        "Send it again after `Retry-After` seconds."
    ),
}

# Every operation may answer these.
ALWAYS = ("internal_error", "retry_later")
# What the guard of every signed-in route may answer, before the handler runs, and validation.
GUARDED = (
    "token_missing",
    "token_invalid",
    "token_expired",
    "role_required",
    "gov_user_disabled",
    "gov_role_changed",
    "validation_failed",
)


def _catalogue() -> dict[str, ErrorCode]:
    rows = error_catalogue()
    missing = sorted(set(MEANINGS) - set(rows))
    if missing:
        raise RuntimeError(f"government API codes without an error class: {missing}")
    return {code: ErrorCode(rows[code].status, rows[code].title, m) for code, m in MEANINGS.items()}


# Every code the government API answers with, by code.
CATALOGUE: dict[str, ErrorCode] = _catalogue()


def errors(*codes: str) -> dict[int, ResponseSpec]:
    """OpenAPI responses for the stable error codes an operation may answer with."""
    return problem_responses(CATALOGUE, (*codes, *ALWAYS))


def document(
    handlers: Iterable[HTTPRouteHandler],
    extra: Mapping[str, tuple[str, ...]],
    *,
    guarded: bool = True,
) -> None:
    """Give each handler the responses of its codes: the guard's and validation's (when
    ``guarded``) and ``extra[handler name]``; a response a handler declares itself wins."""
    names = {h.handler_name for h in handlers}
    unknown = sorted(set(extra) - names)
    if unknown:
        raise RuntimeError(f"error codes listed for handlers that do not exist: {unknown}")
    for h in handlers:
        codes = (*(GUARDED if guarded else ()), *extra.get(h.handler_name, ()))
        h.responses = {**errors(*codes), **(h.responses or {})}
