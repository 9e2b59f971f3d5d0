"""The ingestion pipeline: one batch, set-wise, inside the caller's transaction.

Database round trips per batch are constant whatever its size: reference token, links (which
also lock the residents' rows), usage, known records, overlapping trips, credited activities,
meter history (only when the batch has such events), the ledger's bulk issuance, the usage
upsert and the event COPY. The rules run in Python between them (see rules.py / quantify.py and
docs/behaviours.md).
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from behaviours import repository as repo
from behaviours.errors import ConcurrentIngest
from behaviours.events import CanonicalEvent, Source, Verdict
from behaviours.quantify import (
    Usage,
    apply_caps,
    decode_usage,
    encode_usage,
    household,
    quantify,
    whole_grams,
)
from behaviours.reference import Districts, Factor, Methodologies, Reference, TransitNetwork
from behaviours.rules import (
    REASON_TEXT,
    SCOPES,
    TRIP_KINDS,
    Claim,
    Item,
    Reason,
    attach_methodology,
    attribute_districts,
    cap_unverified,
    check_distance_speed,
    check_times,
    claim_rank,
    claim_span,
    content_digest,
    derive_transit,
    programme_day,
    resolve,
    trip_key,
)
from behaviours.settings import IngestSettings, source_tiers
from kit.db import Tx
from points.schemas import Issuance, PointsPolicy
from points.service import issue_reductions, lock_resident_accounts, reverse_issuances
from points.settings import PointsSettings
from residents import service as residents_service

APP_OPERATOR_ID = "resident-app"


class ReferenceCache:
    """This process's copy of the reference data, reloaded when the token in the database moves."""

    def __init__(self) -> None:
        self._ref: Reference | None = None

    async def get(self, conn: Any) -> Reference:
        token = await repo.reference_token(conn) or ""
        if self._ref is None or self._ref.token != token:
            self._ref = await _load_reference(conn, token)
        return self._ref


async def _load_reference(conn: Any, token: str) -> Reference:
    factors = [
        Factor(
            code=r["code"],
            version=r["version"],
            mode=r["mode"],
            behaviour=r["behaviour"],
            unit=r["unit"],
            factor_g=r["factor_g"],
            project_g_per_kwh=r["project_g_per_kwh"],
            min_distance_m=r["min_distance_m"],
            max_distance_m=r["max_distance_m"],
            max_speed_kmh=r["max_speed_kmh"],
            effective_from=r["effective_from"],
            effective_to=r["effective_to"],
            typical_trip_m=r["typical_trip_m"],
        )
        for r in await repo.load_factors(conn)
    ]
    caps = [tuple(r) for r in await repo.load_caps(conn)]
    districts = Districts([(r["code"], r["geometry"]) for r in await repo.load_districts(conn)])
    stops, shapes, trips, times = await repo.load_gtfs(conn)
    feeds = {r["feed"] for r in stops}
    networks = {
        feed: TransitNetwork.build(
            [(r["stop_id"], r["lat"], r["lon"]) for r in stops if r["feed"] == feed],
            [(r["shape_id"], r["geometry"]) for r in shapes if r["feed"] == feed],
            [(r["trip_id"], r["route_id"], r["shape_id"]) for r in trips if r["feed"] == feed],
            [
                (
                    r["trip_id"],
                    r["stop_sequence"],
                    r["stop_id"],
                    r["shape_dist_traveled"],
                    r["shape_dist_m"],
                )
                for r in times
                if r["feed"] == feed
            ],
        )
        for feed in feeds
    }
    operators = {r["id"]: r for r in await repo.list_all_operators(conn)}
    return Reference(
        token=token,
        methodologies=Methodologies(factors, caps),
        districts=districts,
        networks=networks,
        operators=operators,
    )


_default_cache: ReferenceCache | None = None


def default_cache() -> ReferenceCache:
    global _default_cache
    if _default_cache is None:
        _default_cache = ReferenceCache()
    return _default_cache


