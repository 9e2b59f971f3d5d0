"""Enterprises' energy and activity data in: sites, meters, meter readings pushed over the
signed meters API, monthly and annual reports, green-certificate claims, and the monthly
activity accounting reads (the contract is ``enterprises.activity``).

The functions others call (H5: accounting, H6: the enterprise API). Writers take a ``Tx`` (the
caller owns the transaction); readers take a connection or the pool. Every function scoped by
``enterprise_id`` only ever sees that enterprise's rows (another's site, meter or report is
``not found``, never shown):

    # sites and meters
    async def add_site(tx: Tx, enterprise_id: UUID, site: SiteIn) -> Site
    async def list_sites(conn, enterprise_id: UUID) -> list[Site]
    async def add_meter(tx: Tx, enterprise_id: UUID, meter: MeterIn) -> Meter
    async def list_meters(conn, enterprise_id: UUID, *, site_id: UUID | None = None) -> list[Meter]

    # meter readings (the signed meters API, /api/meters/v1/readings)
    def decode_readings(body: bytes) -> ReadingsBatch                # 400 validation_failed
    async def ingest_readings(tx: Tx, pusher: str, readings: Sequence[ReadingIn], *,
                              zone: ZoneInfo, now: datetime | None = None) -> ReadingsResult
    async def meter_months(conn, enterprise_id: UUID, *, start: date, end: date)
        -> list[MeterMonth]                  # per meter and month: summed, readings, flagged
    async def flagged_readings(conn, enterprise_id: UUID, *, meter_id: UUID | None = None,
                               limit: int = 100) -> list[FlaggedReading]

    # reports (monthly or annual), idempotent by content, a new content is a new version
    async def submit_report(tx: Tx, enterprise_id: UUID, report: ReportIn) -> ReportStatus
    async def report_status(conn, enterprise_id: UUID, report_id: UUID) -> ReportStatus
    async def list_reports(conn, enterprise_id: UUID, *, history: bool = False)
        -> list[ReportStatus]                # current versions (history: every version)

    # what accounting reads
    async def monthly_activity(conn, *, start: date, end: date,
                               enterprise_ids: Sequence[UUID] | None = None)
        -> list[ActivityRow]                 # months start <= month < end (first days)
    async def take_touched(tx: Tx, *, limit: int = 1000) -> list[Touched]

Shapes are in ``enterprises.energy_schemas``, errors in ``enterprises.energy_errors``.

Pushers (utilities and enterprises' gateways) are behaviours' operators (kind ``utility``),
signing with their operator keys (``behaviours.service.register_operator`` and
``add_signing_key``); a meter names the one operator allowed to push it.

Late data: every write that changes what ``monthly_activity`` answers for an (enterprise,
month) records that pair in ``activity_touched`` in the same transaction (readings accepted,
flags changed by a late reading, a report or a new version of it). Accounting drains them with
``take_touched`` (rows deleted and returned, ``SKIP LOCKED``, so two workers never take the
same pair) and recomputes those months; a pair touched again meanwhile is recorded again.

Precedence in ``monthly_activity`` per (enterprise, month, kind): a monthly report's line, else
an annual report's line spread evenly over its twelve months, else the meters' sum (flagged
readings excluded). See docs/enterprises.md, "Data in".
"""

from __future__ import annotations

import hashlib
import itertools
import math
import uuid
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final
from zoneinfo import ZoneInfo

import msgspec

from behaviours.service import operator_view
from enterprises import energy_repository as repo
from enterprises.activity import CANONICAL_UNITS, ActivityRow
from enterprises.energy_errors import (
    ActivityReportNotFound,
    GreenCertificateClaimed,
    MeterRefTaken,
    SiteNameTaken,
    SiteNotFound,
)
from enterprises.energy_schemas import (
    FlaggedReading,
    Meter,
    MeterIn,
    MeterMonth,
    ReadingIn,
    ReadingsBatch,
    ReadingsResult,
    ReadingVerdict,
    ReportIn,
    ReportLine,
    ReportStatus,
    Site,
    SiteIn,
    Touched,
)
from kit.db import Tx
from kit.errors import FieldError, InvalidInput

