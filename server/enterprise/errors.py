"""The enterprise API's errors: the catalogue of every stable code it answers with, and the
OpenAPI responses built from it (each operation lists its codes, each with an example body).

Status and title come from the error classes (``kit.errors.error_catalogue``), so the served
document cannot drift from what the server sends; only each code's meaning for an enterprise
console's developer is written here.
"""

from __future__ import annotations

from typing import NamedTuple

from litestar.openapi.datastructures import ResponseSpec

# Imported so that their classes are loaded: the catalogue derives from them.
import enterprises.allowances_errors
import enterprises.commuting_errors
import enterprises.energy_errors
import enterprises.errors
import enterprises.kinds.errors
import enterprises.offsets_errors
import enterprises.pollutants_errors
import enterprises.users  # noqa: F401
from kit.errors import error_catalogue
from server.errors import problem_responses


class ErrorCode(NamedTuple):
    status: int
    title: str
    meaning: str


MEANINGS: dict[str, str] = {
    "validation_failed": "The body or a parameter does not match the schema or a rule.",
    "bad_request": "The request could not be read (not JSON, not UTF-8 CSV).",
    "token_missing": "No `Authorization: Bearer <token>` header.",
    "token_invalid": "The access token is malformed, forged or not an access token.",
    "token_expired": "The access token expired: sign in again.",
    "role_required": "The token is not an enterprise administrator's token.",
    "user_disabled": "The user of this token was disabled: its tokens are refused.",
    "sign_in_failed": "Unknown login, wrong password or disabled user (one answer for all).",
    "sign_in_rate_limited": (
        "Too many failed sign-ins for this login or from this client; wait `Retry-After` seconds."
    ),
    "login_taken": "The login is already someone's (logins are unique in the programme).",
    "user_is_self": "An administrator cannot disable their own user.",
    "not_found": "No such item in the caller's enterprise.",
    "enterprise_not_found": (
        "Not the caller's enterprise: every path names the enterprise of the token, any other "
        "is answered as if it did not exist."
    ),
    "site_not_found": "No such site in the caller's enterprise.",
    "site_name_taken": "The enterprise already has a site of that name.",
    "meter_ref_taken": "The pusher already has a meter of that reference.",
    "activity_report_not_found": "No such activity report in the caller's enterprise.",
    "green_certificate_claimed": (
        "A green-electricity certificate serial was already claimed (by anyone in the region): "
        "a serial counts once."
    ),
    # Emission rights (server/enterprise/allowances_routes.py, docs/allowances.md).
    "allowance_period_not_found": "The enterprise holds no allowance of that year.",
    "allowance_period_closed": (
        "The year's period was closed by government: no more offers, purchases or surrenders."
    ),
    "allowance_surplus_insufficient": (
        "The quantity is more than the seller's surplus: allowance held less its own emissions "
        "of the year less its other open offers (`surplus_g`)."
    ),
    "allowance_surrendered": (
        "The seller or the buyer surrendered its allowance of that year: it trades no more."
    ),
    "allowance_offer_not_found": "No such offer.",
    "allowance_offer_not_open": (
        "The offer was already bought or withdrawn (bought once only), or a purchase of it "
        "awaits the government's approval."
    ),
    "allowance_approval_not_pending": "The transfer is not awaiting the government's approval.",
    "allowance_own_offer": "An enterprise cannot buy its own offer.",
    "allowance_region_mismatch": "The buyer is not registered in the offer's region.",
    "allowance_other_region": "The buyer holds another region's allowance of that year.",
    "cursor_invalid": "The cursor is not one this list gave.",
    # Account kinds (server/enterprise/kinds_routes.py, docs/account_kinds.md).
    "kind_not_self_reported": (
        "The enterprise's kind is not accounted from a declared activity: an industrial "
        "enterprise is accounted from its activity reports and graded against its industry "
        "(`/emissions`, `/grade`)."
    ),
    "factor_missing": "The factor library has no factor for the year under the basis.",
    # Pollutants (server/enterprise/pollutants_routes.py, docs/pollutants.md).
    "pollutant_unit_unknown": "A line's unit is not t, kg or g (`errors` names the lines).",
    "pollutant_month_invalid": "`month` is not a month's first day between 2000 and 2100.",
    "pollutant_lines_duplicate": (
        "The same pollutant from the same source is listed twice in the month."
    ),
    # Commuting programmes (server/enterprise/commuting_routes.py, docs/commuting.md).
    "commuting_programme_not_found": "No such commuting programme in the caller's enterprise.",
    "commuting_programme_exists": "The enterprise already has a commuting programme of that name.",
    "offset_supply_short": (
        "The programme holds fewer unsold pooled grams than asked for (`available_g`)."
    ),
    "offset_holdings_short": (
        "The enterprise holds fewer bought, unretired grams than asked for (`held_g`)."
    ),
    "offset_cap_exceeded": (
        "Retiring this much would pass the period's cap, a share of the enterprise's emissions "
        "of the year (`cap_g`, `used_g`, `requested_g`, `emissions_g`)."
    ),
    "idempotency_key_reused": "The same `Idempotency-Key` came with another request.",
    "payload_too_large": "The body is too large.",
    "unsupported_media_type": "Send the body with the media type the operation names.",
    "method_not_allowed": "Wrong HTTP method.",
    "internal_error": "A fault on the server's side; quote the request id.",
    "retry_later": (
        "A store timed out or a transaction conflicted; the request was rolled back whole. "
        "Send it again after `Retry-After` seconds."
    ),
}

# Every operation may answer these.
ALWAYS = ("internal_error", "retry_later")
# What the guard of every signed-in route may answer, before the handler runs.
GUARDED = ("token_missing", "token_invalid", "token_expired", "role_required", "user_disabled")
# ... and of every route under /enterprises/{enterprise_id}.
SCOPED = (*GUARDED, "enterprise_not_found", "validation_failed")


def _catalogue() -> dict[str, ErrorCode]:
    rows = error_catalogue()
    missing = sorted(set(MEANINGS) - set(rows))
    if missing:
        raise RuntimeError(
            f"enterprise API codes without an error class or registration: {missing}"
        )
    return {code: ErrorCode(rows[code].status, rows[code].title, m) for code, m in MEANINGS.items()}


# Every code the enterprise API answers with, by code.
CATALOGUE: dict[str, ErrorCode] = _catalogue()


def errors(*codes: str) -> dict[int, ResponseSpec]:
    """OpenAPI responses for the stable error codes an operation may answer with."""
    return problem_responses(CATALOGUE, (*codes, *ALWAYS))