@dataclass(frozen=True)
class IngestPolicy:
    """What :func:`ingest` needs besides the batch, built once at start-up (the app's
    lifespan state, a worker process's first task), never per batch: ingestion's settings
    section, the programme's region (events placed in no district), the points policy, the
    programme's time zone (its days and years for the caps and the daily steps) and this
    process's reference cache."""

    settings: IngestSettings
    region_code: str
    points: PointsPolicy
    zone: ZoneInfo
    cache: ReferenceCache = field(default_factory=default_cache)
    trust: Mapping[str, int] = field(init=False)  # operator kind -> tier (source_ranking)

    def __post_init__(self) -> None:
        object.__setattr__(self, "trust", source_tiers(self.settings.source_ranking))

    @classmethod
    def build(
        cls,
        settings: IngestSettings,
        *,
        region_code: str,
        points: PointsSettings,
        timezone: str,
        cache: ReferenceCache | None = None,
    ) -> IngestPolicy:
        """``timezone``: the programme's IANA zone name (``TANPUHUI_TIMEZONE``)."""
        return cls(
            settings=settings,
            region_code=region_code,
            points=PointsPolicy.from_settings(points, timezone=timezone),
            zone=ZoneInfo(timezone),
            cache=cache or default_cache(),
        )


def _with_home(link: Any, home: residents_service.Home | None) -> dict[str, Any]:
    """A link with its resident's home district and whether the account was erased."""
    return {
        **dict(link),
        "district_code": home.district_code if home else None,
        "erased": home is None or home.erased,
    }


def _consent(items: list[Item], links: dict[str, Any]) -> dict[str, str | None]:
    homes: dict[str, str | None] = {}
    for it in items:
        link = links.get(it.event.subject)
        if link is None or link["erased"]:
            it.reject(Reason.UNKNOWN_SUBJECT)
            continue
        it.resident_id = link["resident_id"]
        homes[link["resident_id"]] = link["district_code"]
        if link["revoked_at"] is not None:
            it.reject(Reason.CONSENT_REVOKED)
        elif it.behaviour not in link["scope"] and "*" not in link["scope"]:
            it.reject(Reason.SCOPE_NOT_GRANTED)
        elif it.started_at < link["granted_at"]:
            it.reject(Reason.BEFORE_CONSENT)
    return homes


def _activity_key(it: Item, operator_id: str) -> str | None:
    if it.kind == "meter_reading":
        return f"meter:{operator_id}:{it.mode}:{it.account}:{it.started_at.isoformat()}"
    if it.kind == "ev_mileage":
        return f"nev:{operator_id}:{it.account}:{it.started_at.isoformat()}"
    return None


async def _double_counting(conn: Any, items: list[Item], operator_id: str, zone: ZoneInfo) -> None:
    """Already-credited activities (meters, vehicles, steps), in the database and in the batch.
    Overlapping trips are :func:`_resolve_trips`'s."""
    await _step_increments(conn, [it for it in items if it.ok and it.kind == "daily_steps"], zone)
    keyed = [it for it in items if it.ok and it.kind not in TRIP_KINDS and it.kind != "daily_steps"]
    for it in keyed:
        it.activity_key = _activity_key(it, operator_id)
    if keyed:
        known = await repo.existing_activities(conn, [it.activity_key or "" for it in keyed])
        for it in keyed:
            if it.activity_key in known:
                it.reject(Reason.ALREADY_CREDITED)
            elif it.activity_key:
                known.add(it.activity_key)