# --- units -------------------------------------------------------------------------------------
# Each kind's accepted units and their factor to the kind's canonical unit (CANONICAL_UNITS).
# Only conversions that need no property of the fuel: a volume of a liquid fuel (litres of
# diesel) or a mass of steam needs a density or an enthalpy, which the enterprise knows and we
# do not, so they are refused rather than guessed.
_ELECTRICITY = {"Wh": 1e-3, "kWh": 1.0, "MWh": 1e3, "GWh": 1e6, "万kWh": 1e4}
_GAS = {"m3": 1.0, "Nm3": 1.0, "万m3": 1e4, "10k_m3": 1e4}
_MASS = {"kg": 1e-3, "t": 1.0, "万t": 1e4, "10k_t": 1e4}
# kWh here is heat (kWh-heat, 3.6 MJ); Gcal the international-table calorie (4.1868 GJ).
_HEAT = {"MJ": 1e-3, "GJ": 1.0, "TJ": 1e3, "kWh": 3.6e-3, "MWh": 3.6, "Gcal": 4.1868}
_MONEY = {"CNY": 1e-4, "10k_CNY": 1.0, "万元": 1.0, "100M_CNY": 1e4, "亿元": 1e4}
UNITS: Final[dict[str, dict[str, float]]] = {
    "electricity": _ELECTRICITY,
    "onsite_renewable": _ELECTRICITY,
    "green_electricity": _ELECTRICITY,
    "natural_gas": _GAS,
    "coal": _MASS,
    "gasoline": _MASS,
    "diesel": _MASS,
    "fuel_oil": _MASS,
    "lpg": _MASS,
    "heat": _HEAT,
    "steam": _HEAT,
    "added_value": _MONEY,
    "tax": _MONEY,
}
# Product output is counted in the enterprise's own unit (tonnes of cement, pieces): any unit
# name is kept as given, the quantity unconverted ("unit" in CANONICAL_UNITS).

# A green-electricity certificate (绿证) stands for 1 MWh.
CERTIFICATE_KWH: Final = 1000.0


def unit_factor(kind: str, unit: str) -> float | None:
    """The factor from ``unit`` to ``kind``'s canonical unit, or None when ``unit`` is not one
    of the kind's (product output: 1.0 for any unit)."""
    if kind == "output":
        return 1.0
    return UNITS.get(kind, {}).get(unit)


def _units_problem(kind: str, unit: str) -> str:
    known = ", ".join(UNITS.get(kind, {}))
    return f"{unit!r} is not a unit of {kind} (one of: {known})."


def _refuse(errors: list[FieldError], what: str) -> InvalidInput:
    return InvalidInput(
        f"{what}: {len(errors)} field(s) refused.", code="validation_failed", errors=errors
    )


# --- sites and meters ------------------------------------------------------------------------


def _site(r: Any) -> Site:
    return Site(
        id=r["id"],
        enterprise_id=r["enterprise_id"],
        name=r["name"],
        address=r["address"],
        created_at=r["created_at"],
    )


def _meter(r: Any) -> Meter:
    return Meter(
        id=r["id"],
        enterprise_id=r["enterprise_id"],
        site_id=r["site_id"],
        ref=r["ref"],
        kind=r["kind"],
        unit=r["unit"],
        canonical_unit=CANONICAL_UNITS[r["kind"]],
        interval_s=r["interval_s"],
        register=r["register"],
        pusher=r["pusher"],
        spike_factor=r["spike_factor"],
        created_at=r["created_at"],
        equipment_class=r["equipment_class"],
    )


async def add_site(tx: Tx, enterprise_id: uuid.UUID, site: SiteIn) -> Site:
    """Add a site. The same name and address again is the same site; the same name with
    another address is ``site_name_taken``; an unknown enterprise ``enterprise_not_found``."""
    name = " ".join(site.name.split())
    address = " ".join(site.address.split())
    if not name:
        raise _refuse([FieldError(path="name", message="The name is empty.")], "Site")
    row = await repo.insert_site(tx.conn, enterprise_id, name, address)
    if row is None:
        row = await repo.site_by_name(tx.conn, enterprise_id, name)
        if row["address"] != address:
            raise SiteNameTaken(f"The enterprise has a site named {name!r} at another address.")
    return _site(row)


async def list_sites(conn: Any, enterprise_id: uuid.UUID) -> list[Site]:
    return [_site(r) for r in await repo.sites(conn, enterprise_id)]


