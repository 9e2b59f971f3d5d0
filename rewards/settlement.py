"""Merchants' settlement statements: per period (dates in the programme's time zone, the end
exclusive), the rewards confirmed and refunded, in points. Each line is one ledger transfer
(its id given): a confirmation is the hold's posting to the merchant, a refund its reversal,
so the statement reconciles to the merchant's ledger account to the point."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime, time
from typing import Any

from kit.errors import FieldError
from rewards import repository as repo
from rewards.errors import StatementPeriodInvalid
from rewards.schemas import Statement, StatementLine
from rewards.settings import RewardsConfig

MAX_DAYS = 366


def _bounds(cfg: RewardsConfig, start: str, end: str) -> tuple[datetime, datetime]:
    try:
        first, last = date.fromisoformat(start), date.fromisoformat(end)
    except ValueError:
        raise StatementPeriodInvalid(
            "Dates are YYYY-MM-DD.",
            errors=[FieldError("start/end", "expected YYYY-MM-DD dates")],
        ) from None
    if not first < last or (last - first).days > MAX_DAYS:
        raise StatementPeriodInvalid(
            f"The period must end after it starts and span at most {MAX_DAYS} days."
        )
    zone = cfg.zone
    return datetime.combine(first, time(), zone), datetime.combine(last, time(), zone)


async def statement(
    conn: Any, cfg: RewardsConfig, merchant_id: str, start: str, end: str
) -> Statement:
    lo, hi = _bounds(cfg, start, end)
    rows = await repo.settlement_lines(conn, merchant_id, lo, hi)
    lines = [
        StatementLine(
            reward_id=r["reward_id"],
            item_id=r["item_id"],
            title=r["title"],
            event=r["event"],
            points=r["points"],
            at=r["at"],
            transfer_id=str(r["transfer_id"]),
        )
        for r in rows
    ]
    confirmed = [x for x in lines if x.event == "confirmed"]
    refunded = [x for x in lines if x.event == "refunded"]
    return Statement(
        merchant_id=merchant_id,
        start=start,
        end=end,
        confirmed_count=len(confirmed),
        confirmed_points=sum(x.points for x in confirmed),
        refunded_count=len(refunded),
        refunded_points=-sum(x.points for x in refunded),
        net_points=sum(x.points for x in lines),
        lines=lines,
    )


CSV_COLUMNS = ("reward_id", "item_id", "title", "event", "points", "at", "transfer_id")


def statement_csv(s: Statement) -> bytes:
    """The statement as CSV: one row per line, then a ``total`` row of the net points."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for x in s.lines:
        writer.writerow(
            (
                x.reward_id,
                x.item_id,
                _safe(x.title),
                x.event,
                x.points,
                x.at.isoformat(),
                x.transfer_id,
            )
        )
    writer.writerow(("total", "", "", "", s.net_points, "", ""))
    return out.getvalue().encode()


def _safe(text: str) -> str:
    """A cell a spreadsheet will not run as a formula."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
