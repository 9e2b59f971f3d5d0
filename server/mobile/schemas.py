"""Wire types of the mobile API: requests forbid unknown fields; fields added later get defaults
and no type ever changes (the API is a contract, see mobile_api_spec/)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal, get_args

import msgspec
from msgspec import UNSET, Meta, UnsetType

from behaviours.events import NO_NUL, TIME_RANGE, check_times
from behaviours.rules import Reason
from behaviours.service import SCOPES, OperatorKind
from behaviours.tracks import REASONS as TRACK_REASONS
from residents import schemas as residents_schemas
from residents.schemas import SmsCodeSent, TokenPair

# Operator kinds a resident can link: `app` is the residents' own app (reserved, never listed).
LINKABLE_KINDS = tuple(k for k in get_args(OperatorKind) if k != "app")

# Digits are spelled [0-9], never \d: in Python \d matches any Unicode digit ("1380000004\u0661"
# would be another account than "13800000041"). The lengths are bounded too, because Python's
# `$` also matches before a trailing newline ("440305\n").
Phone = Annotated[
    str,
    Meta(
        pattern=r"^(\+?86)?1[3-9][0-9]{9}$",
        max_length=14,
        description="Mainland mobile number, optionally prefixed by 86 or +86.",
        examples=["13812345678"],
    ),
]
SmsCode = Annotated[
    str,
    Meta(
        pattern=r"^[0-9]{6}$",
        min_length=6,
        max_length=6,
        description="The 6-digit code received.",
    ),
]
DistrictCode = Annotated[
    str,
    Meta(
        pattern=r"^[0-9]{6}$",
        min_length=6,
        max_length=6,
        description="GB/T 2260 code of one of the programme's imported districts.",
        examples=["440305"],
    ),
]


def _codes(codes: object) -> str:
    return ", ".join(f"`{c}`" for c in codes)  # type: ignore[attr-defined]


OpaqueToken = Annotated[str, Meta(min_length=16, max_length=512, pattern=NO_NUL)]


class Request(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Base of request bodies: unknown fields are refused."""


class Answer(msgspec.Struct, kw_only=True):
    """Base of answer bodies."""


__all__ = ["Level", "Profile", "SmsCodeSent", "TokenPair"]  # the residents' answers, published

DistrictName = Annotated[
    str | None,
    Meta(
        description="The district's name from the programme's imported districts (null when "
        "no district, or the code is not among them)."
    ),
]


class Level(residents_schemas.Level, kw_only=True):
    """A growth level, its name in the answer's language (`Content-Language`)."""

    description: Annotated[
        str | None,
        Meta(description="What reaching the level takes, in words (amounts in g / kg / t)."),
    ] = None


class Profile(residents_schemas.Profile, kw_only=True):
    """The resident's profile (the residents' answer, with what a person reads added)."""

    level: Level | None = None
    district_name: DistrictName = None


# --- sign-in -------------------------------------------------------------------------------


class SmsCodeRequest(Request, kw_only=True):
    phone: Phone


class SmsSignIn(Request, kw_only=True):
    phone: Phone
    code: SmsCode
    district_code: DistrictCode | None = None


class WechatSignIn(Request, kw_only=True):
    code: Annotated[
        str,
        Meta(
            min_length=1,
            max_length=128,
            pattern=NO_NUL,
            description="The code from `wx.login()`.",
        ),
    ]
    district_code: DistrictCode | None = None


class RefreshRequest(Request, kw_only=True):
    refresh_token: OpaqueToken


# --- the resident --------------------------------------------------------------------------


class ProfileUpdate(Request, kw_only=True):
    """PATCH semantics: an absent field is unchanged; `district_code: null` clears the district
    (off the district leaderboard)."""

    district_code: DistrictCode | UnsetType | None = UNSET


