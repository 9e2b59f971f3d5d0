"""Employee commuting programmes (issue 13, item 3; docs/commuting.md).

- An enterprise creates a programme: a name, a bonus rule (the data file's documented default,
  ``commuting.json``, or its own values), employee codes it hands out (stored hashed with the
  programme's id) and/or an invitation link's token (random, shown once, stored as SHA-256).
- A resident joins with an employee code or the invitation token, accepting the current
  consent text (its version is recorded, with every join and leave, in an append-only log),
  and leaves at any time. A resident is an active member of one programme at a time.
- The enterprise reads only totals of its *current* members' commuting trips (trips started at
  or after each one's joining): whoever left is in no total read after leaving. Suppression
  below the minimum group size is applied by ``reporting.commuting`` with the government
  reports' disclosure rule.
- Bonus points: :func:`pay_bonuses` (the Celery task ``enterprises.commuting_bonuses``) pays
  floor((multiplier - 1) x points) for each member's commuting trip received since the last
  run, by ledger POINT transfers from the enterprise's own POINT account (never issued), one
  per programme and trip (idempotency key ``commuting-bonus:<programme>:<event>``, and the
  ``commuting_bonuses`` primary key). An account that cannot pay the whole run pays nothing and
  the run records why. The account is funded by :func:`fund` (a government administrator's
  audited act, ``reporting.commuting.fund_enterprise``): points the enterprise bought
  off-system, from the flagged issuance-like account ``system:enterprise_points_sales``.

Residents' trips are read through behaviours' published reads (``behaviours.repository``'s
``commuting_totals`` and ``commuting_trips``: set-wise over the members, no loop per resident).
"""

from __future__ import annotations

import hashlib
import json
import secrets
import uuid
from datetime import UTC, date, datetime, time, timedelta
from fractions import Fraction
from functools import lru_cache
from pathlib import Path
from typing import Any, Final

import msgspec

from behaviours import repository as behaviours
from enterprises import commuting_repository as repo
from enterprises.commuting_errors import (
    CodeInvalid,
    ConsentRequired,
    ProgrammeNotFound,
)
from enterprises.commuting_schemas import (
    BonusRun,
    CodesAdded,
    CommutingConsent,
    CommutingJoin,
    CommutingMembership,
    FundingAccount,
    Invitation,
    Programme,
    ProgrammeCreated,
    ProgrammeIn,
    Rule,
    RuleIn,
    Window,
)
from kit.db import Tx
from kit.errors import FieldError, InvalidInput
from points import service as ledger
from points.schemas import (
    FLAG_ISSUANCE,
    AccountKey,
    Owner,
    PointsPolicy,
    Transfer,
    TransferRequest,
    utcnow,
)

DATA_FILE: Final = Path(__file__).with_name("commuting.json")
# Where enterprises' points come from: bought off-system (a government administrator records
# each purchase), so the account is flagged issuance-like: it may go negative by all sold.
POINTS_SALES: Final = Owner("system", "enterprise_points_sales")
BONUS_KIND: Final = "commuting_bonus"
FUNDING_KIND: Final = "enterprise_points_purchase"


class CommutingData(msgspec.Struct, frozen=True, kw_only=True):
    default_rule: Rule
    allowed_modes: tuple[str, ...]
    consent_version: str
    consent_text: dict[str, str]


@lru_cache(maxsize=1)
def data() -> CommutingData:
    """The data file (``commuting.json``): the default rule, the modes a rule may name, the
    consent text."""
    raw = json.loads(DATA_FILE.read_text(encoding="utf-8"))
    d = raw["default_rule"]
    consent = raw["consent"]
    return CommutingData(
        default_rule=Rule(
            multiplier=d["multiplier"],
            modes=list(d["modes"]),
            windows=[Window(start=a, end=b) for a, b in d["windows"]],
            weekdays=list(d["weekdays"]),
        ),
        allowed_modes=tuple(raw["allowed_modes"]),
        consent_version=consent["version"],
        consent_text={k: v for k, v in consent.items() if k != "version"},
    )


def funding_owner(enterprise_id: uuid.UUID | str) -> Owner:
    return Owner("enterprise", str(enterprise_id))


def funding_key(enterprise_id: uuid.UUID | str) -> AccountKey:
    return AccountKey("enterprise", str(enterprise_id), "POINT")


def _sha(text: str) -> bytes:
    return hashlib.sha256(text.encode()).digest()