async def _step_increments(conn: Any, items: list[Item], zone: ZoneInfo) -> None:
    """Step counts are cumulative over the day: a report credits only the steps above the
    day's highest count already credited (any source), a count not above it changes nothing.

    Each credited report's ``activity_key`` names the count it builds on
    (``steps:<resident>:<day>:<base>``): the unique index on accepted keys lets one report
    build on a given count at most once, so two racing reports cannot both credit the same
    steps. The reductions telescope (floor(f x new) - floor(f x base)): the day's grams are
    those of its highest count, before caps."""
    if not items:
        return
    credited = await repo.steps_credited(
        conn, [it.resident_id or "" for it in items], [it.started_at for it in items]
    )
    for it in items:  # in batch order: each report builds on the one before it
        key = (it.resident_id or "", it.started_at)
        base = credited.get(key, 0)
        steps = int(it.quantity or 0)
        if steps <= base:
            it.reject(
                Reason.STEPS_NOT_INCREASED,
                f"{steps} steps is not above the {base} steps already credited for "
                f"{programme_day(it.started_at, zone).isoformat()}.",
            )
            continue
        f = it.factor
        assert f is not None
        it.reduction_g = whole_grams(f.factor_g * steps) - whole_grams(f.factor_g * base)
        if it.reduction_g <= 0:
            it.reject(Reason.NO_REDUCTION, f"The {steps - base} new steps avoid less than a gram.")
            continue
        day = programme_day(it.started_at, zone).isoformat()
        it.activity_key = f"steps:{it.resident_id}:{day}:{base}"
        credited[key] = steps


SUPERSEDED_KEYS = "superseded"  # the ledger's idempotency keys of displacement reversals


def credit_ref(event_id: str, credit_seq: int | None) -> str:
    """The ledger source reference of an event's credit number ``credit_seq`` (migration
    0026): the event id for its first credit (0 or None), ``<id>/<n>`` when credited again."""
    return f"{event_id}/{credit_seq}" if credit_seq else event_id


@dataclass
class Resolution:
    """What :func:`_resolve_trips` decided about stored claims: the credits it displaced (already
    reversed in the ledger), the stored claims it credits again (``reinstated``: Items the caps
    and the ledger handle with the batch's own), and the residents whose usage it released."""

    displaced: list[repo.StoredChange] = field(default_factory=list)
    reinstated: list[Item] = field(default_factory=list)
    rows: dict[str, Any] = field(default_factory=dict)  # reinstated: the stored row by event id
    released: set[str] = field(default_factory=set)

    def credit_seq(self, it: Item) -> int:
        row = self.rows.get(it.event_id)
        if row is None:
            return 0
        # A superseded claim was credited (and reversed) before: this is a new credit.
        return (row["credit_seq"] or 0) + (1 if row["status"] == "superseded" else 0)

    def credit_ref(self, it: Item) -> str:
        return credit_ref(it.event_id, self.credit_seq(it))

    async def store(self, conn: Any, now: datetime) -> None:
        """The stored claims' new verdicts: displacements first (they leave the exclusion
        constraint), then the reinstated claims (credited, or refused by the caps)."""
        again = [
            repo.StoredChange(
                id=it.event_id,
                was=self.rows[it.event_id]["status"],
                status="accepted" if it.ok else "rejected",
                reason_code=it.reason,
                reason_message=it.message,
                reduction_g=it.reduction_g if it.ok else 0,
                points=it.points if it.ok else 0,
                trip_key=it.trip_key if it.ok else None,
                credit_seq=(self.credit_seq(it) or None)
                if it.ok
                else self.rows[it.event_id]["credit_seq"],
                superseded_by=None,
            )
            for it in self.reinstated
        ]
        for changes in (self.displaced, again):
            if await repo.change_stored(conn, changes, now) != len(changes):
                raise ConcurrentIngest(
                    "A stored trip changed under a concurrent batch; nothing was kept, send "
                    "the batch again."
                )


def _release_usage(usage: dict[str, Usage], row: Any, zone: ZoneInfo) -> None:
    """Give back the caps' room a displaced credit used (its grams, and one activity of its
    day), so the credit that replaces it is capped as if the displaced one never counted."""
    u = usage.setdefault(row["resident_id"], Usage())
    day = programme_day(row["started_at"], zone)
    beh, grams = row["behaviour"], int(row["reduction_g"])
    yearly = u.y.get(str(day.year))
    if yearly is not None and beh in yearly:
        yearly[beh] = max(0, yearly[beh] - grams)
    daily = u.d.get(day.isoformat(), {}).get(beh)
    if daily is not None:
        daily[0], daily[1] = max(0, daily[0] - grams), max(0, daily[1] - 1)


