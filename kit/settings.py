"""Settings machinery shared by every package: sections are frozen msgspec Structs whose fields
document themselves (``Meta(description=...)``); the composition root (``server.settings``) joins
them into one ``Settings`` and this module reads it from the environment.

Variables: ``DATABASE_URL`` and ``REDIS_URL`` by their conventional names, everything else as
``TANPUHUI_<SECTION>_<FIELD>`` (for example ``TANPUHUI_HTTP_PORT``). An invalid value raises
:class:`SettingsError` naming the variable; the CLI turns it into one line and exit status 2.

The kernel's own sections live here (database, Redis, auth, tasks, privacy keys, logs); each
domain defines its section next to its code (``points/settings.py``, ``behaviours/settings.py``).
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Annotated, Any, Literal, TypeVar
from urllib.parse import urlsplit

import msgspec
from msgspec import Meta, Struct

T = TypeVar("T", bound=Struct)


class SettingsError(Exception):
    """A setting is missing or malformed; ``variable`` names the environment variable."""

    def __init__(self, variable: str, problem: str) -> None:
        super().__init__(f"invalid setting {variable}: {problem}")
        self.variable = variable
        self.problem = problem


def doc(text: str) -> Any:
    """The description of a setting (shown by `tanpuhui settings` and in the README)."""
    return Meta(description=text)


class DatabaseSettings(Struct, frozen=True, kw_only=True):
    url: Annotated[
        str | None,
        doc(
            "PostgreSQL URL (postgresql://user:pass@host:port/db). Unset: an embedded "
            "PostgreSQL is started under the embedded data directory (dev only)."
        ),
    ] = None
    owner_url: Annotated[
        str | None,
        doc(
            "PostgreSQL URL of the role that owns the schema: `tanpuhui migrate` connects as it, "
            "then grants `DATABASE_URL`'s role only what the application needs (it cannot "
            "update, delete or truncate ledger transfers, nor disable triggers). Give it to the "
            "migrate step only, never to the API or workers. Unset: `DATABASE_URL` (least "
            "privilege off; refused when TANPUHUI_ENV=prod). Embedded: set up by `tanpuhui dev`."
        ),
    ] = None
    pool_min: Annotated[int, Meta(ge=1, le=1000), doc("Smallest pool size per process.")] = 2
    pool_max: Annotated[int, Meta(ge=1, le=1000), doc("Largest pool size per process.")] = 10
    command_timeout_s: Annotated[
        float, Meta(gt=0, le=3600), doc("Seconds before a single SQL command is cancelled.")
    ] = 30.0


class RedisSettings(Struct, frozen=True, kw_only=True):
    url: Annotated[
        str | None,
        doc(
            "Redis URL (redis://host:port/db or unix:///path). Unset: an embedded Redis is "
            "started under the embedded data directory (dev only)."
        ),
    ] = None
    pool_max: Annotated[
        int,
        Meta(ge=1, le=10_000),
        doc(
            "Redis connections per process at most; past it a request waits for a free one "
            "(up to 2 s, then 503 `retry_later`) instead of failing."
        ),
    ] = 100


class AuthSettings(Struct, frozen=True, kw_only=True):
    jwt_keys: Annotated[
        str | None,
        doc(
            "HS256 signing keys as `kid:secret,kid:secret`; the first signs new tokens, all "
            "verify (rotation). Unset: a random key per start (dev only; tokens die on restart)."
        ),
    ] = None
    jwt_issuer: Annotated[str, doc("`iss` claim of issued tokens.")] = "tanpuhui"
    access_ttl_s: Annotated[
        int, Meta(ge=30, le=86400), doc("Lifetime of access tokens in seconds.")
    ] = 900
    refresh_ttl_s: Annotated[int, Meta(ge=60), doc("Lifetime of refresh tokens in seconds.")] = (
        30 * 86400
    )
    signature_skew_s: Annotated[
        int,
        Meta(ge=1, le=3600),
        doc("Largest difference between an operator request's timestamp and now, in seconds."),
    ] = 300


class CelerySettings(Struct, frozen=True, kw_only=True):
    broker_url: Annotated[
        str | None, doc("Celery broker URL. Unset: the Redis URL (its unix form when embedded).")
    ] = None
    always_eager: Annotated[bool, doc("Run tasks inline instead of on a worker (tests only).")] = (
        False
    )


class PrivacySettings(Struct, frozen=True, kw_only=True):
    phone_hash_key: Annotated[
        str | None,
        doc(
            "Secret key (16+ characters) of the keyed hash under which phone numbers and WeChat "
            "openids are looked up; never stored in clear. Required in prod; unset in dev/test: "
            "a fixed, public development key."
        ),
    ] = None
    secrets_key: Annotated[
        str | None,
        doc(
            "AES-256-GCM key (base64 of 32 bytes) under which operators' signing secrets are "
            "stored encrypted. Required in prod; unset in dev/test: a fixed, public development "
            "key. `tanpuhui migrate` encrypts secrets still stored in clear."
        ),
    ] = None


class LogSettings(Struct, frozen=True, kw_only=True):
    level: Annotated[
        Literal["DEBUG", "INFO", "WARNING", "ERROR"], doc("Log level of the JSON logs.")
    ] = "INFO"


_CONVENTIONAL = {("database", "url"): "DATABASE_URL", ("redis", "url"): "REDIS_URL"}


def env_name(section: str | None, field: str) -> str:
    if section is None:
        return f"TANPUHUI_{field.upper()}"
    return _CONVENTIONAL.get((section, field), f"TANPUHUI_{section.upper()}_{field.upper()}")


def sections_of(root: type[Struct]) -> dict[str, type[Struct]]:
    """The root's sections: its fields whose type is a Struct, in declaration order."""
    info = msgspec.inspect.type_info(root)
    assert isinstance(info, msgspec.inspect.StructType)
    return {
        f.name: f.type.cls for f in info.fields if isinstance(f.type, msgspec.inspect.StructType)
    }