class Export(Answer, kw_only=True):
    """Everything the system holds about the caller, as one JSON document. Times are RFC 3339
    with their offset; each activity and ledger entry also has its `day` (`YYYY-MM-DD`) in
    the programme's time zone (`timezone`)."""

    exported_at: datetime
    timezone: Annotated[
        str,
        Meta(description="The programme's time zone (IANA name) the `day` fields are in."),
    ]
    profile: Profile
    data_sources: list[DataSource] = msgspec.field(default_factory=list)
    balances: list[BalanceView] = msgspec.field(default_factory=list)
    history: list[ExportedEvent] = msgspec.field(default_factory=list)
    ledger: Annotated[
        list[dict[str, object]],
        Meta(
            description="The ledger's entries of both assets, each with its `asset` and the "
            "`day` of its `occurred_at` (`YYYY-MM-DD`, the programme's time zone)."
        ),
    ] = msgspec.field(default_factory=list)


# --- data sources --------------------------------------------------------------------------


class DataSource(Answer, kw_only=True):
    operator_id: str
    name: str
    kinds: Annotated[
        list[str], Meta(description=f"What the operator reports: some of {_codes(LINKABLE_KINDS)}.")
    ] = msgspec.field(default_factory=list)
    scopes: Annotated[
        list[str],
        Meta(
            description=(
                "The behaviours the operator is registered to report: what a link may grant it "
                "(anything else is `scope_not_offered`)."
            )
        ),
    ] = msgspec.field(default_factory=list)
    linked: bool = False
    scope: Annotated[
        list[str], Meta(description="The behaviours consented to (see `LinkRequest.scope`).")
    ] = msgspec.field(default_factory=list)
    subject_ref: Annotated[
        str | None,
        Meta(description="The pseudonymous reference this operator uses for the caller."),
    ] = None
    linked_at: datetime | None = None


class LinkRequest(Request, kw_only=True):
    scope: Annotated[
        list[Annotated[str, Meta(min_length=1, max_length=64, pattern=NO_NUL)]],
        Meta(
            min_length=1,
            max_length=16,
            description="The behaviours whose data the resident consents to share: some of "
            f"{_codes(SCOPES)}, or `*` for all of them (any other value is `scope_invalid`).",
        ),
    ]


# --- activities ----------------------------------------------------------------------------


class TrackPoint(msgspec.Struct, forbid_unknown_fields=True, array_like=False):
    t: Annotated[
        datetime, Meta(description=f"RFC 3339 time with offset, within {TIME_RANGE}.", tz=True)
    ]
    lat: Annotated[float, Meta(ge=-90, le=90)]
    lon: Annotated[float, Meta(ge=-180, le=180)]

    def __post_init__(self) -> None:
        check_times(self.t)


class TrackActivity(Request, kw_only=True, tag="track", tag_field="type"):
    """A cycling or walking trip recorded by the app."""

    mode: Literal["cycling", "walking"]
    claimed_distance_m: Annotated[int, Meta(ge=1, le=500_000)]
    points: Annotated[list[TrackPoint], Meta(min_length=2, max_length=20_000)]
    client_ref: Annotated[str, Meta(min_length=1, max_length=128, pattern=NO_NUL)] | None = None


class StepsActivity(Request, kw_only=True, tag="steps", tag_field="type"):
    """The day's step count from the phone's pedometer."""

    day: Annotated[date, Meta(description=f"The programme's day, within {TIME_RANGE}.")]
    steps: Annotated[int, Meta(ge=0, le=200_000)]

    def __post_init__(self) -> None:
        check_times(self.day)


Activity = TrackActivity | StepsActivity


class TrackFinding(Answer, kw_only=True):
    code: str
    message: str


class Verdict(Answer, kw_only=True):
    event_id: str | None = None
    status: Literal["accepted", "rejected"]
    reason_code: Annotated[
        str | None,
        Meta(
            description="Why it was rejected: a track finding "
            f"({_codes(TRACK_REASONS)}) or a pipeline reason ({_codes(Reason)})."
        ),
    ] = None
    reason: str | None = None
    reduction_g: int = 0
    points: int = 0
    methodology_version: str | None = None
    measured_distance_m: int | None = None
    findings: list[TrackFinding] = msgspec.field(default_factory=list)
    duplicate: Annotated[
        bool, Meta(description="True when this activity was already reported: same verdict.")
    ] = False


# --- reads ---------------------------------------------------------------------------------


class BalanceView(Answer, kw_only=True):
    asset: str
    posted: int
    pending: int
    available: int


class Expiry(Answer, kw_only=True):
    """Unspent points that expire at ``expires_at`` (their lots summed)."""

    expires_at: datetime
    points: int