async def add_meter(tx: Tx, enterprise_id: uuid.UUID, meter: MeterIn) -> Meter:
    """Add a meter to one of the enterprise's sites. Its unit must be one of its kind's
    (``UNITS``) and its pusher a registered operator (a utility or the enterprise's gateway:
    behaviours' operators, signing with their operator keys). The same meter again is the same
    meter; another meter under the pusher's reference is ``meter_ref_taken``."""
    errors: list[FieldError] = []
    factor = unit_factor(meter.kind, meter.unit)
    if factor is None:
        errors.append(FieldError(path="unit", message=_units_problem(meter.kind, meter.unit)))
    # Any operator but the residents' app, gateways included (they report no residents'
    # behaviour, so residents never see them: operators.scopes).
    pusher = await operator_view(tx.conn, meter.pusher)
    if pusher is None or pusher.kind == "app" or pusher.suspended_at is not None:
        errors.append(
            FieldError(path="pusher", message=f"{meter.pusher!r} is not a registered operator.")
        )
    if errors:
        raise _refuse(errors, "Meter")
    if not await repo.site_exists(tx.conn, enterprise_id, meter.site_id):
        raise SiteNotFound(f"The enterprise has no site {meter.site_id}.")
    assert factor is not None
    row = await repo.insert_meter(tx.conn, enterprise_id, meter, factor)
    if row is None:
        row = await repo.meter_by_ref(tx.conn, meter.pusher, meter.ref)
        same = _meter(row)
        if (
            same.enterprise_id != enterprise_id
            or (same.site_id, same.kind, same.unit, same.interval_s, same.register)
            != (meter.site_id, meter.kind, meter.unit, meter.interval_s, meter.register)
            or same.spike_factor != meter.spike_factor
            or same.equipment_class != meter.equipment_class
        ):
            raise MeterRefTaken(
                f"Pusher {meter.pusher!r} has another meter named {meter.ref!r}.",
                extra={"pusher": meter.pusher, "ref": meter.ref},
            )
        return same
    return _meter(row)


async def list_meters(
    conn: Any, enterprise_id: uuid.UUID, *, site_id: uuid.UUID | None = None
) -> list[Meter]:
    return [_meter(r) for r in await repo.meters(conn, enterprise_id, site_id)]


# --- meter readings ----------------------------------------------------------------------------

# A batch: at most this many readings and bytes (its arrays travel as statement arguments).
READINGS_MAX: Final = 5000
READINGS_MAX_BYTES: Final = 2 * 1024 * 1024
# A reading may be stamped at most this far ahead of the server's clock.
FUTURE_SKEW_S: Final = 300
# Readings stamped earlier are refused (and the instants with no UTC form).
EARLIEST: Final = datetime(2000, 1, 1, tzinfo=UTC)
# The largest value a reading may carry (canonical unit): beyond it, a typo, not a meter.
VALUE_MAX: Final = 1e15
# A meter's recent level is a moving average of its readings' quantities (exponential, over
# about LEVEL_READINGS of them: a day of 15-minute readings), kept on each reading so that the
# next one is derived from it alone. Spikes enter it clipped at spike_factor × the level, so one
# spike barely moves it while a lasting change of level stops being flagged within a few
# readings; a gap's quantity (several intervals) does not enter it. No spike is flagged before
# the level has seen LEVEL_MIN readings.
LEVEL_READINGS: Final = 96
LEVEL_MIN: Final = 8
LEVEL_ALPHA: Final = 2 / (LEVEL_READINGS + 1)
_LEVEL_N_CAP = 1_000_000
_SAME = 1e-9  # relative (and absolute) tolerance of "the same value" for a resend

_readings_decoder = msgspec.json.Decoder(ReadingsBatch)


def decode_readings(body: bytes) -> ReadingsBatch:
    """The meters' batch body, strictly decoded; anything else is ``validation_failed`` (400)
    naming the first field that breaks the schema (nothing of the batch is stored)."""
    try:
        return _readings_decoder.decode(body)
    except msgspec.ValidationError as exc:
        message, _, path = str(exc).partition(" - at `")
        raise _refuse(
            [FieldError(path=path.rstrip("`") or "$", message=message)], "Readings"
        ) from None
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise _refuse(
            [FieldError(path="$", message=f"Not valid JSON: {exc}")], "Readings"
        ) from None


class _Row:
    """One reading of a meter during derivation: stored before (``index`` -1) or arriving.
    ``ts`` is its instant in integer microseconds since the epoch: the derivation compares,
    sorts and subtracts integers, not aware datetimes (each of those calls ``utcoffset``)."""

    __slots__ = (
        "at",
        "base",
        "flag",
        "index",
        "level",
        "level_n",
        "month",
        "old",
        "quantity",
        "ts",
        "value",
    )

    def __init__(
        self,
        at: datetime,
        ts: int,
        value: float,
        month: date,
        index: int,
        quantity: float | None = None,
        flag: str | None = None,
        base: float = 0.0,
        level: float = 0.0,
        level_n: int = 0,
    ) -> None:
        self.at = at
        self.ts = ts
        self.value = value
        self.month = month
        self.index = index
        self.quantity = quantity
        self.flag = flag
        self.base = base
        self.level = level
        self.level_n = level_n
        self.old = None if index >= 0 else self.derived()

    def derived(self) -> tuple[float | None, str | None, float, float, int]:
        return (self.quantity, self.flag, self.base, self.level, self.level_n)


