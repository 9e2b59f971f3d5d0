"""The composed settings: every package's section in one frozen ``Settings``, read once at
start-up (:meth:`Settings.from_env`), plus the rules that relate sections to each other.

The machinery (environment names, loading, the table) is the kernel's (``kit.settings``); each
section is defined next to the code it configures. The README's table is generated from this
Struct (``python -m scripts.readme_settings``) and a test keeps it complete.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec
from msgspec import Meta, Struct

from behaviours.settings import IngestSettings
from enterprises.settings import EnterprisesSettings
from enterprises.users_settings import EnterpriseUsersSettings
from kit import settings as kit_settings
from kit.settings import (
    AuthSettings,
    CelerySettings,
    DatabaseSettings,
    LogSettings,
    PrivacySettings,
    RedisSettings,
    SettingsError,
    check_url,
    doc,
    env_name,
    is_key32,
    parse_jwt_keys,
)
from points.settings import PointsSettings
from reporting.settings import ReportingSettings
from reporting.users_settings import GovUsersSettings
from residents.settings import SmsSettings, WechatSettings
from rewards.settings import RewardsSettings

__all__ = [
    "AuthSettings",
    "CelerySettings",
    "DatabaseSettings",
    "EmbeddedSettings",
    "HttpSettings",
    "IngestSettings",
    "LogSettings",
    "PointsSettings",
    "PrivacySettings",
    "RedisSettings",
    "Settings",
    "SettingsError",
    "SmsSettings",
    "WechatSettings",
    "describe",
    "env_name",
    "load_settings",
    "markdown_table",
    "parse_jwt_keys",
]


class EmbeddedSettings(Struct, frozen=True, kw_only=True):
    data_dir: Annotated[
        str, doc("Directory of the embedded PostgreSQL and Redis data; survives restarts.")
    ] = "./var"


class HttpSettings(Struct, frozen=True, kw_only=True):
    host: Annotated[str, doc("Interface the API listens on.")] = "127.0.0.1"
    port: Annotated[int, Meta(ge=1, le=65535), doc("TCP port of the API.")] = 8000
    workers: Annotated[
        int, Meta(ge=1, le=256), doc("API worker processes for `tanpuhui serve`.")
    ] = 2
    max_body_bytes: Annotated[
        int, Meta(ge=1024), doc("Largest request body accepted, in bytes.")
    ] = 16 * 1024 * 1024
    max_header_bytes: Annotated[
        int,
        Meta(ge=4096, le=1024 * 1024),
        doc("Largest request line plus headers accepted, in bytes (larger: 431, or 400)."),
    ] = 16 * 1024
    trusted_proxies: Annotated[
        str | None,
        doc(
            "Comma-separated IPs or CIDR networks of reverse proxies whose `X-Forwarded-For` and "
            "`X-Forwarded-Proto` are believed (`*` trusts any). Unset or empty: none; the client "
            "address is the socket's peer."
        ),
    ] = None
    debug: Annotated[bool, doc("Litestar debug mode; never in production.")] = False


class Settings(Struct, frozen=True, kw_only=True):
    env: Annotated[
        Literal["dev", "test", "prod"],
        doc(
            "Deployment kind; `prod` refuses dev-only conveniences (random JWT keys, the "
            "public phone-hash and secrets keys, a generated witness key, the console SMS "
            "gateway, migrating without a role of the application's own)."
        ),
    ] = "dev"
    region_code: Annotated[
        str,
        Meta(pattern=r"^[0-9]{6}$", min_length=6, max_length=6),
        doc("6-digit GB/T 2260 administrative code of the programme's region."),
    ] = "440300"
    language: Annotated[
        Literal["zh-CN", "en"],
        doc(
            "The programme's language: messages, problem titles and details, verdicts and level "
            "names are in it unless a request's `Accept-Language` asks for the other one "
            "(`zh-CN` or `en`; the codes never change)."
        ),
    ] = "zh-CN"
    timezone: Annotated[
        str,
        doc(
            "The programme's time zone (an IANA name such as `Asia/Shanghai`): every calendar "
            "residents see or the rules use follows it (days for the daily caps and daily steps, "
            "months for the monthly figures, years for the yearly caps and points' expiry, the "
            "days shown in exports). Never the machine's own zone."
        ),
    ] = "Asia/Shanghai"
    database: DatabaseSettings = msgspec.field(default_factory=DatabaseSettings)
    redis: RedisSettings = msgspec.field(default_factory=RedisSettings)
    embedded: EmbeddedSettings = msgspec.field(default_factory=EmbeddedSettings)
    http: HttpSettings = msgspec.field(default_factory=HttpSettings)
    auth: AuthSettings = msgspec.field(default_factory=AuthSettings)
    celery: CelerySettings = msgspec.field(default_factory=CelerySettings)
    points: PointsSettings = msgspec.field(default_factory=PointsSettings)
    ingest: IngestSettings = msgspec.field(default_factory=IngestSettings)
    sms: SmsSettings = msgspec.field(default_factory=SmsSettings)
    wechat: WechatSettings = msgspec.field(default_factory=WechatSettings)
    privacy: PrivacySettings = msgspec.field(default_factory=PrivacySettings)
    log: LogSettings = msgspec.field(default_factory=LogSettings)
    enterprises: EnterprisesSettings = msgspec.field(default_factory=EnterprisesSettings)
    rewards: RewardsSettings = msgspec.field(default_factory=RewardsSettings)
    enterprise_users: EnterpriseUsersSettings = msgspec.field(
        default_factory=EnterpriseUsersSettings
    )
    gov_users: GovUsersSettings = msgspec.field(default_factory=GovUsersSettings)
    reporting: ReportingSettings = msgspec.field(default_factory=ReportingSettings)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        return load_settings(os.environ if environ is None else environ)

    def with_urls(
        self, database_url: str | None, redis_url: str | None, *, owner_url: str | None = None
    ) -> Settings:
        """A copy with the store URLs replaced (used once embedded stores are up); the owner's
        URL too when given."""
        database = msgspec.structs.replace(self.database, url=database_url)
        if owner_url is not None:
            database = msgspec.structs.replace(database, owner_url=owner_url)
        return msgspec.structs.replace(
            self, database=database, redis=msgspec.structs.replace(self.redis, url=redis_url)
        )


def load_settings(environ: Mapping[str, str]) -> Settings:
    settings = kit_settings.load(Settings, environ)
    try:
        ZoneInfo(settings.timezone)
    except (ValueError, ZoneInfoNotFoundError):
        raise SettingsError(
            env_name(None, "timezone"), "not a known IANA time zone (e.g. Asia/Shanghai)"
        ) from None
    if settings.database.url:
        check_url("DATABASE_URL", settings.database.url, ("postgresql", "postgres"))
    if settings.database.owner_url:
        variable = env_name("database", "owner_url")
        check_url(variable, settings.database.owner_url, ("postgresql", "postgres"))
    if settings.redis.url:
        check_url("REDIS_URL", settings.redis.url, ("redis", "rediss", "unix"))
    if settings.database.pool_min > settings.database.pool_max:
        raise SettingsError(env_name("database", "pool_min"), "larger than the pool maximum")
    if settings.auth.jwt_keys is not None:
        try:
            parse_jwt_keys(settings.auth.jwt_keys)
        except ValueError as exc:
            raise SettingsError(env_name("auth", "jwt_keys"), str(exc)) from None
    if settings.env == "prod" and settings.auth.jwt_keys is None:
        raise SettingsError(env_name("auth", "jwt_keys"), "required when TANPUHUI_ENV=prod")
    if settings.env == "prod" and settings.privacy.phone_hash_key is None:
        raise SettingsError(
            env_name("privacy", "phone_hash_key"), "required when TANPUHUI_ENV=prod"
        )
    if settings.privacy.phone_hash_key is not None and len(settings.privacy.phone_hash_key) < 16:
        raise SettingsError(env_name("privacy", "phone_hash_key"), "at least 16 characters")
    if settings.env == "prod" and settings.sms.gateway == "console":
        raise SettingsError(
            env_name("sms", "gateway"),
            "the console gateway logs sign-in codes: use `http` when TANPUHUI_ENV=prod",
        )
    if settings.sms.gateway == "http" and not settings.sms.gateway_url:
        raise SettingsError(env_name("sms", "gateway_url"), "required when the SMS gateway is http")
    if settings.sms.per_phone_all_clients_per_hour <= settings.sms.per_phone_per_hour:
        raise SettingsError(
            env_name("sms", "per_phone_all_clients_per_hour"),
            "must be larger than the per-client figure (else one client locks a number out)",
        )
    for section, field, value in (
        ("points", "witness_key", settings.points.witness_key),
        ("privacy", "secrets_key", settings.privacy.secrets_key),
    ):
        if value is None:
            if settings.env == "prod":
                raise SettingsError(env_name(section, field), "required when TANPUHUI_ENV=prod")
        elif not is_key32(value):
            raise SettingsError(env_name(section, field), "expected the base64 of 32 bytes")
    for field, problem in settings.enterprises.problems():
        raise SettingsError(env_name("enterprises", field), problem)
    return settings


def describe() -> list[tuple[str, str, str]]:
    """(variable, default, description) for every setting, in declaration order."""
    return kit_settings.describe(Settings)


def markdown_table() -> str:
    """The configuration table shown in the README and by `tanpuhui settings --defaults`."""
    return kit_settings.markdown_table(Settings)
