"""The residents' settings sections: sign-in by SMS code (the gateway and the rate limits on
codes) and by WeChat mini-program login (its code2session endpoint). Variables keep their
names (``TANPUHUI_SMS_*``, ``TANPUHUI_WECHAT_*``): the root composes these sections as ``sms``
and ``wechat``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from msgspec import Meta, Struct

from kit.settings import AuthSettings, PrivacySettings, doc


class SmsSettings(Struct, frozen=True, kw_only=True):
    gateway: Annotated[
        Literal["console", "http"],
        doc(
            "Where sign-in codes go: `console` writes them to the log (dev only; the one place a "
            "code is ever logged), `http` posts them to the gateway URL."
        ),
    ] = "console"
    gateway_url: Annotated[
        str | None, doc("URL the `http` gateway POSTs `{phone, code, ttl_s}` to as JSON.")
    ] = None
    gateway_token: Annotated[
        str | None, doc("Bearer token sent to the SMS gateway (unset: no Authorization header).")
    ] = None
    gateway_timeout_s: Annotated[
        float, Meta(gt=0, le=60), doc("Seconds before a call to the SMS gateway gives up.")
    ] = 5.0
    code_ttl_s: Annotated[
        int, Meta(ge=30, le=3600), doc("Lifetime of a one-time sign-in code in seconds.")
    ] = 300
    max_attempts: Annotated[
        int, Meta(ge=1, le=20), doc("Wrong guesses after which a code is void.")
    ] = 5
    resend_interval_s: Annotated[
        int, Meta(ge=0, le=3600), doc("Seconds before another code may be sent to one phone.")
    ] = 60
    per_phone_per_hour: Annotated[
        int,
        Meta(ge=1, le=1000),
        doc(
            "Codes sent to one phone number per hour at the request of one client IP at most "
            "(only codes actually sent count; a refused request counts nothing)."
        ),
    ] = 5
    per_phone_all_clients_per_hour: Annotated[
        int,
        Meta(ge=2, le=10000),
        doc(
            "Codes sent to one phone number per hour whatever the client, at most; larger than "
            "the per-client figure, so that no single client can lock a number out."
        ),
    ] = 20
    per_ip_per_hour: Annotated[
        int, Meta(ge=1, le=100000), doc("Codes sent at the request of one client IP per hour.")
    ] = 30


class WechatSettings(Struct, frozen=True, kw_only=True):
    app_id: Annotated[
        str | None, doc("WeChat mini-program AppID (unset: WeChat sign-in is refused).")
    ] = None
    app_secret: Annotated[str | None, doc("WeChat mini-program AppSecret.")] = None
    code2session_url: Annotated[
        str, doc("WeChat's code2session endpoint (a local fake in tests).")
    ] = "https://api.weixin.qq.com/sns/jscode2session"
    timeout_s: Annotated[
        float, Meta(gt=0, le=60), doc("Seconds before a call to code2session gives up.")
    ] = 5.0


@dataclass(frozen=True, slots=True)
class ResidentsConfig:
    """What the residents' rules read, built once at start-up from the composed settings:
    the residents' own sections, the kernel's sections they depend on, and the programme's
    district check (behaviours owns the districts; residents only ask)."""

    region_code: str
    sms: SmsSettings
    wechat: WechatSettings
    privacy: PrivacySettings
    auth: AuthSettings
    known_district: Callable[[Any, str], Awaitable[bool]]