def _micros(at: datetime) -> int:
    """An aware instant in integer microseconds since the epoch (exact: below 2^53)."""
    return round(at.timestamp() * 1_000_000)


def _contribution(quantity: float | None, flag: str | None) -> float:
    return quantity if quantity is not None and flag is None else 0.0


def _derive(cumulative: bool, interval_s: int, spike: float, row: _Row, prev: _Row | None) -> None:
    """Set a reading's quantity, flag and the meter's state after it, from the reading before
    it alone: the register it counts from (the last one that did not go backwards), the
    previous instant, the recent level."""
    quantity: float | None
    flag = None
    if prev is None:
        quantity = None if cumulative else row.value  # a register's first reading starts it
        row.base, level, n = row.value, 0.0, 0
    else:
        level, n = prev.level, prev.level_n
        if cumulative and row.value < prev.base:
            quantity, flag, row.base = None, "backwards", prev.base
        else:
            quantity = row.value - prev.base if cumulative else row.value
            row.base = row.value
            if row.ts - prev.ts > interval_s * 1_000_000:
                flag = "gap"
            elif n >= LEVEL_MIN and level > 0 and quantity > spike * level:
                flag = "spike"
    if quantity is not None and flag != "gap":
        if n == 0 or level <= 0:
            level = quantity
        else:
            level += LEVEL_ALPHA * (min(quantity, spike * level) - level)
        n = min(n + 1, _LEVEL_N_CAP)
    row.quantity, row.flag, row.level, row.level_n = quantity, flag, level, n


def _instant(row: _Row) -> int:
    return row.ts


def _in_order(stored: list[_Row], fresh: list[_Row]) -> list[_Row]:
    """A meter's stored and arriving readings by instant. The usual case costs no sort: the
    readings arrive in order after the last stored one (the context is that one reading)."""
    if any(a.ts > b.ts for a, b in itertools.pairwise(fresh)):
        fresh.sort(key=_instant)
    if not stored or (len(stored) == 1 and stored[0].ts < fresh[0].ts):
        return stored + fresh
    return sorted(stored + fresh, key=_instant)


def local_month(at: datetime, zone: ZoneInfo) -> date:
    """The programme's calendar month of the interval that ends at ``at`` (a reading stamped at
    midnight on the 1st closes the previous month's last interval)."""
    local = (at - timedelta(seconds=1)).astimezone(zone)
    return date(local.year, local.month, 1)


_REASONS = {
    "backwards": (
        "reading_backwards",
        "The register is below an earlier reading; stored, not counted.",
    ),
    "gap": (
        "reading_gap",
        "Readings are missing before this one; stored, not counted until they arrive.",
    ),
    "spike": (
        "reading_spike",
        "The quantity exceeds the meter's spike factor times its recent level; stored, "
        "not counted.",
    ),
}


def _verdict(i: int, ref: str, row: _Row) -> ReadingVerdict:
    if row.flag is None:
        return ReadingVerdict(
            index=i, meter=ref, status="accepted", quantity=_contribution(row.quantity, None)
        )
    code, message = _REASONS[row.flag]
    return ReadingVerdict(index=i, meter=ref, status="flagged", reason_code=code, message=message)


def _rejected(i: int, ref: str, code: str, message: str) -> ReadingVerdict:
    return ReadingVerdict(index=i, meter=ref, status="rejected", reason_code=code, message=message)


def _summary(verdicts: list[ReadingVerdict]) -> ReadingsResult:
    counts = dict.fromkeys(("accepted", "flagged", "duplicate", "conflict", "rejected"), 0)
    for v in verdicts:
        counts[v.status] += 1
    return ReadingsResult(
        accepted=counts["accepted"],
        flagged=counts["flagged"],
        duplicates=counts["duplicate"],
        conflicts=counts["conflict"],
        rejected=counts["rejected"],
        results=verdicts,
    )


def _same(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=_SAME, abs_tol=_SAME)