async def _resolve_trips(
    tx: Tx,
    fresh: list[Item],
    operator_id: str,
    ref: Reference,
    policy: IngestPolicy,
    usage: dict[str, Usage],
    now: datetime,
) -> Resolution:
    """Overlapping trips, resolved by one rule whatever the order they came in
    (:func:`behaviours.rules.resolve` over the batch's trips and the stored claims connected to
    them; docs/behaviours.md, "Overlapping claims"). Runs under the residents' locks.

    The batch's losing trips are refused (``overlapping_activity`` when the holder is the same
    kind of trip, ``claim_outranked`` otherwise); stored credits that lose are reversed in one
    ledger call and become ``superseded``; stored claims that now win are credited again with the
    batch. A resident whose displaced points were already spent keeps the stored credits (the
    ledger refuses to reverse them); the trips that would have displaced them are refused
    ``displacement_points_spent``."""
    out = Resolution()
    trips = [it for it in fresh if it.ok and it.kind in TRIP_KINDS and it.resident_id]
    if not trips:
        return out
    conn = tx.conn
    stored = await repo.trip_claims(
        conn,
        [it.resident_id or "" for it in trips],
        [it.started_at for it in trips],
        [max(it.ended_at, it.started_at + timedelta(seconds=1)) for it in trips],
    )
    last = len(set(policy.trust.values()))  # an unlisted kind: below every listed tier

    def tier(op: str) -> int:
        operator = ref.operators.get(op)
        return policy.trust.get(operator["kind"], last) if operator is not None else last

    own = tier(operator_id)
    claims: dict[str, Claim] = {}
    for it in trips:
        it.claim_g = it.reduction_g
        start, end = claim_span(it.started_at, it.ended_at)
        claims[it.event_id] = Claim(
            it.event_id, it.resident_id or "", start, end, own, it.reduction_g, it.digest,
            operator_id, it.event.record_id, it.mode,
        )  # fmt: skip
    for r in stored:
        start, end = claim_span(r["started_at"], r["ended_at"])
        claims[r["id"]] = Claim(
            r["id"], r["resident_id"], start, end, tier(r["operator_id"]), int(r["claim_g"]),
            r["content_digest"] or b"", r["operator_id"], r["record_id"], r["mode"],
        )  # fmt: skip
    outcome = resolve(claims.values())
    displaced = [r for r in stored if r["status"] == "accepted" and outcome[r["id"]] is not None]
    pinned: frozenset[str] = frozenset()
    if displaced:
        # Two ledger calls in this transaction (these reversals, then the batch's issuance):
        # every account either will lock, taken in the one global order (docs/ledger.md, "Locks").
        await lock_resident_accounts(
            tx, sorted({it.resident_id for it in fresh if it.ok and it.resident_id})
        )
        refused = await reverse_issuances(
            tx,
            [credit_ref(r["id"], r["credit_seq"]) for r in displaced],
            policy.points,
            reason_code=str(Reason.SUPERSEDED_BY_SOURCE),
            key_prefix=SUPERSEDED_KEYS,
            now=now,
        )
        if refused:
            blocked = {
                r["resident_id"]
                for r in displaced
                if credit_ref(r["id"], r["credit_seq"]) in refused
            }
            pinned = frozenset(
                r["id"] for r in stored if r["status"] == "accepted" and r["resident_id"] in blocked
            )
            outcome.update(resolve((c for c in claims.values() if c.resident in blocked), pinned))
            displaced = [r for r in displaced if r["resident_id"] not in blocked]
    for it in trips:
        holder_ref = outcome[it.event_id]
        if holder_ref is None:
            continue
        holder, mine = claims[holder_ref], claims[it.event_id]
        if holder_ref in pinned and claim_rank(mine) < claim_rank(holder):
            it.reject(Reason.DISPLACEMENT_POINTS_SPENT)
        elif holder.mode == mine.mode:
            it.reject(Reason.OVERLAPPING_ACTIVITY)
        else:
            it.reject(Reason.CLAIM_OUTRANKED)
    for r in displaced:
        _release_usage(usage, r, policy.zone)
        out.released.add(r["resident_id"])
        out.displaced.append(
            repo.StoredChange(
                id=r["id"],
                was="accepted",
                status="superseded",
                reason_code=str(Reason.SUPERSEDED_BY_SOURCE),
                reason_message=REASON_TEXT[Reason.SUPERSEDED_BY_SOURCE],
                reduction_g=0,
                points=0,
                trip_key=None,
                credit_seq=r["credit_seq"],
                superseded_by=outcome[r["id"]],
            )
        )
    for r in stored:
        if r["status"] == "accepted" or outcome[r["id"]] is not None:
            continue
        factor = ref.methodologies.factor(r["mode"], r["started_at"])
        if factor is None:  # no methodology covers it any more: it stays as it is
            continue
        out.reinstated.append(Item.stored(r, factor, int(r["claim_g"])))
        out.rows[r["id"]] = r
    return out