def code_hash(programme_id: uuid.UUID, code: str) -> bytes:
    """An employee code as stored: hashed with its programme (the same code of two programmes
    is two hashes)."""
    return _sha(f"commuting:{programme_id}:{code}")


def _clock(value: str) -> time:
    return time.fromisoformat(value)


def resolve_rule(given: RuleIn | None) -> Rule:
    """The rule in force: the enterprise's values, the default for any left out; refused
    (``validation_failed``) when a mode is not a commuting mode, a window ends before it
    starts, or a weekday is repeated."""
    d = data()
    r = given or RuleIn()
    rule = Rule(
        multiplier=r.multiplier if r.multiplier is not None else d.default_rule.multiplier,
        modes=sorted(set(r.modes)) if r.modes is not None else list(d.default_rule.modes),
        windows=list(r.windows) if r.windows is not None else list(d.default_rule.windows),
        weekdays=sorted(r.weekdays) if r.weekdays is not None else list(d.default_rule.weekdays),
    )
    problems: list[FieldError] = []
    unknown = sorted(set(rule.modes) - set(d.allowed_modes))
    if unknown:
        problems.append(
            FieldError(
                "$.rule.modes",
                f"not a commuting mode: {', '.join(unknown)} (one of {', '.join(d.allowed_modes)})",
            )
        )
    for i, w in enumerate(rule.windows):
        if _clock(w.start) >= _clock(w.end):
            problems.append(FieldError(f"$.rule.windows[{i}]", "start must be before end"))
    if len(set(rule.weekdays)) != len(rule.weekdays):
        problems.append(FieldError("$.rule.weekdays", "a weekday is given twice"))
    if problems:
        raise InvalidInput(
            "The bonus rule is not valid.", code="validation_failed", errors=problems
        )
    return rule


def bonus_of(points: int, multiplier: str) -> int:
    """floor((multiplier - 1) x points): x 1.2 pays 0.2 x the trip's points, rounded down."""
    return int((Fraction(multiplier) - 1) * points)


def _rule(raw: Any) -> Rule:
    return msgspec.convert(raw, Rule)


def _programme(row: Any, available: int) -> Programme:
    return Programme(
        id=row["id"],
        enterprise_id=row["enterprise_id"],
        name=row["name"],
        rule=_rule(row["rule"]),
        funding_account=FundingAccount(
            owner_type="enterprise", owner_id=str(row["enterprise_id"]), asset="POINT"
        ),
        funding_available_points=available,
        employee_codes=int(row["codes"]),
        invitation=bool(row["invitation"]),
        consent_version=data().consent_version,
        created_at=row["created_at"],
    )


async def available_points(conn: Any, enterprise_id: uuid.UUID) -> int:
    for b in await ledger.balances(conn, "enterprise", str(enterprise_id)):
        if b.asset == "POINT":
            return b.available
    return 0


async def create_programme(
    tx: Tx, enterprise_id: uuid.UUID, p: ProgrammeIn, *, created_by: uuid.UUID
) -> ProgrammeCreated:
    """A new programme, its employee codes, and (``p.invitation``) an invitation token shown in
    this answer only. The enterprise's POINT account (the bonuses' source) is opened."""
    rule = resolve_rule(p.rule)
    programme_id = uuid.uuid4()
    token = secrets.token_urlsafe(32) if p.invitation else None
    await repo.insert_programme(
        tx.conn,
        programme_id=programme_id,
        enterprise_id=enterprise_id,
        name=p.name.strip(),
        rule=msgspec.to_builtins(rule),
        invitation_hash=_sha(token) if token else None,
        created_by=created_by,
    )
    await repo.add_codes(
        tx.conn, programme_id, sorted({code_hash(programme_id, c) for c in p.employee_codes})
    )
    await ledger.open_accounts(tx.conn, [funding_key(enterprise_id)])
    view = await programme(tx.conn, enterprise_id, programme_id)
    return ProgrammeCreated(**msgspec.structs.asdict(view), invitation_token=token)


async def programme(conn: Any, enterprise_id: uuid.UUID, programme_id: uuid.UUID) -> Programme:
    row = await repo.programme(conn, enterprise_id, programme_id)
    if row is None:
        raise ProgrammeNotFound("The enterprise has no such commuting programme.")
    return _programme(row, await available_points(conn, enterprise_id))


async def programmes(conn: Any, enterprise_id: uuid.UUID) -> list[Programme]:
    available = await available_points(conn, enterprise_id)
    return [_programme(r, available) for r in await repo.programmes(conn, enterprise_id)]