class ExpiryReminder(Answer, kw_only=True):
    """A reminder the app can show: points expiring within 30 days."""

    expires_at: datetime
    points: int
    days_left: Annotated[int, Meta(description="Whole days left (0: expires today).")]
    message: Annotated[str, Meta(description="The reminder, in the answer's language.")]


class Summary(Answer, kw_only=True):
    total_reduction_g: int
    points_available: int
    points_pending: Annotated[
        int, Meta(description="Points on hold (the same figure as `points_on_hold`).")
    ]
    points_expiring_30d: int
    district_code: str | None = None
    district_name: DistrictName = None
    district_rank: Annotated[
        int | None, Meta(description="1 = most grams in the district; null when no district.")
    ] = None
    district_residents: int | None = None
    level: Level | None = None
    next_level: Level | None = None
    points_on_hold: Annotated[
        int,
        Meta(description="Points reserved by unconfirmed rewards: not available, not spent."),
    ] = 0
    expiries: Annotated[
        list[Expiry],
        Meta(description="Every upcoming expiry date of the unspent points, nearest first."),
    ] = msgspec.field(default_factory=list)
    expiry_reminders: Annotated[
        list[ExpiryReminder],
        Meta(description="The expiries within 30 days, as reminders to show."),
    ] = msgspec.field(default_factory=list)


class HistoryItem(Answer, kw_only=True):
    event_id: str
    kind: str
    mode: str | None = None
    status: Annotated[str, Meta(description="`accepted` or `rejected`.")]
    occurred_at: Annotated[
        datetime,
        Meta(
            description="When the activity started, as reported. History is newest first by "
            "this time, or by `recorded_at` when the reported time is later (a time in the "
            "future never stays at the top)."
        ),
    ]
    recorded_at: Annotated[datetime | None, Meta(description="When it was received.")] = None
    operator_id: str | None = None
    distance_m: int | None = None
    reduction_g: int = 0
    points: int = 0
    methodology_version: str | None = None
    reason_code: str | None = None
    reason: str | None = None


class HistoryPage(Answer, kw_only=True):
    items: list[HistoryItem]
    next_cursor: Annotated[
        str | None, Meta(description="Pass as `cursor` for the next page; null at the end.")
    ] = None


class ExportedEvent(HistoryItem, kw_only=True):
    """An activity in the export: a history item with its day."""

    day: Annotated[
        str,
        Meta(
            pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$",
            description="The day of `occurred_at` in the programme's time zone, `YYYY-MM-DD`.",
        ),
    ]


MonthText = Annotated[
    str,
    Meta(
        pattern=r"^[0-9]{4}-[0-9]{2}$",
        description="A calendar month of the programme's time zone, `YYYY-MM`.",
    ),
]


class MonthFigure(Answer, kw_only=True):
    month: MonthText
    mode: str
    trips: int
    distance_m: int
    reduction_g: int
    points: int


class MonthTotal(Answer, kw_only=True):
    month: MonthText
    trips: int
    distance_m: int
    reduction_g: int
    points: int


class Monthly(Answer, kw_only=True):
    """The last `months` calendar months of the programme's time zone (the current one
    included; a month starts at midnight on its first day there)."""

    months: Annotated[
        list[MonthFigure],
        Meta(
            description="Accepted activities per month and mode, newest month first, then by "
            "mode; only the months and modes that have activities."
        ),
    ]
    totals: Annotated[
        list[MonthTotal],
        Meta(
            description="One entry per calendar month, newest first, exactly `months` of "
            "them: a month without activities has zeros."
        ),
    ]
    timezone: Annotated[
        str, Meta(description="The programme's time zone (IANA name) the months are in.")
    ]


class LeaderboardEntry(Answer, kw_only=True):
    rank: int
    resident: Annotated[str, Meta(description="A pseudonymous label, never an identity.")]
    reduction_g: int
    me: bool = False


class Leaderboard(Answer, kw_only=True):
    district_code: str | None
    entries: list[LeaderboardEntry]
    my_rank: int | None = None
    my_reduction_g: int | None = None
    district_name: DistrictName = None


class Levels(Answer, kw_only=True):
    levels: list[Level]
