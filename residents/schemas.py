"""The residents' answers: what a sign-in, a profile and a level look like. The mobile API
publishes them as they are (server/mobile/schemas.py re-exports them; the contract is
mobile_api_spec/openapi.json): fields added later get defaults and no type ever changes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec
from msgspec import Meta


class Answer(msgspec.Struct, kw_only=True):
    """Base of answer bodies."""


class SmsCodeSent(Answer, kw_only=True):
    sent: bool = True
    phone_masked: str
    ttl_s: Annotated[int, Meta(description="Seconds the code stays valid.")]
    resend_after_s: Annotated[int, Meta(description="Seconds before another code may be asked.")]


class TokenPair(Answer, kw_only=True):
    access_token: Annotated[str, Meta(description="JWT for `Authorization: Bearer`.")]
    token_type: Literal["Bearer"] = "Bearer"  # noqa: S105 (a scheme name, not a secret)
    expires_in: Annotated[int, Meta(description="Seconds the access token lives.")]
    refresh_token: Annotated[
        str, Meta(description="Opaque; exchange once at /auth/refresh for a new pair.")
    ]
    refresh_expires_in: int
    resident_id: str
    new_account: bool = False


class Level(Answer, kw_only=True):
    level: int
    name: str
    min_grams: int


class Profile(Answer, kw_only=True):
    resident_id: str
    phone_masked: str | None = None
    wechat_linked: bool = False
    district_code: str | None = None
    created_at: datetime
    level: Level | None = None
