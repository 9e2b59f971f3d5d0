"""Shapes of employee commuting programmes (enterprises.commuting): what an enterprise sends and
reads (programmes, employee codes, aggregates, bonus runs) and what a resident sends and reads
(joining, memberships, the consent text). Requests forbid unknown fields."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from msgspec import Meta, Struct

# A name without control characters (NUL included), not blank.
Name = Annotated[
    str,
    Meta(
        min_length=1,
        max_length=100,
        pattern=r"^[^\x00-\x1f\x7f]*[^\s\x00-\x1f\x7f][^\x00-\x1f\x7f]*$",
    ),
]
EmployeeCode = Annotated[
    str,
    Meta(
        pattern=r"^[A-Za-z0-9_-]{1,64}$",
        description="An employee code the enterprise hands out (letters, digits, `_`, `-`).",
        examples=["E-10001"],
    ),
]
InvitationToken = Annotated[
    str,
    Meta(
        pattern=r"^[A-Za-z0-9_-]{32,64}$",
        description="The token of the programme's invitation link.",
    ),
]
ConsentVersion = Annotated[str, Meta(pattern=r"^[A-Za-z0-9._-]{1,40}$", examples=["2026-12-01"])]
Multiplier = Annotated[
    str,
    Meta(
        pattern=r"^(1(\.[0-9]{1,2})?|2(\.00?)?)$",
        description="Points multiplier of a commuting trip, 1 to 2 (the bonus: the part above 1).",
        examples=["1.2"],
    ),
]
ClockTime = Annotated[str, Meta(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$", examples=["07:00"])]
Weekday = Annotated[int, Meta(ge=1, le=7, description="ISO weekday: 1 Monday ... 7 Sunday.")]
Mode = Annotated[str, Meta(pattern=r"^[a-z_]{1,32}$", examples=["metro"])]
CodeList = Annotated[list[EmployeeCode], Meta(max_length=10_000)]


class Window(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A daily window of programme local time, ``start`` included, ``end`` excluded."""

    start: ClockTime
    end: ClockTime


class RuleIn(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The enterprise's bonus rule; any field left out takes the documented default
    (enterprises/commuting.json)."""

    multiplier: Multiplier | None = None
    modes: Annotated[list[Mode], Meta(min_length=1, max_length=16)] | None = None
    windows: Annotated[list[Window], Meta(min_length=1, max_length=6)] | None = None
    weekdays: Annotated[list[Weekday], Meta(min_length=1, max_length=7)] | None = None


class Rule(Struct, frozen=True, kw_only=True):
    """The bonus rule in force: a verified trip of one of ``modes`` that starts inside one of
    ``windows`` on one of ``weekdays`` (programme local time) earns
    floor((multiplier - 1) x its points) bonus points."""

    multiplier: str
    modes: list[str]
    windows: list[Window]
    weekdays: list[int]


class ProgrammeIn(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: Name
    rule: RuleIn | None = None
    employee_codes: CodeList = []  # (msgspec copies mutable defaults)
    invitation: bool = True  # issue an invitation link's token (answered once)


class FundingAccount(Struct, frozen=True, kw_only=True):
    """The ledger account the bonuses are paid from: the enterprise's own points."""

    owner_type: Literal["enterprise"]
    owner_id: str
    asset: Literal["POINT"]


class Programme(Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    enterprise_id: uuid.UUID
    name: str
    rule: Rule
    funding_account: FundingAccount
    funding_available_points: int
    employee_codes: int  # codes handed out (how many were used is not shown)
    invitation: bool  # whether an invitation link is valid
    consent_version: str  # the consent text residents accept now
    created_at: datetime


class ProgrammeCreated(Programme, frozen=True, kw_only=True):
    """The new programme; ``invitation_token`` is shown in this answer only (null in a replay
    of the same Idempotency-Key: the server keeps only its hash)."""

    invitation_token: str | None = None


class CodesIn(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    codes: Annotated[list[EmployeeCode], Meta(min_length=1, max_length=10_000)]


class CodesAdded(Struct, frozen=True, kw_only=True):
    added: int
    unchanged: int  # given before


class Invitation(Struct, frozen=True, kw_only=True):
    """A new invitation link's token (the previous one stops working)."""

    invitation_token: str


CellStatus = Literal["ok", "suppressed"]


class AggregateRow(Struct, frozen=True, kw_only=True):
    """Totals of one month and mode (``*``: all months, or all modes) of the current members'
    commuting trips; every figure null when the row is suppressed."""

    month: str  # YYYY-MM, or "*"
    mode: str  # a mode, or "*"
    status: CellStatus
    trips: int | None
    distance_m: int | None
    reduction_g: int | None
    points: int | None


class Aggregates(Struct, frozen=True, kw_only=True):
    """The employees' commuting, only as totals of current members. ``status`` suppressed:
    fewer members than ``min_group_size`` (no breakdown, no participant count at all)."""

    programme_id: uuid.UUID
    start_month: str
    end_month: str
    min_group_size: int
    status: CellStatus
    participants: int | None
    rows: list[AggregateRow]


class BonusRun(Struct, frozen=True, kw_only=True):
    """One bonus run. ``trips`` and ``points`` are null while the programme has fewer current
    members than the minimum group size (a small run would show one employee's trip)."""

    id: int
    ran_at: datetime
    status: Literal["paid", "underfunded"]
    trips: int | None
    points: int | None  # paid (paid), or needed (underfunded)
    available: int  # the funding account's available points at the run
    reason: str | None


# --- the resident's side (mobile API) ------------------------------------------------------


class CommutingJoin(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Join with an employee code (and the programme's id) or with an invitation link's token;
    ``consent_version`` is the version of the consent text shown and accepted."""

    consent_version: ConsentVersion
    programme_id: uuid.UUID | None = None
    employee_code: EmployeeCode | None = None
    invitation_token: InvitationToken | None = None


class CommutingMembership(Struct, frozen=True, kw_only=True):
    programme_id: uuid.UUID
    programme_name: str
    enterprise_name: str
    active: bool
    joined_at: datetime
    left_at: datetime | None
    via: Literal["employee_code", "invitation"]
    consent_version: str


class CommutingConsent(Struct, frozen=True, kw_only=True):
    """The consent text a resident accepts by joining (in the answer's language)."""

    version: str
    language: str
    text: str
