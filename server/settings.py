"""Settings read from the environment into msgspec Structs, one section per subsystem.

Variables: ``DATABASE_URL`` and ``REDIS_URL`` by their conventional names, everything else as
``TANPUHUI_<SECTION>_<FIELD>`` (for example ``TANPUHUI_HTTP_PORT``). Every field carries its
documentation in ``Meta(description=...)``; ``tanpuhui settings`` prints the table that the README
shows. An invalid value raises :class:`SettingsError` naming the variable; the CLI turns it into one
line on stderr and exit status 2.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Mapping
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import msgspec
from msgspec import Meta, Struct


class SettingsError(Exception):
    """A setting is missing or malformed; ``variable`` names the environment variable."""

    def __init__(self, variable: str, problem: str) -> None:
        super().__init__(f"invalid setting {variable}: {problem}")
        self.variable = variable
        self.problem = problem


def _doc(text: str) -> Any:
    return Meta(description=text)


class DatabaseSettings(Struct, frozen=True, kw_only=True):
    url: Annotated[
        str | None,
        _doc(
            "PostgreSQL URL (postgresql://user:pass@host:port/db). Unset: an embedded "
            "PostgreSQL is started under the embedded data directory (dev only)."
        ),
    ] = None
    owner_url: Annotated[
        str | None,
        _doc(
            "PostgreSQL URL of the role that owns the schema: `tanpuhui migrate` connects as it, "
            "then grants `DATABASE_URL`'s role only what the application needs (it cannot "
            "update, delete or truncate ledger transfers, nor disable triggers). Give it to the "
            "migrate step only, never to the API or workers. Unset: `DATABASE_URL` (least "
            "privilege off; refused when TANPUHUI_ENV=prod). Embedded: set up by `tanpuhui dev`."
        ),
    ] = None
    pool_min: Annotated[int, Meta(ge=1, le=1000), _doc("Smallest pool size per process.")] = 2
    pool_max: Annotated[int, Meta(ge=1, le=1000), _doc("Largest pool size per process.")] = 10
    command_timeout_s: Annotated[
        float, Meta(gt=0, le=3600), _doc("Seconds before a single SQL command is cancelled.")
    ] = 30.0


class RedisSettings(Struct, frozen=True, kw_only=True):
    url: Annotated[
        str | None,
        _doc(
            "Redis URL (redis://host:port/db or unix:///path). Unset: an embedded Redis is "
            "started under the embedded data directory (dev only)."
        ),
    ] = None


class EmbeddedSettings(Struct, frozen=True, kw_only=True):
    data_dir: Annotated[
        str, _doc("Directory of the embedded PostgreSQL and Redis data; survives restarts.")
    ] = "./var"


class HttpSettings(Struct, frozen=True, kw_only=True):
    host: Annotated[str, _doc("Interface the API listens on.")] = "127.0.0.1"
    port: Annotated[int, Meta(ge=1, le=65535), _doc("TCP port of the API.")] = 8000
    workers: Annotated[
        int, Meta(ge=1, le=256), _doc("API worker processes for `tanpuhui serve`.")
    ] = 2
    max_body_bytes: Annotated[
        int, Meta(ge=1024), _doc("Largest request body accepted, in bytes.")
    ] = 16 * 1024 * 1024
    max_header_bytes: Annotated[
        int,
        Meta(ge=4096, le=1024 * 1024),
        _doc("Largest request line plus headers accepted, in bytes (larger: 431, or 400)."),
    ] = 16 * 1024
    trusted_proxies: Annotated[
        str | None,
        _doc(
            "Comma-separated IPs or CIDR networks of reverse proxies whose `X-Forwarded-For` and "
            "`X-Forwarded-Proto` are believed (`*` trusts any). Unset or empty: none; the client "
            "address is the socket's peer."
        ),
    ] = None
    debug: Annotated[bool, _doc("Litestar debug mode; never in production.")] = False


class AuthSettings(Struct, frozen=True, kw_only=True):
    jwt_keys: Annotated[
        str | None,
        _doc(
            "HS256 signing keys as `kid:secret,kid:secret`; the first signs new tokens, all "
            "verify (rotation). Unset: a random key per start (dev only; tokens die on restart)."
        ),
    ] = None
    jwt_issuer: Annotated[str, _doc("`iss` claim of issued tokens.")] = "tanpuhui"
    access_ttl_s: Annotated[
        int, Meta(ge=30, le=86400), _doc("Lifetime of access tokens in seconds.")
    ] = 900
    refresh_ttl_s: Annotated[int, Meta(ge=60), _doc("Lifetime of refresh tokens in seconds.")] = (
        30 * 86400
    )
    signature_skew_s: Annotated[
        int,
        Meta(ge=1, le=3600),
        _doc("Largest difference between an operator request's timestamp and now, in seconds."),
    ] = 300


class CelerySettings(Struct, frozen=True, kw_only=True):
    broker_url: Annotated[
        str | None, _doc("Celery broker URL. Unset: the Redis URL (its unix form when embedded).")
    ] = None
    always_eager: Annotated[bool, _doc("Run tasks inline instead of on a worker (tests only).")] = (
        False
    )


class PointsSettings(Struct, frozen=True, kw_only=True):
    grams_per_point: Annotated[
        int,
        Meta(ge=1, le=1_000_000),
        _doc("Grams of verified CO2e that earn one carbon point (remainders carry over)."),
    ] = 10
    expiry_years: Annotated[
        int,
        Meta(ge=1, le=10),
        _doc("Points expire at the end of the year this many years after they were earned."),
    ] = 2
    hold_timeout_s: Annotated[
        int, Meta(ge=10, le=30 * 86400), _doc("Seconds before an unsettled hold is voided.")
    ] = 900
    witness_key: Annotated[
        str | None,
        _doc(
            "Ed25519 private key (base64 of its 32 raw bytes) that signs the journal's "
            "checkpoints (`/api/public/v1/journal/checkpoint`, `tanpuhui audit --witness`); "
            "never stored in the database. Required in prod; unset in dev/test: a key generated "
            "once under the embedded data directory."
        ),
    ] = None


class SmsSettings(Struct, frozen=True, kw_only=True):
    gateway: Annotated[
        Literal["console", "http"],
        _doc(
            "Where sign-in codes go: `console` writes them to the log (dev only; the one place a "
            "code is ever logged), `http` posts them to the gateway URL."
        ),
    ] = "console"
    gateway_url: Annotated[
        str | None, _doc("URL the `http` gateway POSTs `{phone, code, ttl_s}` to as JSON.")
    ] = None
    gateway_token: Annotated[
        str | None, _doc("Bearer token sent to the SMS gateway (unset: no Authorization header).")
    ] = None
    gateway_timeout_s: Annotated[
        float, Meta(gt=0, le=60), _doc("Seconds before a call to the SMS gateway gives up.")
    ] = 5.0
    code_ttl_s: Annotated[
        int, Meta(ge=30, le=3600), _doc("Lifetime of a one-time sign-in code in seconds.")
    ] = 300
    max_attempts: Annotated[
        int, Meta(ge=1, le=20), _doc("Wrong guesses after which a code is void.")
    ] = 5
    resend_interval_s: Annotated[
        int, Meta(ge=0, le=3600), _doc("Seconds before another code may be sent to one phone.")
    ] = 60
    per_phone_per_hour: Annotated[
        int,
        Meta(ge=1, le=1000),
        _doc(
            "Codes sent to one phone number per hour at the request of one client IP at most "
            "(only codes actually sent count; a refused request counts nothing)."
        ),
    ] = 5
    per_phone_all_clients_per_hour: Annotated[
        int,
        Meta(ge=2, le=10000),
        _doc(
            "Codes sent to one phone number per hour whatever the client, at most; larger than "
            "the per-client figure, so that no single client can lock a number out."
        ),
    ] = 20
    per_ip_per_hour: Annotated[
        int, Meta(ge=1, le=100000), _doc("Codes sent at the request of one client IP per hour.")
    ] = 30


class WechatSettings(Struct, frozen=True, kw_only=True):
    app_id: Annotated[
        str | None, _doc("WeChat mini-program AppID (unset: WeChat sign-in is refused).")
    ] = None
    app_secret: Annotated[str | None, _doc("WeChat mini-program AppSecret.")] = None
    code2session_url: Annotated[
        str, _doc("WeChat's code2session endpoint (a local fake in tests).")
    ] = "https://api.weixin.qq.com/sns/jscode2session"
    timeout_s: Annotated[
        float, Meta(gt=0, le=60), _doc("Seconds before a call to code2session gives up.")
    ] = 5.0


class PrivacySettings(Struct, frozen=True, kw_only=True):
    phone_hash_key: Annotated[
        str | None,
        _doc(
            "Secret key (16+ characters) of the keyed hash under which phone numbers and WeChat "
            "openids are looked up; never stored in clear. Required in prod; unset in dev/test: "
            "a fixed, public development key."
        ),
    ] = None
    secrets_key: Annotated[
        str | None,
        _doc(
            "AES-256-GCM key (base64 of 32 bytes) under which operators' signing secrets are "
            "stored encrypted. Required in prod; unset in dev/test: a fixed, public development "
            "key. `tanpuhui migrate` encrypts secrets still stored in clear."
        ),
    ] = None


class IngestSettings(Struct, frozen=True, kw_only=True):
    max_batch_records: Annotated[
        int, Meta(ge=1, le=50_000), _doc("Most events in one operator batch request.")
    ] = 5000
    max_batch_bytes: Annotated[
        int, Meta(ge=1024), _doc("Largest operator batch body, in bytes (checked before decoding).")
    ] = 8 * 1024 * 1024
    max_file_bytes: Annotated[
        int,
        Meta(ge=1024),
        _doc("Largest daily file (NDJSON or CSV) an operator may upload, in bytes."),
    ] = 256 * 1024 * 1024
    file_chunk_records: Annotated[
        int,
        Meta(ge=1, le=50_000),
        _doc("Records per transaction when the worker processes an uploaded file."),
    ] = 5000
    claim_window_days: Annotated[
        int, Meta(ge=1, le=366), _doc("Events older than this many days are rejected (`too_old`).")
    ] = 7
    future_skew_s: Annotated[
        int,
        Meta(ge=0, le=86400),
        _doc("Events later than now plus this many seconds are rejected (`in_future`)."),
    ] = 300
    baseline_kwh_per_person_day: Annotated[
        float,
        Meta(ge=0),
        _doc("Per-capita household electricity baseline (kWh/day) when a meter has no history."),
    ] = 2.5
    baseline_gas_m3_per_person_day: Annotated[
        float,
        Meta(ge=0),
        _doc("Per-capita household gas baseline (m³/day) when a meter has no history."),
    ] = 0.3
    baseline_water_m3_per_person_day: Annotated[
        float,
        Meta(ge=0),
        _doc("Per-capita household water baseline (m³/day) when a meter has no history."),
    ] = 0.15


class LogSettings(Struct, frozen=True, kw_only=True):
    level: Annotated[
        Literal["DEBUG", "INFO", "WARNING", "ERROR"], _doc("Log level of the JSON logs.")
    ] = "INFO"


class Settings(Struct, frozen=True, kw_only=True):
    env: Annotated[
        Literal["dev", "test", "prod"],
        _doc(
            "Deployment kind; `prod` refuses dev-only conveniences (random JWT keys, the "
            "public phone-hash and secrets keys, a generated witness key, the console SMS "
            "gateway, migrating without a role of the application's own)."
        ),
    ] = "dev"
    region_code: Annotated[
        str,
        Meta(pattern=r"^[0-9]{6}$", min_length=6, max_length=6),
        _doc("6-digit GB/T 2260 administrative code of the programme's region."),
    ] = "440300"
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


_SECTIONS: dict[str, type[Struct]] = {
    "database": DatabaseSettings,
    "redis": RedisSettings,
    "embedded": EmbeddedSettings,
    "http": HttpSettings,
    "auth": AuthSettings,
    "celery": CelerySettings,
    "points": PointsSettings,
    "ingest": IngestSettings,
    "sms": SmsSettings,
    "wechat": WechatSettings,
    "privacy": PrivacySettings,
    "log": LogSettings,
}
_TOP_LEVEL = ("env", "region_code")
_CONVENTIONAL = {("database", "url"): "DATABASE_URL", ("redis", "url"): "REDIS_URL"}


def env_name(section: str | None, field: str) -> str:
    if section is None:
        return f"TANPUHUI_{field.upper()}"
    return _CONVENTIONAL.get((section, field), f"TANPUHUI_{section.upper()}_{field.upper()}")


def _check_url(variable: str, value: str, schemes: tuple[str, ...]) -> None:
    parts = urlsplit(value)
    if parts.scheme not in schemes:
        raise SettingsError(
            variable, f"expected a URL starting with {' or '.join(s + '://' for s in schemes)}"
        )
    if parts.scheme.startswith(("postgres", "redis", "rediss")) and not (
        parts.hostname or "host=" in parts.query
    ):
        raise SettingsError(variable, "the URL names no host")


def load_settings(environ: Mapping[str, str]) -> Settings:
    raw: dict[str, Any] = {}
    for name in _TOP_LEVEL:
        value = environ.get(env_name(None, name))
        if value not in (None, ""):
            raw[name] = value
    for section, struct in _SECTIONS.items():
        values: dict[str, Any] = {}
        for field in struct.__struct_fields__:
            value = environ.get(env_name(section, field))
            if value not in (None, ""):
                values[field] = value
        if values:
            raw[section] = values
    try:
        settings = msgspec.convert(raw, Settings, strict=False)
    except msgspec.ValidationError as exc:
        raise SettingsError(_variable_of(str(exc)), str(exc).split(" - at ")[0]) from None
    if settings.database.url:
        _check_url("DATABASE_URL", settings.database.url, ("postgresql", "postgres"))
    if settings.database.owner_url:
        variable = env_name("database", "owner_url")
        _check_url(variable, settings.database.owner_url, ("postgresql", "postgres"))
    if settings.redis.url:
        _check_url("REDIS_URL", settings.redis.url, ("redis", "rediss", "unix"))
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
        elif not _is_key32(value):
            raise SettingsError(env_name(section, field), "expected the base64 of 32 bytes")
    return settings


def _is_key32(value: str) -> bool:
    try:
        return len(base64.b64decode(value.strip(), validate=True)) == 32
    except ValueError:
        return False


def parse_jwt_keys(value: str) -> list[tuple[str, str]]:
    keys: list[tuple[str, str]] = []
    for item in value.split(","):
        kid, sep, secret = item.strip().partition(":")
        if not sep or not kid or len(secret.encode()) < 32:
            # RFC 7518 3.2: an HS256 key must be at least as long as the hash output (32 bytes).
            raise ValueError("expected `kid:secret` pairs with secrets of at least 32 bytes")
        keys.append((kid, secret))
    return keys


def _variable_of(message: str) -> str:
    # msgspec reports the failing location as "$.section.field" or "$.field".
    if " - at `$." not in message:
        return "TANPUHUI_*"
    path = message.rsplit(" - at `$.", 1)[1].rstrip("`").split(".")
    if len(path) == 1:
        return env_name(None, path[0])
    return env_name(path[0], path[1])


def describe() -> list[tuple[str, str, str]]:
    """(variable, default, description) for every setting, in declaration order."""
    rows: list[tuple[str, str, str]] = []
    top_info = msgspec.inspect.type_info(Settings)
    assert isinstance(top_info, msgspec.inspect.StructType)
    for field in top_info.fields:
        if field.name in _TOP_LEVEL:
            rows.append(_row(None, field))
    for section in _SECTIONS:
        info = msgspec.inspect.type_info(_SECTIONS[section])
        assert isinstance(info, msgspec.inspect.StructType)
        rows.extend(_row(section, field) for field in info.fields)
    return rows


def markdown_table() -> str:
    """The configuration table shown in the README and by `tanpuhui settings`."""
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    rows += [f"| `{name}` | `{default}` | {text} |" for name, default, text in describe()]
    return "\n".join(rows) + "\n"


def _row(section: str | None, field: msgspec.inspect.Field) -> tuple[str, str, str]:
    description = ""
    pending: list[Any] = [field.type]
    while pending:
        t = pending.pop()
        if isinstance(t, msgspec.inspect.Metadata):
            description = (t.extra_json_schema or {}).get("description", description)
            pending.append(t.type)
        elif isinstance(t, msgspec.inspect.UnionType):
            pending.extend(t.types)
    default = field.default
    shown = "(unset)" if default is None or default is msgspec.NODEFAULT else str(default)
    return env_name(section, field.name), shown, description
