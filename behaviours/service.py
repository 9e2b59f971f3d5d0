"""Behaviours' service: the operator registry and signing keys, residents' links to operators,
the ingestion entry point, daily files, methodology seeding, history reads. No HTTP, no SQL."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import msgspec

from behaviours import gtfs_import
from behaviours import repository as repo
from behaviours.errors import (
    InvalidScope,
    LinkNotFound,
    ScopeNotOffered,
    UnknownOperator,
)
from behaviours.events import BatchResult, Source, Verdict
from behaviours.files import (
    FileResultLine,
    FileStatus,
    create_file,
    fail_file,
    file_results,
    file_status,
    stalled_files,
)
from behaviours.pipeline import (
    APP_OPERATOR_ID,
    IngestPolicy,
    ReferenceCache,
    default_cache,
    ingest,
)
from behaviours.rules import SCOPES as SCOPES
from integrations.gtfs import GtfsError, Report
from kit.cipher import SecretBox
from kit.db import Tx
from kit.settings import PrivacySettings

DATA_DIR = Path(__file__).parent / "data"
OperatorKind = Literal["transit", "bike_share", "utility", "vehicle", "app", "platform"]
# What an operator of a kind reports when registered without its scopes (data, with its reasons:
# data/operator_kinds.json).
DEFAULT_SCOPES: dict[str, tuple[str, ...]] = {
    kind: tuple(scopes)
    for kind, scopes in json.loads((DATA_DIR / "operator_kinds.json").read_text(encoding="utf-8"))[
        "default_scopes"
    ].items()
}


class OperatorInfo(msgspec.Struct, frozen=True):
    id: str
    name: str
    kind: str
    region_code: str
    scopes: list[str]  # what it reports: what a resident may grant it


class Link(msgspec.Struct, frozen=True):
    operator_id: str
    operator_name: str
    subject_ref: str  # what the operator uses for this resident (pseudonymous)
    resident_id: str
    scope: list[str]
    granted_at: datetime
    revoked_at: datetime | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


class EventRecord(msgspec.Struct, frozen=True):
    """One event as the resident's history shows it."""

    id: str
    operator_id: str
    record_id: str
    kind: str
    mode: str
    behaviour: str
    started_at: datetime
    ended_at: datetime
    status: str
    reason_code: str | None
    reason_message: str | None
    distance_m: int | None
    district_code: str | None
    methodology_code: str | None
    methodology_version: int | None
    factor_g: float | None
    reduction_g: int
    points: int


# --- ingestion -------------------------------------------------------------------------------
# ``ingest`` (behaviours.pipeline) is the one entry point, re-exported here with the policy it
# takes (``IngestPolicy.build``, once at start-up).


def app_source(resident_id: str) -> Source:
    """The source of a resident's self-reported events (GPS tracks, step counts)."""
    return Source(operator_id=APP_OPERATOR_ID, resident_id=resident_id)


def summarise(verdicts: list[Verdict]) -> BatchResult:
    counts = {"accepted": 0, "duplicate": 0, "rejected": 0}
    for v in verdicts:
        counts[v.status] += 1
    return BatchResult(
        accepted=counts["accepted"],
        duplicates=counts["duplicate"],
        rejected=counts["rejected"],
        results=verdicts,
    )


# --- operators and keys ----------------------------------------------------------------------


async def register_operator(
    tx: Tx,
    operator_id: str,
    *,
    name: str,
    kind: OperatorKind,
    region_code: str,
    gtfs_feed: str | None = None,
    scopes: Sequence[str] | None = None,
) -> None:
    """Register or change an operator. ``scopes``: the behaviours it may report (some of
    :data:`SCOPES`; none for a pusher of enterprises' meters); default: its kind's
    (:data:`DEFAULT_SCOPES`)."""
    chosen = _operator_scopes(kind, scopes)
    await repo.insert_operator(tx.conn, operator_id, name, kind, region_code, gtfs_feed, chosen)
    await repo.touch_reference(tx.conn)


