"""The enterprise API's own request and answer shapes. The data side's shapes (sites, meters,
readings, activity reports) are ``enterprises.energy_schemas``' and travel as they are."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from msgspec import Meta, Struct

from enterprises.report import PERIOD_PATTERN
from enterprises.schemas import SizeClass

Login = Annotated[str, Meta(min_length=1, max_length=64, examples=["energy.manager"])]
Password = Annotated[str, Meta(min_length=1, max_length=128, examples=["correct horse battery"])]
AccountPeriod = Annotated[
    str,
    Meta(
        pattern=PERIOD_PATTERN,
        description="A calendar month `YYYY-MM` or a calendar year `YYYY`.",
        examples=["2026-03", "2025"],
    ),
]


class SignIn(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    login: Login
    password: Password


class UserView(Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    enterprise_id: uuid.UUID
    login: str
    display_name: str
    created_at: datetime
    disabled: bool
    disabled_at: datetime | None = None


class Session(Struct, frozen=True, kw_only=True):
    access_token: str
    token_type: Literal["Bearer"] = "Bearer"  # noqa: S105 (a scheme name, not a secret)
    expires_in: int  # seconds; then sign in again (no refresh token)
    user: UserView


class UserIn(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    login: Login
    display_name: Annotated[
        str, Meta(min_length=1, max_length=100, pattern=r"^[^\x00]*$", examples=["能源主管"])
    ]
    password: Password


class Profile(Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    credit_code: str
    name: str
    industry: str  # GB/T 4754-2017
    district: str  # GB/T 2260
    size_class: SizeClass
    registered_at: datetime


class CarbonReportIn(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    period: AccountPeriod


class CarbonReportView(Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    sha256: str  # of the file's bytes: check it at /api/public/v1/enterprise-reports/{sha256}
    period: str
    issued_at: datetime
    media_type: str
    size_bytes: int
    download: str  # the path of the file in this API
    verify: str  # the public path that confirms the hash


class PublicReport(Struct, frozen=True, kw_only=True):
    """What anyone holding a report's hash may learn: whose, which period, when issued."""

    sha256: str
    credit_code: str
    enterprise_name: str
    period: str
    issued_at: datetime