def top_level_of(root: type[Struct]) -> tuple[str, ...]:
    sections = sections_of(root)
    return tuple(name for name in root.__struct_fields__ if name not in sections)


def load(root: type[T], environ: Mapping[str, str]) -> T:
    """``root`` from the environment: top-level fields and every section's fields."""
    raw: dict[str, Any] = {}
    for name in top_level_of(root):
        value = environ.get(env_name(None, name))
        if value not in (None, ""):
            raw[name] = value
    for section, struct in sections_of(root).items():
        values: dict[str, Any] = {}
        for field in struct.__struct_fields__:
            value = environ.get(env_name(section, field))
            if value not in (None, ""):
                values[field] = value
        if values:
            raw[section] = values
    try:
        return msgspec.convert(raw, root, strict=False)
    except msgspec.ValidationError as exc:
        raise SettingsError(_variable_of(str(exc)), str(exc).split(" - at ")[0]) from None


def check_url(variable: str, value: str, schemes: tuple[str, ...]) -> None:
    parts = urlsplit(value)
    if parts.scheme not in schemes:
        raise SettingsError(
            variable, f"expected a URL starting with {' or '.join(s + '://' for s in schemes)}"
        )
    if parts.scheme.startswith(("postgres", "redis", "rediss")) and not (
        parts.hostname or "host=" in parts.query
    ):
        raise SettingsError(variable, "the URL names no host")


def is_key32(value: str) -> bool:
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


def describe(root: type[Struct]) -> list[tuple[str, str, str]]:
    """(variable, default, description) for every setting of ``root``, in declaration order."""
    rows: list[tuple[str, str, str]] = []
    top_info = msgspec.inspect.type_info(root)
    assert isinstance(top_info, msgspec.inspect.StructType)
    top = top_level_of(root)
    rows.extend(_row(None, field) for field in top_info.fields if field.name in top)
    for section, struct in sections_of(root).items():
        info = msgspec.inspect.type_info(struct)
        assert isinstance(info, msgspec.inspect.StructType)
        rows.extend(_row(section, field) for field in info.fields)
    return rows


def markdown_table(root: type[Struct]) -> str:
    """The configuration table shown in the README and by `tanpuhui settings --defaults`."""
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    rows += [f"| `{name}` | `{default}` | {text} |" for name, default, text in describe(root)]
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