async def ingest_readings(
    tx: Tx,
    pusher: str,
    readings: Sequence[ReadingIn],
    *,
    zone: ZoneInfo,
    now: datetime | None = None,
) -> ReadingsResult:
    """Store a pusher's batch of readings, one verdict each (in order).

    A reading names one of the pusher's meters, in one of its kind's units, stamped with the
    end of its interval. It is stored with the quantity it adds to its month, or flagged
    (stored, not summed) when its register went backwards, readings are missing before it, or
    its quantity exceeds the meter's spike factor times its recent level. The same meter,
    instant and value again is ``duplicate``; another value for a stored instant is
    ``conflict`` (the first is kept). A late reading re-derives the reading that follows it
    (which may lose its gap flag) and the monthly sums it changes.

    A constant number of statements whatever the batch's size: the meters locked, their
    neighbourhood of the batch read, then one statement writing the readings, the re-derived
    ones, the monthly sums and the touched months."""
    current = now or datetime.now(UTC)
    latest = current + timedelta(seconds=FUTURE_SKEW_S)
    verdicts: list[ReadingVerdict | None] = [None] * len(readings)
    meters = {
        m["ref"]: m
        for m in await repo.lock_meters(tx.conn, pusher, sorted({r.meter for r in readings}))
    }
    arriving: dict[uuid.UUID, list[tuple[int, datetime, int, float]]] = defaultdict(list)
    earliest_s, latest_s = EARLIEST.timestamp(), latest.timestamp()
    for i, r in enumerate(readings):
        m = meters.get(r.meter)
        if m is None:
            verdicts[i] = _rejected(
                i, r.meter, "meter_unknown", "No meter of that reference is pushed by you."
            )
            continue
        unit = r.unit
        factor = m["factor"] if unit is None or unit == m["unit"] else None
        if factor is None and unit is not None:
            factor = unit_factor(m["kind"], unit)
        if factor is None:
            verdicts[i] = _rejected(
                i, r.meter, "reading_unit_invalid", _units_problem(m["kind"], str(unit))
            )
            continue
        value = r.value * factor
        if not 0 <= value <= VALUE_MAX:  # NaN fails both comparisons, inf the second
            verdicts[i] = _rejected(
                i,
                r.meter,
                "reading_value_invalid",
                f"A reading is a finite quantity from 0 to {VALUE_MAX:g} "
                f"{CANONICAL_UNITS[m['kind']]}.",
            )
            continue
        at = r.at
        seconds = at.timestamp()  # any offset, no UTC form needed (9999-12-31T23:59-05:00)
        if not earliest_s < seconds <= latest_s:
            verdicts[i] = _rejected(
                i,
                r.meter,
                "reading_time_invalid",
                "The reading is stamped in the future."
                if seconds > latest_s
                else f"The reading is stamped before {EARLIEST.date()}.",
            )
            continue
        arriving[m["id"]].append((i, at, round(seconds * 1_000_000), value))
    if arriving:
        await _store(tx, meters, arriving, verdicts, readings, zone)
    return _summary([v for v in verdicts if v is not None])