def _operator_scopes(kind: str, scopes: Sequence[str] | None) -> list[str]:
    if scopes is None:
        return sorted(DEFAULT_SCOPES.get(kind, ()))
    bad = [s for s in scopes if s not in SCOPES]
    if bad:
        raise InvalidScope(f"Scopes must be some of {', '.join(SCOPES)}; got {bad}.")
    return sorted(set(scopes))


async def add_signing_key(
    tx: Tx,
    operator_id: str,
    key_id: str,
    secret: str | None = None,
    *,
    privacy: PrivacySettings,
) -> str:
    """Add a key (rotation: add the new one, move the operator over, then revoke the old).
    Returns the secret, generated when not given. HMAC needs the secret itself, so it cannot be
    hashed: it is stored encrypted under the settings' secrets key (kit/cipher.py; unset in
    dev and test: the public development key, which prod settings refuse)."""
    if await repo.get_operator(tx.conn, operator_id) is None:
        raise UnknownOperator(f"No operator {operator_id!r}.")
    secret = secret or secrets.token_hex(32)  # hex: never starts with "-" on a command line
    box = SecretBox.from_settings(privacy)
    await repo.add_key(
        tx.conn, operator_id, key_id, box.seal(secret, context=_key_context(operator_id, key_id))
    )
    return secret


def _key_context(operator_id: str, key_id: str) -> str:
    return f"operator_keys:{operator_id}:{key_id}"


async def seal_clear_secrets(tx: Tx, privacy: PrivacySettings) -> int:
    """Encrypt the signing secrets still stored in clear (keys added before secrets were
    encrypted at rest); `tanpuhui migrate` runs it. Returns how many were encrypted."""
    box = SecretBox.from_settings(privacy)
    rows = await repo.clear_secrets(tx.conn)
    for operator_id, key_id, secret in rows:
        await repo.replace_secret(
            tx.conn,
            operator_id,
            key_id,
            secret,
            box.seal(secret, context=_key_context(operator_id, key_id)),
        )
    return len(rows)


async def revoke_signing_key(tx: Tx, operator_id: str, key_id: str) -> bool:
    return await repo.revoke_key(tx.conn, operator_id, key_id)


# --- administration (reporting.admin: the programme administrators' API and CLI) ------------