async def ingest(
    tx: Tx,
    source: Source,
    events: Sequence[CanonicalEvent],
    *,
    policy: IngestPolicy,
    now: datetime | None = None,
    prejudged: Mapping[str, tuple[str, str]] | None = None,
) -> list[Verdict]:
    """The one pipeline for operators and the residents' app (``Source(APP_OPERATOR_ID,
    resident_id=...)``): verify, quantify, store and credit ``events`` from ``source``; one
    verdict per event, in order. Accepted events are credited through the ledger in this same
    transaction.

    ``prejudged`` (record_id -> (reason_code, message)): events the caller already judged
    (e.g. the mobile API's GPS-track checks). They take the normal path (stored, duplicates
    answered as duplicate) but are rejected with that code and message, never credited."""
    conn = tx.conn
    await repo.plan_for_this_batch(conn)
    now = now or datetime.now(UTC)
    ingest_settings = policy.settings
    region_code = policy.region_code
    ref = await policy.cache.get(conn)
    operator = ref.operators.get(source.operator_id)
    feed = operator["gtfs_feed"] if operator is not None else None

    items: list[Item] = []
    first_of: dict[str, Item] = {}
    repeats: dict[int, Item] = {}
    reused: set[int] = set()  # positions of a record id repeated with other content
    for pos, ev in enumerate(events):
        it = Item(pos, ev, policy.zone)
        it.digest = content_digest(ev)
        if ev.record_id in first_of:
            repeats[pos] = first_of[ev.record_id]
            if it.digest != first_of[ev.record_id].digest:
                reused.add(pos)
        else:
            first_of[ev.record_id] = it
            items.append(it)
            if prejudged and ev.record_id in prejudged:
                code, message = prejudged[ev.record_id]
                it.reject(code, message)

    # What the operator is registered to report (operators.scopes): anything else is refused
    # before anyone's consent is looked at, and kept without its content.
    allowed = frozenset(operator["scopes"] if operator is not None else SCOPES)
    for it in items:
        if it.behaviour not in allowed:
            it.reject(Reason.SCOPE_NOT_ALLOWED)

    # Who: links (one query) or the resident's own app.
    if source.resident_id is not None:
        own = await residents_service.lock_homes(conn, [source.resident_id])
        home = own.get(source.resident_id)
        homes = {source.resident_id: home.district_code if home else None}
        for it in items:
            it.resident_id = source.resident_id
            if home is None or home.erased:
                it.reject(Reason.UNKNOWN_SUBJECT)
    else:
        subjects = list({it.event.subject for it in items})
        found = await repo.resolve_subjects(conn, source.operator_id, subjects)
        # The residents' lock (id order) and home districts, one statement for the batch.
        locked = await residents_service.lock_homes(conn, [r["resident_id"] for r in found])
        links = {r["subject_ref"]: _with_home(r, locked.get(r["resident_id"])) for r in found}
        homes = _consent(items, links)

    check_times(items, now, ingest_settings.future_skew_s, ingest_settings.claim_window_days)
    attach_methodology(items, ref)
    derive_transit(items, ref, feed, ingest_settings.distance_tolerance)
    check_distance_speed(items)
    cap_unverified(items)
    attribute_districts(items, ref, homes)
    for it in items:
        if it.ok and it.kind != "meter_reading":
            quantify(it)

    # From here on, per resident, one batch at a time: the residents' rows were locked (id
    # order) when their links were read; every later statement sees what an earlier batch
    # for the same people committed.
    residents = sorted({it.resident_id for it in items if it.resident_id})
    stored_usage = await repo.read_usage(conn, residents)
    known = {
        r["record_id"]: r
        for r in await repo.existing_records(conn, source.operator_id, list(first_of))
    }
    fresh = [it for it in items if it.event.record_id not in known]
    for it in items:
        row = known.get(it.event.record_id)
        if row is not None and row["content_digest"] not in (None, it.digest):
            reused.add(it.pos)
    await _double_counting(conn, fresh, source.operator_id, policy.zone)

    meters = [it for it in fresh if it.ok and it.kind == "meter_reading"]
    if meters:
        since = min(it.started_at for it in meters) - timedelta(days=2 * 366 + 31)
        until = max(it.started_at for it in meters) - timedelta(days=300)
        history = await repo.meter_history(
            conn,
            source.operator_id,
            [it.mode for it in meters],
            [it.account or "" for it in meters],
            since,
            until,
        )
        household(meters, history, ingest_settings)

    ids = _event_ids(len(fresh), now)
    for it, event_id in zip(fresh, ids, strict=True):
        it.event_id = event_id
        if it.district is None:
            it.district = region_code
    usage: dict[str, Usage] = {r: decode_usage(stored_usage.get(r)) for r in residents}
    resolution = await _resolve_trips(tx, fresh, source.operator_id, ref, policy, usage, now)
    changed = apply_caps(
        [it for it in fresh if it.ok] + resolution.reinstated, ref, usage, policy.zone
    )
    changed |= resolution.released

    # Credit, then store (the stored rows carry the points the ledger gave).
    accepted = [it for it in fresh if it.ok]
    credited = accepted + [it for it in resolution.reinstated if it.ok]
    if credited:
        results = await issue_reductions(
            tx,
            [
                Issuance(
                    resident_id=it.resident_id or "",
                    reduction_g=it.reduction_g,
                    source_ref=resolution.credit_ref(it),
                    region_code=it.district or region_code,
                    occurred_at=it.started_at,
                )
                for it in credited
            ],
            policy.points,
        )
        points = {r.source_ref: r.points for r in results}
        for it in credited:
            it.points = points.get(resolution.credit_ref(it), 0)
    # Usage once per resident (its sequence number keys the trips), then the events.
    seqs: dict[str, int] = {}
    if changed:
        today = programme_day(now, policy.zone)
        ids = sorted(changed)
        seqs = await repo.save_usage(
            conn,
            ids,
            [encode_usage(usage[r], today, ingest_settings.claim_window_days) for r in ids],
        )
    for it in credited:
        if it.ok and it.kind in TRIP_KINDS:
            it.trip_key = trip_key(seqs[it.resident_id or ""], it.started_at, it.ended_at)
    await resolution.store(conn, now)  # before the new rows: displaced credits leave first
    inserted = await repo.insert_events(conn, _rows(fresh, source.operator_id, now))
    raced: set[str] = set()
    for it in fresh if inserted is not None else ():  # None: every row went in
        if inserted is not None and it.event_id not in inserted:
            if it.ok:
                raise ConcurrentIngest(
                    f"Record {it.event.record_id!r} collided with a concurrent batch; "
                    "nothing was kept, send the batch again."
                )
            raced.add(it.event.record_id)
    return _verdicts(len(events), items, repeats, known, raced, reused)


