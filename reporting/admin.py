"""The programme's administration: every act of a government administrator (the admin API) or
of the server's operator (`tanpuhui admin ...`), each one call of the owning domain's service
plus one audit entry (reporting/audit.py) in the same transaction, with the state before and
after. The API's routes and the CLI's commands call these functions and nothing else, so the
two cannot drift and neither can skip the audit log.

Owners: operators, signing keys, districts, GTFS feeds and methodologies are behaviours';
merchants and donation projects rewards'; enterprises enterprises'. Only the methodology drafts
(the administrators' workspace before a version is published) are this package's own table.

Secrets (signing keys' and webhooks' secrets) are answered once and never written to the
audit log: entries name the key, not its secret.
"""

from __future__ import annotations

import csv
import tempfile
import uuid
import zipfile
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Final, Literal

import msgspec
from msgspec import Meta, Struct

from behaviours import service as behaviours
from behaviours.errors import UnknownOperator
from behaviours.rules import Scope
from behaviours.service import OperatorKind, OperatorView, SigningKeyView
from enterprises import service as enterprises
from enterprises.schemas import EnterpriseIn, Imported, Registered
from integrations.districts import GeoJsonError, read_districts
from integrations.gtfs import GtfsError, GtfsFeed, Report
from kit.db import Tx
from kit.errors import Conflict, FieldError, InvalidInput, NotFound, Unprocessable
from kit.settings import PrivacySettings
from reporting import admin_repository as repo
from reporting import audit
from rewards import projects
from rewards import service as rewards
from rewards.donation_schemas import Project, ProjectInput
from rewards.schemas import Item, ItemSpec, MerchantRegistration, RegisteredMerchant
from rewards.settings import RewardsConfig

# --- errors ------------------------------------------------------------------------------------


class OperatorExists(Conflict):
    code = "operator_exists"
    title = "Operator already registered"


class SigningKeyExists(Conflict):
    code = "signing_key_exists"
    title = "Signing key id in use"


class SigningKeyNotFound(NotFound):
    code = "signing_key_not_found"
    title = "No such signing key"


class DistrictsRefused(Unprocessable):
    code = "districts_invalid"
    title = "Districts refused"


class GtfsRefused(Unprocessable):
    code = "gtfs_invalid"
    title = "GTFS feed refused"


class DraftNotFound(NotFound):
    code = "methodology_draft_not_found"
    title = "No such methodology draft"


class MethodologyPublished(Conflict):
    code = "methodology_published"
    title = "Published methodology versions never change"


class MethodologyNotFound(NotFound):
    code = "methodology_not_found"
    title = "No such methodology version"


# --- operators ---------------------------------------------------------------------------------

