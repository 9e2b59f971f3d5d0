"""The programme's liability view: what it owes residents in points, period by period.

Points have no monetary status, but a programme that promised rewards for them carries them as
a liability to budget (Korea's 2025 budget ran out: shared/domain/rewards.md). Per period of the
programme's calendar (month, quarter or year in ``TANPUHUI_TIMEZONE``):

- ``issued``: points credited for verified reductions; ``clawed_back``: issuance reversed;
- ``redeemed``: points posted to merchants (confirmed rewards), ``refunded``: those reversed
  back to residents; ``expired``: lapsed lots; ``donated``: points given to projects;
- ``outstanding``: residents' posted points at the period's end (what could still be spent),
  and ``on_hold`` of them reserved by unconfirmed rewards at the period's end;
- grams: ``grams_issued`` (verified) and ``grams_retired`` (given to projects for good);
- ``points_per_kg``: points issued per kilogram of CO2e issued (both net of clawbacks), the
  programme's cost of a kilogram in points (None for a period that issued no grams).

Derived from one set-wise read of the ledger (``points.reads.flows_by_period``: every transfer
grouped by period and shape), so the figures reconcile to the ledger by construction; the end
figures are running sums over every period since the first, which the tests hold equal to the
residents' balances (tests/rewards/test_liability.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from typing import Any, Literal

import msgspec

from points import reads
from points.schemas import utcnow

Unit = Literal["month", "quarter", "year"]


class Period(msgspec.Struct, kw_only=True):
    period: date  # its first day, in the programme's calendar
    issued: int = 0
    clawed_back: int = 0
    redeemed: int = 0
    refunded: int = 0
    expired: int = 0
    donated: int = 0
    other_in: int = 0  # any other posted credit to residents' points
    other_out: int = 0  # any other posted debit of residents' points
    outstanding: int = 0  # residents' posted points at the end of the period
    on_hold: int = 0  # of which reserved by holds at the end of the period
    grams_issued: int = 0
    grams_retired: int = 0
    points_per_kg: float | None = None


class Liability(msgspec.Struct, kw_only=True):
    unit: Unit
    timezone: str
    until: datetime
    periods: list[Period]
    outstanding: int  # at ``until``
    on_hold: int
    points_per_kg: float | None  # over every period


def _per_kg(points: int, grams: int) -> float | None:
    return round(points * 1000 / grams, 3) if grams else None


def _book(p: Period, f: reads.Flow) -> tuple[int, int]:
    """Add one flow to its period; returns its change to (outstanding, on hold)."""
    posted = f.phase in ("posted", "post_pending")
    to_resident = f.credit_type == "resident"
    from_resident = f.debit_type == "resident"
    if f.asset == "CO2E_G":
        if posted and to_resident and f.debit_system == "issuance" and not f.reversal:
            p.grams_issued += f.amount
        elif posted and from_resident and f.credit_system == "donations":
            p.grams_retired += f.amount
        elif posted and from_resident and f.credit_system == "issuance":
            p.grams_issued -= f.amount  # a clawback of verified grams
        return 0, 0
    hold = 0
    if from_resident and f.phase == "pending":
        hold = f.amount
    elif from_resident and f.phase in ("post_pending", "void_pending"):
        hold = -f.released
    if not posted or not (to_resident or from_resident):
        return 0, hold
    if to_resident:
        if f.debit_system == "issuance" and not f.reversal:
            p.issued += f.amount
        elif f.debit_type == "merchant":
            p.refunded += f.amount
        else:
            p.other_in += f.amount
        return f.amount, hold
    if f.credit_system == "issuance":
        p.clawed_back += f.amount
    elif f.credit_type == "merchant":
        p.redeemed += f.amount
    elif f.credit_system == "expiry":
        p.expired += f.amount
    elif f.credit_system == "donations":
        p.donated += f.amount
    else:
        p.other_out += f.amount
    return -f.amount, hold


def build(flows: Iterable[reads.Flow], *, unit: Unit, timezone: str, until: datetime) -> Liability:
    periods: dict[date, Period] = {}
    outstanding = on_hold = 0
    for f in flows:  # oldest period first
        p = periods.get(f.period)
        if p is None:
            p = periods[f.period] = Period(period=f.period, outstanding=outstanding)
        d_out, d_hold = _book(p, f)
        outstanding += d_out
        on_hold += d_hold
        p.outstanding, p.on_hold = outstanding, on_hold
    out = sorted(periods.values(), key=lambda p: p.period)
    for p in out:
        p.points_per_kg = _per_kg(p.issued - p.clawed_back, p.grams_issued)
    return Liability(
        unit=unit,
        timezone=timezone,
        until=until,
        periods=out,
        outstanding=outstanding,
        on_hold=on_hold,
        points_per_kg=_per_kg(
            sum(p.issued - p.clawed_back for p in out), sum(p.grams_issued for p in out)
        ),
    )


async def liability(
    conn: Any, *, unit: Unit = "month", timezone: str, until: datetime | None = None
) -> Liability:
    """The liability view up to ``until`` (default now): one read of the ledger."""
    until = until or utcnow()
    flows = await reads.flows_by_period(conn, unit=unit, timezone=timezone, until=until)
    return build(flows, unit=unit, timezone=timezone, until=until)


def table(view: Liability) -> str:
    """The view as a plain-text table (the `tanpuhui liability` command's output)."""
    fields = (
        "issued", "clawed_back", "redeemed", "refunded", "expired", "donated",
        "outstanding", "on_hold", "grams_issued", "grams_retired",
    )  # fmt: skip
    rows: list[tuple[str, ...]] = [("period", *fields, "points_per_kg")]
    for p in view.periods:
        per_kg = "-" if p.points_per_kg is None else f"{p.points_per_kg:.3f}"
        rows.append((p.period.isoformat(), *(str(getattr(p, f)) for f in fields), per_kg))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    lines.append(
        f"outstanding {view.outstanding} points ({view.on_hold} on hold) at "
        f"{view.until.isoformat()}; points per kg CO2e: "
        + ("-" if view.points_per_kg is None else f"{view.points_per_kg:.3f}")
    )
    return "\n".join(lines) + "\n"
