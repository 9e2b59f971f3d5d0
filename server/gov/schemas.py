"""The government surface's own request and answer shapes for sign-in and administration
(reports' shapes are reporting's). Bodies are strict: unknown fields are refused."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from msgspec import Meta, Struct

from reporting.users import GovRole, GovUser

Login = Annotated[str, Meta(min_length=1, max_length=64, examples=["analyst.li"])]
Password = Annotated[str, Meta(min_length=1, max_length=128, examples=["correct horse battery"])]
TotpCode = Annotated[
    str, Meta(min_length=1, max_length=16, description="The 6-digit TOTP code", examples=["492039"])
]
Name = Annotated[str, Meta(min_length=1, max_length=100, pattern=r"^[^\x00]*$")]


class GovSignIn(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    login: Login
    password: Password
    totp: TotpCode


class GovUserView(Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    login: str
    display_name: str
    role: GovRole
    created_at: datetime
    disabled: bool
    disabled_at: datetime | None


def user_view(u: GovUser) -> GovUserView:
    return GovUserView(
        id=u.id,
        login=u.login,
        display_name=u.display_name,
        role=u.role,
        created_at=u.created_at,
        disabled=u.disabled_at is not None,
        disabled_at=u.disabled_at,
    )


class GovUserIn(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    login: Login
    display_name: Name
    role: GovRole
    password: Password


class GovUserCreated(Struct, frozen=True, kw_only=True):
    user: GovUserView
    totp_uri: str  # otpauth://totp/...: shown once, for the user's authenticator app
    totp_secret: str  # the same secret in base32, for typing in by hand


class GovUserChange(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    role: GovRole | None = None
    disabled: bool | None = None
