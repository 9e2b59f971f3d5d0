"""Reconciliation: the rollups against their sources, to the gram, with every difference named.

Two checks, both set-wise:

1. **Cells**: for the days (and their months) of the range, the owner's cube is read again
   (``behaviours.reads.travel_cube``) and compared with every stored row of
   ``reporting_travel``: trips, participants, grams and points, cell by cell; a row missing on
   either side is a difference.
2. **Ledger**: the verified grams and points of every day rolled up (the day grain's grand
   totals, all time) against the ledger's net issuance to residents (``points.reads``: credits
   from issuance minus their clawbacks), so a rollup cannot drift from what the ledger holds.
   This check covers the days the rollup holds: days never refreshed show as a difference.

Each run is stored in ``reporting_reconciliations`` (append-only for the application role) and
logged; a difference is a finding, never corrected silently (``tanpuhui reporting refresh``
rewrites the periods).
"""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
from msgspec import Struct

from behaviours import reads as behaviour_reads
from kit.db import Tx
from points import reads as ledger_reads
from reporting import repository as repo
from reporting.rollups import ALL, instant, next_period, periods
from rewards import liability

log = logging.getLogger("tanpuhui.reporting")

_MEASURES = ("trips", "participants", "grams", "points")


class Difference(Struct, frozen=True, kw_only=True):
    check: str  # "cell" or "ledger"
    grain: str | None = None
    period: date | None = None
    cell: str | None = None  # "<district>/<mode>/<methodology>"
    measure: str
    rollup: int | None  # None: no row
    source: int | None


class Reconciliation(Struct, frozen=True, kw_only=True):
    id: int
    checked_at: datetime
    first_day: date
    last_day: date
    ok: bool
    differences: list[Difference]


async def _cells(tx: Tx, grain: str, first: date, last: date, timezone: str) -> list[Difference]:
    zone = ZoneInfo(timezone)
    ps = periods(grain, first, last)
    source = await behaviour_reads.travel_cube(
        tx.conn,
        unit=grain,  # type: ignore[arg-type]
        since=instant(ps[0], zone),
        until=instant(next_period(grain, ps[-1]), zone),
        timezone=timezone,
    )
    want = {(c.period, c.district or ALL, c.mode or ALL, c.methodology or ALL): c for c in source}
    have = {
        (r["period"], r["district"], r["mode"], r["methodology"]): r
        for r in await repo.travel_cells(tx.conn, grain, ps[0], ps[-1])
    }
    out = []
    for key in sorted(set(want) | set(have), key=repr):
        w, h = want.get(key), have.get(key)
        for m in _MEASURES:
            a = None if h is None else int(h[m])
            b = None if w is None else int(getattr(w, m))
            if a != b:
                out.append(
                    Difference(
                        check="cell",
                        grain=grain,
                        period=key[0],
                        cell="/".join(key[1:]),
                        measure=m,
                        rollup=a,
                        source=b,
                    )
                )
    return out


async def _ledger(tx: Tx, timezone: str, now: datetime) -> list[Difference]:
    flows = await ledger_reads.flows_by_period(tx.conn, unit="year", timezone=timezone, until=now)
    view = liability.build(flows, unit="year", timezone=timezone, until=now)
    ledger_grams = sum(p.grams_issued for p in view.periods)
    ledger_points = sum(p.issued - p.clawed_back for p in view.periods)
    days = await repo.travel_day_totals(tx.conn, date(1, 1, 1), date(9999, 12, 31))
    rolled_grams = sum(g for g, _, _ in days.values())
    rolled_points = sum(p for _, p, _ in days.values())
    out = []
    if rolled_grams != ledger_grams:
        out.append(
            Difference(check="ledger", measure="grams", rollup=rolled_grams, source=ledger_grams)
        )
    if rolled_points != ledger_points:
        out.append(
            Difference(check="ledger", measure="points", rollup=rolled_points, source=ledger_points)
        )
    return out


async def reconcile(
    tx: Tx, first: date, last: date, *, timezone: str, now: datetime | None = None
) -> Reconciliation:
    """Check [first, last] cell by cell (day and month grains) and the whole ledger; store and
    return the run."""
    now = now or datetime.now(UTC)
    found = [
        *await _cells(tx, "day", first, last, timezone),
        *await _cells(tx, "month", first, last, timezone),
        *await _ledger(tx, timezone, now),
    ]
    ok = not found
    run_id = await repo.insert_reconciliation(tx.conn, first, last, ok, found)
    if not ok:
        log.warning(
            "reporting reconciliation found differences",
            extra={"differences": len(found), "first_day": str(first), "last_day": str(last)},
        )
    return Reconciliation(
        id=run_id, checked_at=now, first_day=first, last_day=last, ok=ok, differences=found
    )


def window(last: date, days: int) -> tuple[date, date]:
    return last - timedelta(days=days - 1), last


async def last_reconciliation(conn: Any) -> Reconciliation | None:
    r = await repo.last_reconciliation(conn)
    if r is None:
        return None
    raw = r["differences"]
    return Reconciliation(
        id=r["id"],
        checked_at=r["checked_at"],
        first_day=r["first_day"],
        last_day=r["last_day"],
        ok=r["ok"],
        differences=msgspec.json.decode(
            raw if isinstance(raw, str | bytes) else msgspec.json.encode(raw),
            type=list[Difference],
        ),
    )