def _verdict(it: Item) -> Verdict:
    # The methodology and version as the event's row stores them (_rows), as "code@version":
    # none for a record kept only as its verdict.
    f = None if it.without_consent else it.factor
    version = f"{f.code}@{f.version}" if f else None
    if it.ok:
        return Verdict(
            record_id=it.event.record_id,
            status="accepted",
            event_id=it.event_id,
            reduction_g=it.reduction_g,
            points=it.points,
            message=it.message,  # a note on the credited distance (clipped, capped), if any
            methodology_version=version,
        )
    return Verdict(
        record_id=it.event.record_id,
        status="rejected",
        event_id=it.event_id,
        reason_code=str(it.reason),
        message=it.message,
        methodology_version=version,
    )


def _verdicts(
    n: int,
    items: list[Item],
    repeats: dict[int, Item],
    known: dict[str, Any],
    raced: set[str],
    reused: set[int],
) -> list[Verdict]:
    out: list[Verdict | None] = [None] * n
    for it in items:
        rid = it.event.record_id
        row = known.get(rid)
        if it.pos in reused:
            out[it.pos] = _reused(rid)
        elif row is not None:
            out[it.pos] = Verdict(
                record_id=rid,
                status="duplicate",
                event_id=row["id"],
                reduction_g=row["reduction_g"],
                points=row["points"],
                reason_code=row["reason_code"],
                message=row["reason_message"],
                methodology_version=row["methodology_version"],
            )
        elif rid in raced:
            out[it.pos] = Verdict(record_id=rid, status="duplicate")
        else:
            out[it.pos] = _verdict(it)
    for pos, first in repeats.items():
        v = out[first.pos]
        assert v is not None
        if pos in reused:
            out[pos] = _reused(first.event.record_id)
            continue
        out[pos] = Verdict(
            record_id=v.record_id,
            status="duplicate",
            event_id=v.event_id,
            reduction_g=v.reduction_g,
            points=v.points,
            reason_code=v.reason_code,
            message=v.message,
            methodology_version=v.methodology_version,
        )
    return [v for v in out if v is not None]