class OperatorView(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    name: str
    kind: str
    region_code: str
    gtfs_feed: str | None
    scopes: list[str]  # the behaviours it is registered to report
    created_at: datetime
    suspended_at: datetime | None


class SigningKeyView(msgspec.Struct, frozen=True, kw_only=True):
    """A signing key without its secret: ``revoked_at`` in the future is a rotation's overlap
    (the key verifies until then)."""

    key_id: str
    created_at: datetime
    revoked_at: datetime | None


def _operator_view(r: Any) -> OperatorView:
    return OperatorView(
        id=r["id"],
        name=r["name"],
        kind=r["kind"],
        region_code=r["region_code"],
        gtfs_feed=r["gtfs_feed"],
        scopes=list(r["scopes"]),
        created_at=r["created_at"],
        suspended_at=r["disabled_at"],
    )


async def all_operators(conn: Any) -> list[OperatorView]:
    """Every operator, suspended ones included (``list_operators`` is what residents see)."""
    return [_operator_view(r) for r in await repo.operator_rows(conn)]


async def operator_view(conn: Any, operator_id: str) -> OperatorView | None:
    found = [o for o in await all_operators(conn) if o.id == operator_id]
    return found[0] if found else None


async def suspend_operator(tx: Tx, operator_id: str, suspended: bool) -> bool:
    """Suspend (its signed requests refused from the next one on) or resume an operator;
    False when there is no such operator."""
    done = await repo.set_operator_disabled(tx.conn, operator_id, suspended)
    if done:
        await repo.touch_reference(tx.conn)
    return done


async def signing_keys(conn: Any, operator_id: str) -> list[SigningKeyView]:
    return [
        SigningKeyView(key_id=r["key_id"], created_at=r["created_at"], revoked_at=r["revoked_at"])
        for r in await repo.key_rows(conn, operator_id)
    ]


async def issue_signing_key(
    tx: Tx, operator_id: str, key_id: str, *, privacy: PrivacySettings
) -> str | None:
    """A new key with a generated secret (returned, shown once); None when the operator has a
    key of that id already (``UnknownOperator`` when there is no such operator)."""
    if await repo.get_operator(tx.conn, operator_id) is None:
        raise UnknownOperator(f"No operator {operator_id!r}.")
    secret = secrets.token_hex(32)
    box = SecretBox.from_settings(privacy)
    sealed = box.seal(secret, context=_key_context(operator_id, key_id))
    return secret if await repo.add_key_once(tx.conn, operator_id, key_id, sealed) else None


async def retire_signing_key_at(tx: Tx, operator_id: str, key_id: str, at: datetime) -> bool:
    """Let a key verify until ``at``, then never again (a rotation's overlap window); False
    when there is no such key or it is revoked already."""
    return await repo.retire_key_at(tx.conn, operator_id, key_id, at)


async def methodology_version(conn: Any, code: str, version: int) -> dict[str, Any] | None:
    """One published methodology version with its factors and caps (None: not published)."""
    head = [m for m in await methodologies(conn) if m["code"] == code and m["version"] == version]
    if not head:
        return None
    return {
        **head[0],
        "factors": [dict(r) for r in await repo.methodology_factor_rows(conn, code, version)],
        "caps": [dict(r) for r in await repo.methodology_caps_rows(conn, code, version)],
    }


async def methodology_versions(conn: Any, code: str) -> list[int]:
    return await repo.methodology_versions(conn, code)


async def publish_methodology(tx: Tx, m: dict[str, Any]) -> bool:
    """Add a methodology version (the shape of data/methodologies.json's entries): in force
    from its ``effective_from`` for the modes it lists, later versions winning. Never replaces a
    version: False when ``(code, version)`` exists."""
    done = await repo.insert_methodology(tx.conn, m)
    if done:
        await repo.touch_reference(tx.conn)
    return done


async def factor_effect(
    conn: Any, since: datetime, until: datetime, factors: dict[str, float]
) -> list[dict[str, Any]]:
    """By mode and district, the accepted events started in [since, until): count, grams
    credited, and grams with ``factors`` (grams per unit by mode) instead (caps not re-applied)."""
    modes = sorted(factors)
    rows = await repo.factor_effect(conn, since, until, modes, [factors[m] for m in modes])
    return [dict(r) for r in rows]


def secret_lookup(conn: Any, privacy: PrivacySettings) -> Any:
    """``lookup_secret(operator_id, key_id)`` for :func:`kit.auth.verify_signature`: the
    decrypted secret, or None (no such key, or a stored value that does not open under the
    settings' secrets key: in clear, another key's, edited)."""
    box = SecretBox.from_settings(privacy)

    async def lookup_secret(operator_id: str, key_id: str) -> str | None:
        stored = await repo.key_secret(conn, operator_id, key_id)
        if stored is None:
            return None
        return box.open(stored, context=_key_context(operator_id, key_id))

    return lookup_secret


# --- residents' links ------------------------------------------------------------------------


async def is_district(conn: Any, code: str) -> bool:
    """Whether ``code`` is one of the imported districts (a resident's home district must be)."""
    ref = await default_cache().get(conn)
    return code in ref.districts.codes


# District names are reference data that change only when districts are imported: this
# process keeps what it read for NAMES_FRESH_S, so a summary or a profile costs no statement
# for them (a renamed district shows its new name within that time).
NAMES_FRESH_S = 60.0
_names: dict[str, tuple[float, str | None]] = {}


async def district_names(conn: Any, codes: Sequence[str]) -> dict[str, str]:
    """The imported districts' names by code (a published read; codes not imported are left
    out): what a person reads instead of a GB/T 2260 code. Served from this process's copy
    when it is fresh (NAMES_FRESH_S), else one statement for the codes not fresh."""
    if not codes:
        return {}
    now = time.monotonic()
    stale = [
        c for c in set(codes) if (hit := _names.get(c)) is None or now - hit[0] > NAMES_FRESH_S
    ]
    if stale:
        found = await repo.district_names(conn, stale)
        for code in stale:
            _names[code] = (now, found.get(code))
    out: dict[str, str] = {}
    for code in codes:
        name = _names[code][1]
        if name is not None:
            out[code] = name
    return out


def forget_district_names() -> None:
    """Drop this process's copy of the names: an import in this process does it (other
    processes see a new name within NAMES_FRESH_S); tests that empty the tables do it too."""
    _names.clear()


async def list_operators(conn: Any) -> list[OperatorInfo]:
    return [
        OperatorInfo(
            id=r["id"],
            name=r["name"],
            kind=r["kind"],
            region_code=r["region_code"],
            scopes=list(r["scopes"]),
        )
        for r in await repo.list_operators(conn)
    ]


def _link(row: Any, name: str) -> Link:
    return Link(
        operator_id=row["operator_id"],
        operator_name=name,
        subject_ref=row["subject_ref"],
        resident_id=row["resident_id"],
        scope=list(row["scope"]),
        granted_at=row["granted_at"],
        revoked_at=row["revoked_at"],
    )


async def link_operator(tx: Tx, resident_id: str, operator_id: str, scope: list[str]) -> Link:
    """Consent to ``operator_id``'s data for the behaviours in ``scope`` (a subset of
    :data:`SCOPES`, or ``["*"]``). Creates the pseudonymous ``subject_ref`` the operator will
    use; linking again while linked changes the scope and keeps it; linking again after a
    revocation renews the consent under a new ``subject_ref`` (the old one is refused)."""
    bad = [s for s in scope if s not in SCOPES and s != "*"]
    if not scope or bad:
        raise InvalidScope(f"Scope must be some of {', '.join(SCOPES)} (or *); got {bad or scope}.")
    operator = await repo.get_operator(tx.conn, operator_id)
    if (
        operator is None
        or operator["disabled_at"] is not None
        or operator["kind"] == "app"
        or not operator["scopes"]
    ):
        raise UnknownOperator(f"No operator {operator_id!r}.")
    offered = set(operator["scopes"])
    if not offered.issuperset(s for s in scope if s != "*"):
        raise ScopeNotOffered(
            f"{operator['name']} reports only {', '.join(sorted(offered))}; "
            f"asked for {', '.join(sorted(set(scope) - offered - {'*'}))}."
        )
    subject_ref = "s_" + secrets.token_urlsafe(18)
    row = await repo.upsert_link(tx.conn, operator_id, resident_id, subject_ref, sorted(set(scope)))
    return _link(row, operator["name"])


async def import_links(
    tx: Tx,
    operator_id: str,
    links: Sequence[tuple[str, str]],
    scope: list[str],
    granted_at: datetime,
) -> int:
    """Links consented elsewhere, with their original consent time: (subject_ref, resident_id)
    pairs of a programme's members moved from another platform (the operator keeps the
    pseudonyms it knows), or a benchmark's synthetic city. Set-wise; all or nothing."""
    bad = [s for s in scope if s not in SCOPES and s != "*"]
    if not scope or bad:
        raise InvalidScope(f"Scope must be some of {', '.join(SCOPES)} (or *); got {bad or scope}.")
    if granted_at.tzinfo is None:
        raise ValueError("granted_at must be an aware datetime")
    await repo.copy_links(tx.conn, operator_id, links, sorted(set(scope)), granted_at)
    return len(links)


async def unlink_operator(tx: Tx, resident_id: str, operator_id: str) -> None:
    """Revoke at once: events of this subject are rejected (`consent_revoked`) from now on."""
    if not await repo.revoke_link(tx.conn, resident_id, operator_id):
        raise LinkNotFound(f"No active link to {operator_id!r}.")


async def resident_links(conn: Any, resident_id: str) -> list[Link]:
    return [_link(r, r["operator_name"]) for r in await repo.resident_links(conn, resident_id)]


async def resident_events(
    conn: Any, resident_id: str, *, before: datetime | None = None, limit: int = 50
) -> list[EventRecord]:
    """The resident's events, newest first (cursor: ``before`` = last ``started_at`` seen)."""
    rows = await repo.resident_events(conn, resident_id, before, limit)
    return [EventRecord(**dict(r)) for r in rows]


# --- daily files -----------------------------------------------------------------------------
# behaviours/files.py: stored, processed and answered chunk by chunk (re-exported here).


# --- reference data --------------------------------------------------------------------------


async def seed(conn: Any, region_code: str) -> None:
    """Seeder (server.seeds.SEEDERS): default methodologies from data/methodologies.json, and
    the pseudo-operator of residents' own app (in the programme's ``region_code``). Never
    overwrites existing versions."""
    data = json.loads((DATA_DIR / "methodologies.json").read_text(encoding="utf-8"))
    async with conn.transaction():
        for m in data["methodologies"]:
            m = {
                **m,
                "effective_from": datetime.fromisoformat(m["effective_from"]),
                "effective_to": datetime.fromisoformat(m["effective_to"])
                if m.get("effective_to")
                else None,
            }
            await repo.insert_methodology(conn, m)
        await repo.ensure_operator(
            conn, APP_OPERATOR_ID, "Residents' app", "app", region_code, SCOPES
        )
        await repo.touch_reference(conn)


async def methodologies(conn: Any) -> list[dict[str, Any]]:
    return [dict(r) for r in await repo.list_methodologies(conn)]


async def district_count(conn: Any) -> int:
    """How many districts are imported. None: trips with coordinates are refused
    (``region_not_configured``), see docs/behaviours.md."""
    return await repo.count_districts(conn)


def districts_note(count: int) -> str:
    """What /readyz and ``tanpuhui dev`` say about the districts."""
    if count == 0:
        return (
            "none imported: trips with coordinates are refused (region_not_configured); "
            "import them with tanpuhui import-districts FILE.geojson"
        )
    return f"{count} imported"


async def import_districts(tx: Tx, rows: Sequence[tuple[str, str, str | None, bytes]]) -> int:
    await repo.upsert_districts(tx.conn, rows)
    await repo.touch_reference(tx.conn)
    tx.after_commit(forget_district_names)
    return len(rows)


async def import_gtfs(
    tx: Tx,
    feed: str,
    stops: Iterable[tuple[str, str, float, float]],
    shapes: Iterable[tuple[Any, ...]],
    trips: Iterable[tuple[str, str, str | None]],
    stop_times: Iterable[tuple[Any, ...]],
    *,
    distance_unit: str | None = None,
    report: Report | None = None,
) -> Report:
    """Replace a GTFS feed (rows as ``integrations.gtfs.GtfsFeed`` yields them, streamed, or
    lists) and locate every trip's stops on its shape (behaviours/gtfs_import.py). A report
    with errors (the reader's, or found here) raises GtfsError: the caller's transaction rolls
    back, nothing is half-imported."""
    report = await gtfs_import.import_feed(
        tx.conn,
        feed,
        stops,
        shapes,
        trips,
        stop_times,
        report=report if report is not None else Report(),
        distance_unit=distance_unit,
    )
    if not report.ok:
        raise GtfsError(report)
    await repo.touch_reference(tx.conn)
    return report


__all__ = [
    "APP_OPERATOR_ID",
    "FileResultLine",
    "FileStatus",
    "IngestPolicy",
    "Link",
    "OperatorInfo",
    "ReferenceCache",
    "create_file",
    "default_cache",
    "fail_file",
    "file_results",
    "file_status",
    "ingest",
    "link_operator",
    "list_operators",
    "resident_links",
    "stalled_files",
    "unlink_operator",
]