async def add_codes(
    tx: Tx, enterprise_id: uuid.UUID, programme_id: uuid.UUID, codes: list[str]
) -> CodesAdded:
    await programme(tx.conn, enterprise_id, programme_id)
    hashes = sorted({code_hash(programme_id, c) for c in codes})
    added = await repo.add_codes(tx.conn, programme_id, hashes)
    return CodesAdded(added=added, unchanged=len(hashes) - added)


async def new_invitation(tx: Tx, enterprise_id: uuid.UUID, programme_id: uuid.UUID) -> Invitation:
    """A new invitation token (the previous link stops working at once)."""
    await programme(tx.conn, enterprise_id, programme_id)
    token = secrets.token_urlsafe(32)
    await repo.set_invitation(tx.conn, programme_id, _sha(token))
    return Invitation(invitation_token=token)


# --- the resident's side ---------------------------------------------------------------------


def consent(lang: str) -> CommutingConsent:
    d = data()
    text = d.consent_text.get(lang) or d.consent_text["zh-CN"]
    return CommutingConsent(version=d.consent_version, language=lang, text=text)


def _membership(row: Any) -> CommutingMembership:
    return CommutingMembership(
        programme_id=row["programme_id"],
        programme_name=row["programme_name"],
        enterprise_name=row["enterprise_name"],
        active=row["left_at"] is None,
        joined_at=row["joined_at"],
        left_at=row["left_at"],
        via=row["via"],
        consent_version=row["consent_version"],
    )


async def join(
    tx: Tx, resident_id: str, j: CommutingJoin, *, now: datetime | None = None
) -> CommutingMembership:
    """Join with an employee code (and the programme's id) or an invitation token, consenting
    to the current consent text. Joining a programme one is an active member of again answers
    the membership unchanged (idempotent)."""
    now = now or utcnow()
    conn = tx.conn
    by_code = j.employee_code is not None
    if by_code == (j.invitation_token is not None) or (by_code and j.programme_id is None):
        raise InvalidInput(
            "Send either employee_code with programme_id, or invitation_token.",
            code="validation_failed",
            errors=[FieldError("$", "employee_code and programme_id, or invitation_token")],
        )
    current = data().consent_version
    if j.consent_version != current:
        raise ConsentRequired(
            "Accept the current consent text to join.", extra={"consent_version": current}
        )
    await repo.lock_resident(conn, resident_id)
    if j.invitation_token is not None:
        row = await repo.programme_by_invitation(conn, _sha(j.invitation_token))
        if row is None:
            raise CodeInvalid("The invitation link is not valid (any more).")
        programme_id, via = row["id"], "invitation"
    else:
        assert j.programme_id is not None and j.employee_code is not None
        programme_id, via = j.programme_id, "employee_code"
    current_member = await repo.membership(conn, programme_id, resident_id)
    if current_member is not None and current_member["left_at"] is None:
        return _membership(current_member)  # already in: unchanged, no code used up
    if j.employee_code is not None:
        found = await repo.programme_by_id(conn, programme_id)
        ok = found is not None and await repo.claim_code(
            conn, programme_id, code_hash(programme_id, j.employee_code), resident_id, now
        )
        if not ok:
            raise CodeInvalid("The programme has no such unused employee code.")
    if await repo.join(conn, programme_id, resident_id, via=via, consent_version=current, at=now):
        await repo.log_consent(conn, programme_id, resident_id, "join", current, now)
    m = await repo.membership(conn, programme_id, resident_id)
    return _membership(m)


async def leave(
    tx: Tx, resident_id: str, programme_id: uuid.UUID, *, now: datetime | None = None
) -> CommutingMembership:
    """Leave at once (consent withdrawn): no later aggregate counts the resident, no later run
    pays a bonus. Leaving again answers the ended membership unchanged."""
    now = now or utcnow()
    await repo.lock_resident(tx.conn, resident_id)
    if await repo.leave(tx.conn, programme_id, resident_id, now):
        await repo.log_consent(tx.conn, programme_id, resident_id, "leave", None, now)
    m = await repo.membership(tx.conn, programme_id, resident_id)
    if m is None:
        raise ProgrammeNotFound("You are not a member of this commuting programme.")
    return _membership(m)


async def memberships(conn: Any, resident_id: str) -> list[CommutingMembership]:
    return [_membership(r) for r in await repo.memberships(conn, resident_id)]