def _reused(record_id: str) -> Verdict:
    return Verdict(
        record_id=record_id,
        status="rejected",
        reason_code=str(Reason.RECORD_ID_REUSED),
        message=REASON_TEXT[Reason.RECORD_ID_REUSED],
    )


def _event_ids(n: int, now: datetime) -> list[str]:
    """Time-ordered UUIDs (version 7 layout: 48-bit Unix milliseconds, then random bits and
    the position in the batch): the primary key index grows at its right edge instead of
    taking random page writes all over a large index."""
    ms = int(now.timestamp() * 1000) & 0xFFFF_FFFF_FFFF
    rand = secrets.randbits(62 - 20)  # the low 20 bits number the batch's events
    base = (ms << 80) | (0x7 << 76) | (secrets.randbits(12) << 64) | (0b10 << 62) | (rand << 20)
    out = []
    for i in range(n):
        h = f"{base + i:032x}"
        out.append(f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}")
    return out


def _rows(items: list[Item], operator_id: str, now: datetime) -> list[tuple[Any, ...]]:
    """Rows in ``repo.EVENT_COLUMNS`` order. A record that came without the resident's consent
    is kept only as its verdict: operator, record id, reason, received time (migration 0022)."""
    out = []
    for it in items:
        ok = it.reason is None
        if it.without_consent:
            out.append(_minimal_row(it, operator_id, now))
            continue
        f = it.factor
        out.append(
            (
                it.event_id,
                operator_id,
                it.event.record_id,
                it.event.subject,
                it.resident_id,
                it.kind,
                it.mode,
                it.behaviour,
                it.started_at,
                it.ended_at if it.ended_at > it.started_at else it.started_at,
                now,
                "accepted" if ok else "rejected",
                None if ok else it.reason,
                it.message,  # accepted: the distance note, if any (rules.derive_transit)
                it.distance_m,
                it.distance_source,
                it.quantity,
                it.account,
                it.district,
                f.code if f else None,
                f.version if f else None,
                f.factor_g if f else None,
                it.reduction_g if ok else 0,
                it.points if ok else 0,
                it.trip_key if ok else None,
                it.activity_key if ok else None,
                it.digest,
                it.claim_g,
            )
        )
    return out


def _minimal_row(it: Item, operator_id: str, now: datetime) -> tuple[Any, ...]:
    values: dict[str, Any] = dict.fromkeys(repo.EVENT_COLUMNS)
    values.update(
        id=it.event_id,
        operator_id=operator_id,
        record_id=it.event.record_id,
        received_at=now,
        status="rejected",
        reason_code=it.reason,
        reason_message=it.message,
        reduction_g=0,
        points=0,
    )
    return tuple(values.values())