OperatorId = Annotated[str, Meta(pattern=r"^[a-z0-9][a-z0-9_.-]{1,62}$", examples=["sz-metro"])]
KeyId = Annotated[str, Meta(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$", examples=["k2026"])]
Text = Annotated[str, Meta(min_length=1, max_length=200, pattern=r"^[^\x00]*[^\s\x00][^\x00]*$")]
FeedId = Annotated[str, Meta(pattern=r"^[a-z0-9][a-z0-9_.-]{1,62}$", examples=["shenzhen-metro"])]
RegionCode = Annotated[str, Meta(pattern=r"^[0-9]{6}$")]
MAX_OVERLAP_S: Final = 30 * 86400


class OperatorIn(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """An operator as an administrator registers it: its kind says what it sends (transit and
    bike-share trips, utility readings, vehicle mileage, a platform's mixed records); its
    ``scopes``, the behaviours it may report (default: its kind's,
    behaviours/data/operator_kinds.json; ``[]`` for an enterprise's meter gateway, which
    residents then never see among the operators they may link); residents grant it (part of)
    them."""

    id: OperatorId
    name: Text
    kind: OperatorKind
    region_code: RegionCode | None = None  # default: the programme's region
    gtfs_feed: FeedId | None = None  # the GTFS feed its stop ids refer to
    scopes: Annotated[list[Scope], Meta(max_length=5)] | None = None


class OperatorChange(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What changes (absent: unchanged). A kind changed without ``scopes`` keeps the
    operator's scopes."""

    name: Text | None = None
    kind: OperatorKind | None = None
    gtfs_feed: FeedId | None = None
    scopes: Annotated[list[Scope], Meta(max_length=5)] | None = None


class OperatorDetail(Struct, frozen=True, kw_only=True):
    operator: OperatorView
    keys: list[SigningKeyView]
    consent_scopes: list[str]  # what residents may grant it: its scopes


class IssuedKey(Struct, frozen=True, kw_only=True):
    operator_id: str
    key_id: str
    secret: str  # shown once
    retiring: SigningKeyView | None = None  # rotation: the old key and when it stops verifying


async def _operator(conn: Any, operator_id: str) -> OperatorView:
    found = await behaviours.operator_view(conn, operator_id)
    if found is None or found.kind == "app":
        raise UnknownOperator(f"No operator {operator_id!r}.")
    return found


async def operators(conn: Any) -> list[OperatorView]:
    return [o for o in await behaviours.all_operators(conn) if o.kind != "app"]


async def operator(conn: Any, operator_id: str) -> OperatorDetail:
    found = await _operator(conn, operator_id)
    return OperatorDetail(
        operator=found,
        keys=await behaviours.signing_keys(conn, operator_id),
        consent_scopes=list(found.scopes),
    )


async def register_operator(
    tx: Tx, op: OperatorIn, *, region_code: str, actor: str
) -> OperatorView:
    """Register a new operator (``operator_exists`` when the id is taken)."""
    if await behaviours.operator_view(tx.conn, op.id) is not None:
        raise OperatorExists(f"An operator {op.id!r} is registered already.")
    await behaviours.register_operator(
        tx,
        op.id,
        name=op.name,
        kind=op.kind,
        region_code=op.region_code or region_code,
        gtfs_feed=op.gtfs_feed,
        scopes=op.scopes,
    )
    after = await _operator(tx.conn, op.id)
    await audit.record(tx, actor=actor, action="operator.register", target=op.id, after=after)
    return after


async def change_operator(
    tx: Tx, operator_id: str, change: OperatorChange, *, actor: str
) -> OperatorView:
    """Change an operator's name, kind, GTFS feed or scopes (what it may report: events of
    another behaviour are refused ``scope_not_allowed`` from its next batch on; residents'
    existing consents are left as they are)."""
    before = await _operator(tx.conn, operator_id)
    await behaviours.register_operator(
        tx,
        operator_id,
        name=change.name or before.name,
        kind=change.kind or before.kind,  # type: ignore[arg-type]  # a stored OperatorKind
        region_code=before.region_code,
        gtfs_feed=change.gtfs_feed if change.gtfs_feed is not None else before.gtfs_feed,
        scopes=change.scopes if change.scopes is not None else before.scopes,
    )
    after = await _operator(tx.conn, operator_id)
    if after != before:
        await audit.record(
            tx,
            actor=actor,
            action="operator.change",
            target=operator_id,
            before=before,
            after=after,
        )
    return after


async def suspend_operator(
    tx: Tx, operator_id: str, suspended: bool, *, actor: str
) -> OperatorView:
    """Suspend an operator (every signed request refused from the next one on, whatever key) or
    resume it."""
    before = await _operator(tx.conn, operator_id)
    await behaviours.suspend_operator(tx, operator_id, suspended)
    after = await _operator(tx.conn, operator_id)
    if after != before:
        action = "operator.suspend" if suspended else "operator.resume"
        await audit.record(
            tx, actor=actor, action=action, target=operator_id, before=before, after=after
        )
    return after


def _key(keys: Iterable[SigningKeyView], key_id: str) -> SigningKeyView | None:
    return next((k for k in keys if k.key_id == key_id), None)


def _verifies(k: SigningKeyView, now: datetime) -> bool:
    return k.revoked_at is None or k.revoked_at > now


async def issue_key(
    tx: Tx, privacy: PrivacySettings, operator_id: str, key_id: str, *, actor: str
) -> IssuedKey:
    """A new signing key for an operator; its secret is answered once."""
    await _operator(tx.conn, operator_id)
    secret = await behaviours.issue_signing_key(tx, operator_id, key_id, privacy=privacy)
    if secret is None:
        raise SigningKeyExists(f"Operator {operator_id!r} has a key {key_id!r} already.")
    after = _key(await behaviours.signing_keys(tx.conn, operator_id), key_id)
    await audit.record(
        tx, actor=actor, action="operator.key.issue", target=f"{operator_id}/{key_id}", after=after
    )
    return IssuedKey(operator_id=operator_id, key_id=key_id, secret=secret)


async def rotate_key(
    tx: Tx,
    privacy: PrivacySettings,
    operator_id: str,
    old_key_id: str,
    new_key_id: str,
    *,
    overlap_s: int,
    actor: str,
    now: datetime | None = None,
) -> IssuedKey:
    """Issue ``new_key_id`` and let ``old_key_id`` verify ``overlap_s`` seconds more (the
    operator moves over in that window), then never again."""
    if not 0 <= overlap_s <= MAX_OVERLAP_S:
        raise InvalidInput(
            f"overlap_s: 0 to {MAX_OVERLAP_S} seconds.",
            code="validation_failed",
            errors=[FieldError(path="overlap_s", message=f"0 to {MAX_OVERLAP_S} seconds.")],
        )
    await _operator(tx.conn, operator_id)
    at = now or datetime.now(UTC)
    old = _key(await behaviours.signing_keys(tx.conn, operator_id), old_key_id)
    if old is None or not _verifies(old, at):
        raise SigningKeyNotFound(f"Operator {operator_id!r} has no valid key {old_key_id!r}.")
    secret = await behaviours.issue_signing_key(tx, operator_id, new_key_id, privacy=privacy)
    if secret is None:
        raise SigningKeyExists(f"Operator {operator_id!r} has a key {new_key_id!r} already.")
    await behaviours.retire_signing_key_at(
        tx, operator_id, old_key_id, at + timedelta(seconds=overlap_s)
    )
    keys = await behaviours.signing_keys(tx.conn, operator_id)
    retiring = _key(keys, old_key_id)
    await audit.record(
        tx,
        actor=actor,
        action="operator.key.rotate",
        target=f"{operator_id}/{old_key_id}",
        before={"old": old},
        after={"old": retiring, "new": _key(keys, new_key_id)},
    )
    return IssuedKey(operator_id=operator_id, key_id=new_key_id, secret=secret, retiring=retiring)


async def revoke_key(tx: Tx, operator_id: str, key_id: str, *, actor: str) -> SigningKeyView:
    """Revoke a key at once (a rotation's overlap cut short included)."""
    await _operator(tx.conn, operator_id)
    before = _key(await behaviours.signing_keys(tx.conn, operator_id), key_id)
    if before is None:
        raise SigningKeyNotFound(f"Operator {operator_id!r} has no key {key_id!r}.")
    await behaviours.revoke_signing_key(tx, operator_id, key_id)
    after = _key(await behaviours.signing_keys(tx.conn, operator_id), key_id)
    assert after is not None
    if after != before:
        await audit.record(
            tx,
            actor=actor,
            action="operator.key.revoke",
            target=f"{operator_id}/{key_id}",
            before=before,
            after=after,
        )
    return after


# --- districts and GTFS ------------------------------------------------------------------------


class DistrictImported(Struct, frozen=True, kw_only=True):
    code: str
    name: str
    parent_code: str | None
    replaced: bool  # a district of that code was there before


class DistrictsImported(Struct, frozen=True, kw_only=True):
    imported: int
    districts: list[DistrictImported]


def parse_districts(raw: bytes) -> list[tuple[str, str, str | None, bytes]]:
    """The districts of a GeoJSON FeatureCollection (``districts_invalid`` saying why not)."""
    try:
        data = msgspec.json.decode(raw)
        if not isinstance(data, dict):
            raise GeoJsonError("expected a GeoJSON FeatureCollection")
        rows = read_districts(data)
    except (
        msgspec.DecodeError,
        GeoJsonError,
        ValueError,
        KeyError,
        TypeError,
        AttributeError,
    ) as e:
        raise DistrictsRefused(f"Not usable GeoJSON districts: {e}") from None
    if not rows:
        raise DistrictsRefused("The FeatureCollection has no districts.")
    codes = [r[0] for r in rows]
    if len(set(codes)) != len(codes):
        raise DistrictsRefused("A district code appears twice in the file.")
    return rows


async def import_districts(tx: Tx, raw: bytes, *, actor: str) -> DistrictsImported:
    """Insert or replace the districts of a GeoJSON FeatureCollection, all or none."""
    rows = parse_districts(raw)
    before = await behaviours.district_names(tx.conn, [r[0] for r in rows])
    await behaviours.import_districts(tx, rows)
    done = [
        DistrictImported(code=c, name=n, parent_code=p, replaced=c in before) for c, n, p, _ in rows
    ]
    await audit.record(
        tx,
        actor=actor,
        action="districts.import",
        target=",".join(sorted(r[0] for r in rows))[:200],
        before={c: before[c] for c in sorted(before)},
        after={d.code: d.name for d in done},
    )
    return DistrictsImported(imported=len(done), districts=done)


class GtfsIssue(Struct, frozen=True, kw_only=True):
    kind: str
    file: str
    line: int | None
    message: str


class GtfsImported(Struct, frozen=True, kw_only=True):
    feed: str
    counts: dict[str, int]
    notes: list[str]
    warning_counts: dict[str, int]
    warnings: list[GtfsIssue]


def _issues(report: Report, which: str) -> list[GtfsIssue]:
    return [
        GtfsIssue(kind=i.kind, file=i.file, line=i.line, message=i.message)
        for i in getattr(report, which)
    ]


def _refused(report: Report) -> GtfsRefused:
    return GtfsRefused(
        "GTFS feed refused, nothing imported: " + (str(report.errors[0]) if report.errors else ""),
        extra={
            "error_counts": dict(report.error_counts),
            "issues": [msgspec.to_builtins(i) for i in _issues(report, "errors")],
        },
    )


DistanceUnit = Literal["m", "km", "mi", "ft"]


async def import_gtfs(
    tx: Tx, feed_id: str, path: Path, *, distance_unit: str | None, actor: str
) -> GtfsImported:
    """Validate the GTFS feed at ``path`` (a directory or a .zip) and replace the feed
    ``feed_id`` with it in the caller's transaction: all of it or, when it has errors, none
    (``gtfs_invalid``, with file and line of each)."""
    try:
        feed = GtfsFeed(path)
    except (OSError, zipfile.BadZipFile) as exc:
        raise GtfsRefused(f"Not a usable GTFS feed: {exc}") from None
    try:
        feed.check_files()
        if not feed.report.ok:
            raise _refused(feed.report)
        report = await behaviours.import_gtfs(
            tx,
            feed_id,
            feed.stops(),
            feed.shapes(),
            feed.trips(),
            feed.stop_times(),
            distance_unit=distance_unit,
            report=feed.report,
        )
    except GtfsError as exc:
        raise _refused(exc.report) from None
    except (ValueError, UnicodeDecodeError, zipfile.BadZipFile, OSError) as exc:
        raise GtfsRefused(f"Not a usable GTFS feed: {exc}") from None
    finally:
        feed.close()
    return await record_gtfs_import(tx, feed_id, report, actor=actor)


async def record_gtfs_import(tx: Tx, feed_id: str, report: Report, *, actor: str) -> GtfsImported:
    """The audit entry of a GTFS feed imported in ``tx`` (by :func:`import_gtfs` or the
    streaming importer ``tanpuhui import-gtfs``), and what the import answers."""
    done = GtfsImported(
        feed=feed_id,
        counts=dict(report.counts),
        notes=list(report.notes),
        warning_counts=dict(report.warning_counts),
        warnings=_issues(report, "warnings"),
    )
    await audit.record(
        tx,
        actor=actor,
        action="gtfs.import",
        target=feed_id,
        after={"counts": done.counts, "warnings": done.warning_counts},
    )
    return done


async def import_gtfs_bytes(
    tx: Tx, feed_id: str, raw: Any, *, distance_unit: str | None, actor: str
) -> GtfsImported:
    """:func:`import_gtfs` for an uploaded zip (``raw``: a readable binary file or bytes)."""
    with tempfile.TemporaryDirectory(prefix="tph-gtfs-") as folder:
        path = Path(folder) / "feed.zip"
        with path.open("wb") as out:
            if isinstance(raw, bytes | bytearray):
                out.write(raw)
            else:
                while chunk := raw.read(1 << 20):
                    out.write(chunk)
        if not zipfile.is_zipfile(path):
            raise GtfsRefused("The upload is not a zip file.")
        return await import_gtfs(tx, feed_id, path, distance_unit=distance_unit, actor=actor)


# --- methodologies -----------------------------------------------------------------------------

MethodologyCode = Annotated[
    str, Meta(pattern=r"^[a-z0-9][a-z0-9-]{1,62}$", examples=["low-carbon-travel"])
]
Mode = Annotated[str, Meta(pattern=r"^[a-z][a-z0-9_]{1,31}$", examples=["metro"])]
Behaviour = Annotated[str, Meta(pattern=r"^[a-z][a-z0-9_]{1,31}$", examples=["transit"])]
Source = Annotated[str, Meta(min_length=1, max_length=2000, pattern=r"^[^\x00]*$")]
Grams = Annotated[float, Meta(ge=0, le=1_000_000)]
Metres = Annotated[int, Meta(gt=0, le=10_000_000)]
Cap = Annotated[int, Meta(gt=0, le=10**12)]


class FactorIn(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    mode: Mode
    behaviour: Behaviour
    unit: Literal["pkm", "km", "step", "kwh", "m3"]
    factor_g: Grams  # grams CO2e avoided per unit
    source: Source
    project_g_per_kwh: Grams | None = None
    min_distance_m: Metres | None = None
    max_distance_m: Metres | None = None
    max_speed_kmh: Annotated[float, Meta(gt=0, le=1000)] | None = None
    typical_trip_m: Metres | None = None


class CapIn(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    behaviour: Behaviour
    source: Source
    daily_cap_g: Cap | None = None
    yearly_cap_g: Cap | None = None
    daily_max_events: Cap | None = None


class DraftIn(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    code: MethodologyCode
    title: Annotated[str, Meta(min_length=1, max_length=300, pattern=r"^[^\x00]*$")]
    source: Source
    effective_from: datetime
    factors: Annotated[list[FactorIn], Meta(min_length=1, max_length=100)]
    caps: Annotated[list[CapIn], Meta(max_length=100)] = []


class Draft(Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    code: str
    title: str
    source: str
    effective_from: datetime
    factors: list[FactorIn]
    caps: list[CapIn]
    created_by: str
    created_at: datetime
    updated_at: datetime
    published_version: int | None  # the version it became (published drafts never change)
    published_at: datetime | None


class EffectRow(Struct, frozen=True, kw_only=True):
    mode: str
    district: str
    events: int
    current_g: int
    draft_g: int
    change_g: int


class ModeEffect(Struct, frozen=True, kw_only=True):
    mode: str
    events: int
    current_g: int
    draft_g: int
    change_g: int
    change_percent: float | None  # None: nothing credited now


class Preview(Struct, frozen=True, kw_only=True):
    draft_id: uuid.UUID
    since: datetime
    until: datetime
    days: int
    by_mode: list[ModeEffect]
    by_mode_and_district: list[EffectRow]
    total_current_g: int
    total_draft_g: int
    note: str


class Published(Struct, frozen=True, kw_only=True):
    draft: Draft
    code: str
    version: int
    effective_from: datetime


PREVIEW_DAYS_MAX: Final = 366
_PREVIEW_NOTE = (
    "Each accepted event's credited grams scaled by the draft's factor over the factor it was "
    "credited with (its distance rules kept); modes the draft does not list are unchanged; "
    "residents' daily and yearly caps are not re-applied."
)


def _draft(row: Any) -> Draft:
    return Draft(
        id=row["id"],
        code=row["code"],
        title=row["title"],
        source=row["source"],
        effective_from=row["effective_from"],
        factors=msgspec.convert(row["factors"], list[FactorIn]),
        caps=msgspec.convert(row["caps"], list[CapIn]),
        created_by=row["created_by"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        published_version=row["published_version"],
        published_at=row["published_at"],
    )


# The times an administrator may give (a methodology's date, a project's period): with an
# offset and within these years, so that none overflows on its way to or from the database.
YEARS: Final = (2000, 2100)


def plausible(value: datetime) -> bool:
    if value.tzinfo is None or value.utcoffset() is None:
        return False
    try:
        year = value.astimezone(UTC).year
    except (OverflowError, ValueError):
        return False
    return YEARS[0] <= year < YEARS[1]


def _time_problem(path: str) -> FieldError:
    return FieldError(
        path=path, message=f"an ISO 8601 time with an offset, in the years {YEARS[0]}-{YEARS[1]}"
    )


def _draft_problems(d: DraftIn) -> list[FieldError]:
    out = []
    if not plausible(d.effective_from):
        out.append(_time_problem("effective_from"))
    modes = [f.mode for f in d.factors]
    if len(set(modes)) != len(modes):
        out.append(FieldError(path="factors", message="one factor per mode"))
    behaviours_ = [c.behaviour for c in d.caps]
    if len(set(behaviours_)) != len(behaviours_):
        out.append(FieldError(path="caps", message="one cap per behaviour"))
    for i, f in enumerate(d.factors):
        if f.min_distance_m and f.max_distance_m and f.min_distance_m > f.max_distance_m:
            out.append(FieldError(path=f"factors[{i}]", message="min_distance_m > max_distance_m"))
    return out


def _refuse_draft(d: DraftIn) -> None:
    problems = _draft_problems(d)
    if problems:
        raise InvalidInput(
            f"Methodology draft: {len(problems)} field(s) refused.",
            code="validation_failed",
            errors=problems,
        )


async def draft(conn: Any, draft_id: uuid.UUID) -> Draft:
    row = await repo.draft(conn, draft_id)
    if row is None:
        raise DraftNotFound("No methodology draft of that id.")
    return _draft(row)


async def drafts(conn: Any) -> list[Draft]:
    return [_draft(r) for r in await repo.drafts(conn)]


async def published_methodologies(conn: Any) -> list[dict[str, Any]]:
    return await behaviours.methodologies(conn)


async def published_methodology(conn: Any, code: str, version: int) -> dict[str, Any]:
    found = await behaviours.methodology_version(conn, code, version)
    if found is None:
        raise MethodologyNotFound(f"No published version {version} of {code!r}.")
    return found


def _builtins(items: list[Any]) -> list[Any]:
    return [msgspec.to_builtins(i) for i in items]


async def create_draft(tx: Tx, d: DraftIn, *, actor: str) -> Draft:
    """Draft a new version of methodology ``d.code`` (a new methodology when no version of
    that code is published): nothing is in force until it is published."""
    _refuse_draft(d)
    row = await repo.insert_draft(
        tx,
        draft_id=uuid.uuid4(),
        code=d.code,
        title=d.title,
        source=d.source,
        effective_from=d.effective_from,
        factors=_builtins(d.factors),
        caps=_builtins(d.caps),
        created_by=actor,
    )
    made = _draft(row)
    await audit.record(tx, actor=actor, action="methodology.draft", target=str(made.id), after=made)
    return made


async def _unpublished(tx: Tx, draft_id: uuid.UUID) -> Draft:
    row = await repo.draft(tx.conn, draft_id, lock=True)
    if row is None:
        raise DraftNotFound("No methodology draft of that id.")
    found = _draft(row)
    if found.published_at is not None:
        raise MethodologyPublished(
            f"This draft was published as version {found.published_version} of {found.code!r}; "
            "published versions never change: draft a new version."
        )
    return found


async def update_draft(tx: Tx, draft_id: uuid.UUID, d: DraftIn, *, actor: str) -> Draft:
    """Replace an unpublished draft's content (``methodology_published`` once published; its
    code cannot change)."""
    _refuse_draft(d)
    before = await _unpublished(tx, draft_id)
    if d.code != before.code:
        raise InvalidInput(
            "A draft's methodology code cannot change.",
            code="validation_failed",
            errors=[FieldError(path="code", message=f"must stay {before.code!r}")],
        )
    row = await repo.update_draft(
        tx,
        draft_id,
        title=d.title,
        source=d.source,
        effective_from=d.effective_from,
        factors=_builtins(d.factors),
        caps=_builtins(d.caps),
    )
    after = _draft(row)
    await audit.record(
        tx, actor=actor, action="methodology.edit", target=str(draft_id), before=before, after=after
    )
    return after


async def delete_draft(tx: Tx, draft_id: uuid.UUID, *, actor: str) -> None:
    before = await _unpublished(tx, draft_id)
    await repo.delete_draft(tx, draft_id)
    await audit.record(
        tx, actor=actor, action="methodology.discard", target=str(draft_id), before=before
    )


async def preview(
    conn: Any, draft_id: uuid.UUID, *, days: int, now: datetime | None = None
) -> Preview:
    """What the draft's factors would have credited over the last ``days`` days, by mode and
    district, beside what was credited: read-only (nothing is written, no version made)."""
    if not 1 <= days <= PREVIEW_DAYS_MAX:
        raise InvalidInput(
            f"days: 1 to {PREVIEW_DAYS_MAX}.",
            code="validation_failed",
            errors=[FieldError(path="days", message=f"1 to {PREVIEW_DAYS_MAX}")],
        )
    d = await draft(conn, draft_id)
    until = now or datetime.now(UTC)
    since = until - timedelta(days=days)
    rows = await behaviours.factor_effect(
        conn, since, until, {f.mode: f.factor_g for f in d.factors}
    )
    cells = [
        EffectRow(
            mode=r["mode"],
            district=r["district"],
            events=r["events"],
            current_g=r["current_g"],
            draft_g=round(r["draft_g"]),
            change_g=round(r["draft_g"]) - r["current_g"],
        )
        for r in rows
    ]
    by_mode: dict[str, list[EffectRow]] = {}
    for c in cells:
        by_mode.setdefault(c.mode, []).append(c)
    modes = []
    for mode, group in sorted(by_mode.items()):
        current = sum(c.current_g for c in group)
        drafted = sum(c.draft_g for c in group)
        modes.append(
            ModeEffect(
                mode=mode,
                events=sum(c.events for c in group),
                current_g=current,
                draft_g=drafted,
                change_g=drafted - current,
                change_percent=round(100 * (drafted - current) / current, 2) if current else None,
            )
        )
    return Preview(
        draft_id=d.id,
        since=since,
        until=until,
        days=days,
        by_mode=modes,
        by_mode_and_district=cells,
        total_current_g=sum(c.current_g for c in cells),
        total_draft_g=sum(c.draft_g for c in cells),
        note=_PREVIEW_NOTE,
    )


async def publish(
    tx: Tx,
    draft_id: uuid.UUID,
    *,
    effective_from: datetime | None,
    actor: str,
    now: datetime | None = None,
) -> Published:
    """Publish the draft as the next version of its methodology, in force from
    ``effective_from`` (default: the draft's), which may not be in the past: events already
    credited keep the version they were credited with. A published draft is final."""
    d = await _unpublished(tx, draft_id)
    start = effective_from or d.effective_from
    at = now or datetime.now(UTC)
    if not plausible(start) or start < at - timedelta(minutes=1):
        raise InvalidInput(
            "effective_from: a time zone offset, and not in the past.",
            code="validation_failed",
            errors=[FieldError(path="effective_from", message="with an offset, not in the past")],
        )
    versions = await behaviours.methodology_versions(tx.conn, d.code)
    version = (max(versions) if versions else 0) + 1
    m = {
        "code": d.code,
        "version": version,
        "title": d.title,
        "source": d.source,
        "effective_from": start,
        "effective_to": None,
        "factors": _builtins(d.factors),
        "caps": _builtins(d.caps),
    }
    if not await behaviours.publish_methodology(tx, m):
        raise MethodologyPublished(f"Version {version} of {d.code!r} exists already.")
    after = _draft(await repo.mark_published(tx, draft_id, version, start))
    await audit.record(
        tx,
        actor=actor,
        action="methodology.publish",
        target=f"{d.code}@{version}",
        before=d,
        after=after,
    )
    return Published(draft=after, code=d.code, version=version, effective_from=start)


# --- merchants, projects, enterprises ----------------------------------------------------------


async def approve_merchant(
    tx: Tx, cfg: RewardsConfig, registration: MerchantRegistration, *, actor: str
) -> RegisteredMerchant:
    """Approve a merchant into the programme: registered, its POINT account opened (a webhook
    secret answered once when it gave a webhook URL)."""
    done = await rewards.register_merchant(tx, cfg, registration)
    await audit.record(
        tx, actor=actor, action="merchant.approve", target=registration.id, after=done.merchant
    )
    return done


async def issue_merchant_key(
    tx: Tx, cfg: RewardsConfig, merchant_id: str, key_id: str, *, actor: str
) -> dict[str, str]:
    await rewards.get_merchant(tx.conn, merchant_id)
    secret = await rewards.issue_key(tx, cfg, merchant_id, key_id)
    await audit.record(
        tx,
        actor=actor,
        action="merchant.key.issue",
        target=f"{merchant_id}/{key_id}",
        after={"merchant_id": merchant_id, "key_id": key_id},
    )
    return {"merchant_id": merchant_id, "key_id": key_id, "secret": secret}


async def add_merchant_item(tx: Tx, spec: ItemSpec, *, actor: str) -> Item:
    """Add a catalogue item for a merchant (``tanpuhui merchant add-item``)."""
    done = await rewards.add_item(tx, spec)
    await audit.record(
        tx, actor=actor, action="merchant.item.add", target=spec.merchant_id, after=done
    )
    return done


async def import_merchant_codes(
    tx: Tx, cfg: RewardsConfig, item_id: str, raw: bytes, *, actor: str
) -> dict[str, Any]:
    """A coupon item's codes, all or none (``tanpuhui merchant import-codes``); the audit
    entry holds how many, never a code."""
    added = await rewards.import_codes(tx, cfg, item_id, raw)
    done = {"item_id": item_id, "codes_added": added}
    await audit.record(tx, actor=actor, action="merchant.codes.import", target=item_id, after=done)
    return done


async def approve_project(tx: Tx, p: ProjectInput, *, actor: str) -> Project:
    """Approve a public-welfare project: residents may donate to it during its period."""
    bad = [f for f, v in (("starts_at", p.starts_at), ("ends_at", p.ends_at)) if not plausible(v)]
    if bad:
        raise InvalidInput(
            "Project: a time refused.",
            code="validation_failed",
            errors=[_time_problem(f) for f in bad],
        )
    done = await projects.register(tx, p)
    await audit.record(tx, actor=actor, action="project.approve", target=done.id, after=done)
    return done


async def register_enterprise(tx: Tx, e: EnterpriseIn, *, actor: str) -> Registered:
    done = await enterprises.register(tx, e)
    if done.created:
        await audit.record(
            tx,
            actor=actor,
            action="enterprise.register",
            target=str(done.enterprise.id),
            after=done.enterprise,
        )
    return done


async def import_enterprises(tx: Tx, text: str, *, actor: str) -> Imported:
    """Register every enterprise of a CSV (enterprises.service.read_csv's columns), all or
    none."""
    try:
        done = await enterprises.import_csv(tx, text)
    except csv.Error as exc:  # a field over the csv module's limit, a NUL in the file
        raise InvalidInput(f"Not a usable CSV: {exc}", code="validation_failed") from None
    await audit.record(tx, actor=actor, action="enterprise.import", target="csv", after=done)
    return done