# --- what the enterprise reads: raw totals (reporting.commuting protects them) --------------


class Totals(msgspec.Struct, frozen=True, kw_only=True):
    """The current members' commuting totals by (month, mode), margins keyed ``*``, each with
    its distinct residents: input of the disclosure rule, never answered as is."""

    members: int
    cells: dict[tuple[str, str], tuple[int, int, int, int, int]]  # residents, trips, m, g, pts


def _filter(members: list[Any], rule: Rule, zone: str) -> behaviours.CommutingFilter:
    return behaviours.CommutingFilter(
        resident_ids=[m["resident_id"] for m in members],
        since=[m["joined_at"] for m in members],
        zone=zone,
        modes=rule.modes,
        weekdays=rule.weekdays,
        windows=[(_clock(w.start), _clock(w.end)) for w in rule.windows],
    )


def month_start(month: date, zone: str) -> datetime:
    from zoneinfo import ZoneInfo

    return datetime(month.year, month.month, 1, tzinfo=ZoneInfo(zone)).astimezone(UTC)


def next_month(month: date) -> date:
    return date(month.year + month.month // 12, month.month % 12 + 1, 1)


async def totals(
    conn: Any,
    enterprise_id: uuid.UUID,
    programme_id: uuid.UUID,
    *,
    start_month: date,
    end_month: date,
    zone: str,
) -> Totals:
    """Totals of [start_month, end_month] (both included) of the members current at this read,
    in one repeatable-read snapshot (members and trips of the same instant)."""
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        row = await repo.programme(conn, enterprise_id, programme_id)
        if row is None:
            raise ProgrammeNotFound("The enterprise has no such commuting programme.")
        members = await repo.active_members(conn, programme_id)
        cells: dict[tuple[str, str], tuple[int, int, int, int, int]] = {}
        if members:
            for r in await behaviours.commuting_totals(
                conn,
                _filter(members, _rule(row["rule"]), zone),
                month_start(start_month, zone),
                month_start(next_month(end_month), zone),
            ):
                key = (
                    "*" if r["all_months"] else r["month"],
                    "*" if r["all_modes"] else r["mode"],
                )
                cells[key] = (
                    int(r["people"]),
                    int(r["trips"]),
                    int(r["distance_m"]),
                    int(r["reduction_g"]),
                    int(r["points"]),
                )
    return Totals(members=len(members), cells=cells)


# --- bonus points ----------------------------------------------------------------------------


def bonus_key(programme_id: uuid.UUID, event_id: uuid.UUID) -> str:
    return f"commuting-bonus:{programme_id}:{event_id}"


def _run(row: Any) -> BonusRun:
    return BonusRun(
        id=row["id"],
        ran_at=row["ran_at"],
        status=row["status"],
        trips=row["trips"],
        points=row["points"],
        available=row["available"],
        reason=row["reason"],
    )


async def pay_bonuses(
    tx: Tx,
    policy: PointsPolicy,
    programme_id: uuid.UUID,
    *,
    region_code: str,
    overlap: timedelta,
    now: datetime | None = None,
) -> BonusRun | None:
    """One bonus run of a programme, set-wise, in the caller's transaction: the current
    members' commuting trips received since the last run (less ``overlap``, for trips whose
    ingestion committed late; a trip already paid is skipped), each paid its bonus by a ledger
    transfer from the enterprise's POINT account to the resident's. All or nothing: when the
    account's available points cannot pay the whole run, nothing is paid, the run is recorded
    ``underfunded`` with what it needed, and the same trips are tried again at the next run.
    None: nothing to pay (no run recorded)."""
    now = now or utcnow()
    conn = tx.conn
    p = await repo.lock_programme(conn, programme_id)
    if p is None:
        raise ProgrammeNotFound("No such commuting programme.")
    rule = _rule(p["rule"])
    since = (p["bonus_watermark"] or p["created_at"]) - overlap
    members = await repo.active_members(conn, programme_id)
    trips = (
        await behaviours.commuting_trips(conn, _filter(members, rule, policy.timezone), since, now)
        if members
        else []
    )
    paid = await repo.paid_events(conn, programme_id, [t["event_id"] for t in trips])
    due = [
        (t["event_id"], t["resident_id"], bonus_of(int(t["points"]), rule.multiplier))
        for t in trips
        if t["event_id"] not in paid
    ]
    due = [d for d in due if d[2] > 0]
    enterprise = funding_owner(p["enterprise_id"])
    if not due:
        await repo.set_watermark(conn, programme_id, now)
        return None
    needed = sum(d[2] for d in due)
    available = (await ledger.lock_available(tx, [enterprise])).get(enterprise, 0)
    if needed > available:
        latest = await repo.runs(conn, programme_id, 1)
        last = latest[0] if latest else None
        if (
            last is not None
            and last["status"] == "underfunded"
            and (last["trips"], last["points"], last["available"]) == (len(due), needed, available)
        ):
            return _run(last)  # the same shortfall as the last run: recorded once
        run_id = await repo.insert_run(
            conn,
            programme_id,
            ran_at=now,
            status="underfunded",
            trips=len(due),
            points=needed,
            available=available,
            reason=f"the enterprise's POINT account has {available} available points; "
            f"the run needs {needed}",
        )
        return _run(await _run_row(conn, programme_id, run_id))
    transfers = await ledger.transfer(
        tx,
        [
            TransferRequest(
                idempotency_key=bonus_key(programme_id, event_id),
                debit=enterprise,
                credit=Owner("resident", resident_id),
                asset="POINT",
                amount=points,
                kind=BONUS_KIND,
                reason_code="commuting_bonus",
                region_code=region_code,
                occurred_at=now,
                source_ref=f"commuting:{programme_id}:event:{event_id}",
            )
            for event_id, resident_id, points in due
        ],
        policy,
        now=now,
    )
    run_id = await repo.insert_run(
        conn,
        programme_id,
        ran_at=now,
        status="paid",
        trips=len(due),
        points=needed,
        available=available,
        reason=None,
    )
    await repo.insert_bonuses(
        conn,
        programme_id,
        run_id,
        [(e, r, pts, int(t.id)) for (e, r, pts), t in zip(due, transfers, strict=True)],
    )
    await repo.set_watermark(conn, programme_id, now)
    return _run(await _run_row(conn, programme_id, run_id))


async def _run_row(conn: Any, programme_id: uuid.UUID, run_id: int) -> Any:
    for r in await repo.runs(conn, programme_id, 1):
        if r["id"] == run_id:
            return r
    raise RuntimeError("the run just recorded is not the latest")  # pragma: no cover


async def programme_ids(conn: Any) -> list[uuid.UUID]:
    return await repo.programme_ids(conn)


async def bonus_runs(
    conn: Any,
    enterprise_id: uuid.UUID,
    programme_id: uuid.UUID,
    *,
    limit: int,
    min_group: int = 1,
) -> list[BonusRun]:
    """The programme's runs, newest first; with fewer than ``min_group`` current members their
    trips and points are not shown (the status, the available points and why are)."""
    await programme(conn, enterprise_id, programme_id)
    runs = [_run(r) for r in await repo.runs(conn, programme_id, limit)]
    if runs and len(await repo.active_members(conn, programme_id)) < min_group:
        runs = [msgspec.structs.replace(r, trips=None, points=None) for r in runs]
    return runs


# --- funding (a government administrator's act: reporting.commuting.fund_enterprise) --------


async def open_sales_account(conn: Any) -> None:
    await ledger.open_accounts(
        conn, [AccountKey("system", POINTS_SALES.owner_id, "POINT")], flags=FLAG_ISSUANCE
    )


async def fund(
    tx: Tx,
    policy: PointsPolicy,
    enterprise_id: uuid.UUID,
    *,
    points: int,
    reference: str,
    request_key: str,
    region_code: str,
    now: datetime | None = None,
) -> Transfer:
    """Credit ``points`` the enterprise bought off-system (``reference``: the purchase's own
    reference, e.g. an invoice number) to its POINT account, from ``system:
    enterprise_points_sales``. Idempotent by ``request_key``."""
    now = now or utcnow()
    from enterprises.users import enterprise_profile

    await enterprise_profile(tx.conn, enterprise_id)  # EnterpriseNotFound when none
    await open_sales_account(tx.conn)
    [t] = await ledger.transfer(
        tx,
        [
            TransferRequest(
                idempotency_key=f"enterprise-points:{request_key}",
                debit=POINTS_SALES,
                credit=funding_owner(enterprise_id),
                asset="POINT",
                amount=points,
                kind=FUNDING_KIND,
                reason_code="points_bought",
                region_code=region_code,
                occurred_at=now,
                source_ref=f"purchase:{reference}",
            )
        ],
        policy,
        now=now,
    )
    return t