async def _store(
    tx: Tx,
    meters: dict[str, Any],
    arriving: dict[uuid.UUID, list[tuple[int, datetime, int, float]]],
    verdicts: list[ReadingVerdict | None],
    readings: Sequence[ReadingIn],
    zone: ZoneInfo,
) -> None:
    by_id = {m["id"]: m for m in meters.values()}
    ids = sorted(arriving)
    context = await repo.reading_context(
        tx.conn,
        ids,
        [min(a[1] for a in arriving[k]) for k in ids],
        [max(a[1] for a in arriving[k]) for k in ids],
    )
    stored: dict[uuid.UUID, dict[int, _Row]] = defaultdict(dict)
    for c in context:
        at = c["read_at"]
        ts = _micros(at)
        stored[c["meter_id"]][ts] = _Row(
            at,
            ts,
            c["value"],
            c["month"],
            -1,
            c["quantity"],
            c["flag"],
            c["base"],
            c["level"],
            c["level_n"],
        )
    new: list[tuple[Any, ...]] = []  # the readings to COPY in, in _READING_COLUMNS' order
    add = new.append
    changed: tuple[list[Any], ...] = tuple([] for _ in range(7))
    monthly: dict[tuple[uuid.UUID, date], list[float]] = {}
    twins: list[tuple[int, _Row]] = []  # resends within the batch: answered once derived
    months: dict[int, date] = {}  # by 15-minute slot (every zone's month starts on one)
    for meter_id in ids:
        m = by_id[meter_id]
        ref = m["ref"]
        rows = stored[meter_id]
        fresh: dict[int, _Row] = {}
        for i, at, ts, value in arriving[meter_id]:
            seen = rows.get(ts) or fresh.get(ts)
            if seen is None:
                slot = (ts // 1_000_000 - 1) // 900
                month = months.get(slot)
                if month is None:
                    month = months[slot] = local_month(at, zone)
                fresh[ts] = _Row(at, ts, value, month, i)
            elif not _same(seen.value, value):
                verdicts[i] = ReadingVerdict(
                    index=i,
                    meter=ref,
                    status="conflict",
                    reason_code="reading_conflict",
                    message="Another value is stored for this meter and instant; it is kept.",
                )
            elif seen.index >= 0:
                twins.append((i, seen))
            else:
                verdicts[i] = ReadingVerdict(
                    index=i,
                    meter=ref,
                    status="duplicate",
                    quantity=_contribution(seen.quantity, seen.flag),
                )
        if not fresh:
            continue
        merged = _in_order([*rows.values()], [*fresh.values()])
        cumulative = m["register"] == "cumulative"
        interval_s, spike = m["interval_s"], m["spike_factor"]
        prev: _Row | None = None
        for row in merged:
            if row.index >= 0 or (prev is not None and prev.index >= 0):
                _derive(cumulative, interval_s, spike, row, prev)
            prev = row
        sums: dict[date, list[float]] = {}  # this meter's months: quantity, readings, flagged
        for row in merged:
            if row.index >= 0:
                add(
                    (
                        meter_id,
                        row.at,
                        row.value,
                        row.quantity,
                        row.flag,
                        row.month,
                        row.base,
                        row.level,
                        row.level_n,
                    )
                )
                delta = sums.get(row.month)
                if delta is None:
                    delta = sums[row.month] = [0.0, 0, 0]
                delta[1] += 1
                if row.flag is None:
                    quantity = row.quantity or 0.0
                    delta[0] += quantity
                    verdicts[row.index] = ReadingVerdict(
                        index=row.index, meter=ref, status="accepted", quantity=quantity
                    )
                else:
                    delta[2] += 1
                    verdicts[row.index] = _verdict(row.index, ref, row)
            elif row.old is not None and row.derived() != row.old:
                for column, v in zip(
                    changed,
                    (meter_id, row.at, row.quantity, row.flag, row.base, row.level, row.level_n),
                    strict=True,
                ):
                    column.append(v)
                old_quantity, old_flag = row.old[0], row.old[1]
                delta = sums.setdefault(row.month, [0.0, 0, 0])
                delta[0] += _contribution(row.quantity, row.flag) - _contribution(
                    old_quantity, old_flag
                )
                delta[2] += (row.flag is not None) - (old_flag is not None)
        for month, delta in sums.items():
            monthly[meter_id, month] = delta
    for i, twin in twins:
        verdicts[i] = ReadingVerdict(
            index=i,
            meter=readings[i].meter,
            status="duplicate",
            quantity=_contribution(twin.quantity, twin.flag),
        )
    keys = sorted(monthly)
    touched = sorted({(by_id[k[0]]["enterprise_id"], k[1]) for k in keys})
    await repo.write_readings(
        tx.conn,
        new,
        changed,
        (
            [k[0] for k in keys],
            [k[1] for k in keys],
            [by_id[k[0]]["enterprise_id"] for k in keys],
            [by_id[k[0]]["kind"] for k in keys],
            [monthly[k][0] for k in keys],
            [int(monthly[k][1]) for k in keys],
            [int(monthly[k][2]) for k in keys],
        ),
        ([t[0] for t in touched], [t[1] for t in touched]),
    )


async def meter_months(
    conn: Any, enterprise_id: uuid.UUID, *, start: date, end: date
) -> list[MeterMonth]:
    """The enterprise's meters' monthly sums (flagged readings excluded) and counts, months
    ``start`` <= month < ``end`` (first days)."""
    return [
        MeterMonth(
            meter_id=r["meter_id"],
            month=r["month"],
            kind=r["kind"],
            quantity=r["quantity"],
            unit=CANONICAL_UNITS[r["kind"]],
            readings=r["readings"],
            flagged=r["flagged"],
        )
        for r in await repo.meter_months(conn, enterprise_id, start, end)
    ]


async def flagged_readings(
    conn: Any, enterprise_id: uuid.UUID, *, meter_id: uuid.UUID | None = None, limit: int = 100
) -> list[FlaggedReading]:
    """The enterprise's latest flagged readings (newest first)."""
    return [
        FlaggedReading(meter_id=r["meter_id"], at=r["read_at"], value=r["value"], flag=r["flag"])
        for r in await repo.flagged_readings(conn, enterprise_id, meter_id, limit)
    ]


# --- reports -----------------------------------------------------------------------------------

REPORT_QUANTITY_MAX: Final = 1e15


def _month_after(d: date) -> date:
    return date(d.year + d.month // 12, d.month % 12 + 1, 1)


def _months(period: str, start: date) -> list[date]:
    out = [start]
    for _ in range(11 if period == "year" else 0):
        out.append(_month_after(out[-1]))
    return out


# The years a report may cover (as the carbon account report's periods, enterprises/report.py).
FIRST_REPORT_YEAR = 2000
LAST_REPORT_YEAR = 2100


def _report_lines(report: ReportIn) -> list[ReportLine]:
    """The report's lines converted to canonical units, or ``validation_failed`` naming every
    line that breaks a rule."""
    errors: list[FieldError] = []
    start = report.period_start
    if start.day != 1 or (report.period == "year" and start.month != 1):
        first = "the first day of a month" if report.period == "month" else "1 January"
        errors.append(
            FieldError(
                path="period_start", message=f"A {report.period}'s report starts on {first}."
            )
        )
    if not FIRST_REPORT_YEAR <= start.year <= LAST_REPORT_YEAR:
        errors.append(
            FieldError(
                path="period_start",
                message=f"A report's year is from {FIRST_REPORT_YEAR} to {LAST_REPORT_YEAR}.",
            )
        )
    out: list[ReportLine] = []
    seen: set[str] = set()
    serials: set[str] = set()
    for n, line in enumerate(report.lines):
        path = f"lines[{n}]"
        if line.kind in seen:
            errors.append(FieldError(path=f"{path}.kind", message=f"{line.kind} is listed twice."))
        seen.add(line.kind)
        factor = unit_factor(line.kind, line.unit)
        if factor is None:
            errors.append(
                FieldError(path=f"{path}.unit", message=_units_problem(line.kind, line.unit))
            )
            continue
        quantity = line.quantity * factor
        if not math.isfinite(quantity) or quantity > REPORT_QUANTITY_MAX:
            errors.append(FieldError(path=f"{path}.quantity", message="The quantity is too large."))
            continue
        if line.kind == "green_electricity":
            if not line.certificates:
                errors.append(
                    FieldError(
                        path=f"{path}.certificates",
                        message="Green electricity counts only with its certificate serials.",
                    )
                )
            elif quantity > len(line.certificates) * CERTIFICATE_KWH * (1 + _SAME):
                errors.append(
                    FieldError(
                        path=f"{path}.quantity",
                        message=(
                            f"{len(line.certificates)} certificate(s) cover at most "
                            f"{len(line.certificates) * CERTIFICATE_KWH:g} kWh."
                        ),
                    )
                )
            twice = sorted(
                {s for s in line.certificates if s in serials}
                | {s for s in line.certificates if line.certificates.count(s) > 1}
            )
            if twice:
                errors.append(
                    FieldError(
                        path=f"{path}.certificates",
                        message=f"Serials listed twice: {', '.join(twice)}.",
                    )
                )
            serials.update(line.certificates)
        elif line.certificates:
            errors.append(
                FieldError(
                    path=f"{path}.certificates",
                    message="Only green electricity carries certificate serials.",
                )
            )
        out.append(
            ReportLine(
                kind=line.kind,
                quantity=quantity,
                unit=CANONICAL_UNITS[line.kind] if line.kind != "output" else line.unit,
                given_quantity=line.quantity,
                given_unit=line.unit,
                certificates=sorted(line.certificates),
            )
        )
    if errors:
        raise _refuse(errors, "Report")
    return sorted(out, key=lambda x: x.kind)


def _content_hash(lines: list[ReportLine]) -> bytes:
    """What makes two submissions of one period the same: the lines as given."""
    canonical = [(x.kind, x.given_quantity, x.given_unit, x.certificates) for x in lines]
    return hashlib.sha256(msgspec.json.encode(canonical)).digest()


def _status(r: Any, lines: list[ReportLine], *, created: bool = False) -> ReportStatus:
    return ReportStatus(
        id=r["id"],
        enterprise_id=r["enterprise_id"],
        period=r["period"],
        period_start=r["period_start"],
        version=r["version"],
        status="current" if r["superseded_at"] is None else "superseded",
        submitted_at=r["submitted_at"],
        superseded_at=r["superseded_at"],
        lines=lines,
        created=created,
    )


def _line(r: Any) -> ReportLine:
    return ReportLine(
        kind=r["kind"],
        quantity=r["quantity"],
        unit=CANONICAL_UNITS[r["kind"]] if r["kind"] != "output" else r["given_unit"],
        given_quantity=r["given_quantity"],
        given_unit=r["given_unit"],
        certificates=list(r["certificates"]),
    )


async def submit_report(tx: Tx, enterprise_id: uuid.UUID, report: ReportIn) -> ReportStatus:
    """Submit an enterprise's monthly or annual report (its lines: energy kinds, purchased green
    electricity with its certificate serials, product output, added value, tax paid), converted
    to canonical units and validated (``validation_failed`` naming each line).

    The same content as the current version of that period is that version (``created``
    False); other content is the next version, superseding the previous one (kept, listed in
    ``list_reports(history=True)``). Its green-certificate serials are claimed in the whole
    region: a serial claimed by another enterprise, or by another period's report of this one,
    is ``green_certificate_claimed`` and nothing of the submission is kept; serials a new
    version no longer lists are released. The report's months are recorded as touched."""
    lines = _report_lines(report)
    digest = _content_hash(lines)
    current = await repo.lock_report_chain(
        tx.conn, enterprise_id, report.period, report.period_start
    )
    if current is not None and bytes(current["content_hash"]) == digest:
        rows = await repo.report_lines(tx.conn, [current["id"]])
        return _status(current, [_line(x) for x in rows])
    row = await repo.insert_report(
        tx.conn,
        enterprise_id,
        report.period,
        report.period_start,
        None if current is None else current["id"],
        1 if current is None else current["version"] + 1,
        digest,
        (
            [x.kind for x in lines],
            [x.quantity for x in lines],
            [x.given_quantity for x in lines],
            [x.given_unit for x in lines],
            [" ".join(x.certificates) for x in lines],
        ),
    )
    serials = [s for x in lines for s in x.certificates]
    if serials:
        held = await repo.claim_certificates(
            tx.conn, serials, enterprise_id, report.period, report.period_start, row["id"]
        )
        refused = sorted(set(serials) - held)
        if refused:
            raise GreenCertificateClaimed(
                f"Certificate serial(s) already claimed: {', '.join(refused)}.",
                extra={"serials": refused},
            )
    if current is not None:
        await repo.release_certificates(
            tx.conn, enterprise_id, report.period, report.period_start, row["id"]
        )
    months = _months(report.period, report.period_start)
    await repo.touch(tx.conn, [enterprise_id] * len(months), months)
    return _status(row, lines, created=True)


async def report_status(conn: Any, enterprise_id: uuid.UUID, report_id: uuid.UUID) -> ReportStatus:
    """One of the enterprise's reports (any version); another's is ``activity_report_not_found``."""
    row = await repo.report_by_id(conn, enterprise_id, report_id)
    if row is None:
        raise ActivityReportNotFound(f"The enterprise has no report {report_id}.")
    return _status(row, [_line(x) for x in await repo.report_lines(conn, [report_id])])


async def list_reports(
    conn: Any, enterprise_id: uuid.UUID, *, history: bool = False
) -> list[ReportStatus]:
    """The enterprise's current reports, newest period first (``history``: every version)."""
    rows = await repo.reports(conn, enterprise_id, history)
    lines: dict[uuid.UUID, list[ReportLine]] = defaultdict(list)
    for x in await repo.report_lines(conn, [r["id"] for r in rows]):
        lines[x["report_id"]].append(_line(x))
    return [_status(r, lines[r["id"]]) for r in rows]


# --- what accounting reads ---------------------------------------------------------------------


async def monthly_activity(
    conn: Any,
    *,
    start: date,
    end: date,
    enterprise_ids: Sequence[uuid.UUID] | None = None,
) -> list[ActivityRow]:
    """Every enterprise's (or those of ``enterprise_ids``) activity per month and kind, months
    ``start`` <= month < ``end`` (first days), in canonical units: a current monthly report's
    line, else a current annual report's line spread evenly over its twelve months, else the
    meters' sum (flagged readings excluded). One statement, ordered by enterprise, month, kind."""
    return [
        ActivityRow(
            enterprise_id=r["enterprise_id"],
            month=r["month"],
            kind=r["kind"],
            quantity=r["quantity"],
            source="meter" if r["rank"] == 3 else "report",
        )
        for r in await repo.monthly_activity(conn, start, end, enterprise_ids)
    ]


async def take_touched(tx: Tx, *, limit: int = 1000) -> list[Touched]:
    """Up to ``limit`` (enterprise, month) pairs whose activity changed, removed as they are
    taken (committed with the caller's transaction; ``SKIP LOCKED``: two takers never get the
    same pair). Oldest first."""
    return [
        Touched(enterprise_id=r["enterprise_id"], month=r["month"])
        for r in await repo.take_touched(tx.conn, limit)
    ]
