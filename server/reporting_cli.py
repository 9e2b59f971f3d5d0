"""`tanpuhui reporting ...`: refresh the government reports' rollups over a range of days and
reconcile them with the ledger (the periodic jobs' work, on demand: after a change to old days,
a change of the disclosure settings, or to backfill). Prints what it did as JSON."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable
from datetime import date, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import msgspec

from kit.db import Tx, connect, transaction_on
from reporting import reconcile, rollups
from server.settings import Settings


async def _in_tx(url: str, work: Callable[[Tx], Awaitable[Any]]) -> Any:
    conn = await connect(url)
    try:
        async with transaction_on(conn) as tx:
            return await work(tx)
    finally:
        await conn.close()


def _day(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {value!r}") from None


def configure(parser: argparse.ArgumentParser) -> None:
    """The sub-commands of `tanpuhui reporting` (server/cli.py calls this for its parser)."""
    actions = parser.add_subparsers(dest="action", required=True, metavar="COMMAND")
    for name, help_text in (
        ("refresh", "recompute the rollups of [--from, --to] (days, months, years)"),
        ("reconcile", "check the rollups of [--from, --to] against the events and the ledger"),
    ):
        p = actions.add_parser(name, help=help_text, description=help_text)
        p.add_argument("--from", dest="first", type=_day, help="first day (default: --days ago)")
        p.add_argument("--to", dest="last", type=_day, help="last day (default: today)")
        p.add_argument(
            "--days", type=int, default=None, help="days ending --to (default: refresh_days)"
        )


def cmd_reporting(settings: Settings, args: argparse.Namespace) -> int:
    """Refresh or reconcile the government reports' rollups (reporting.rollups,
    reporting.reconcile) over a range of days of the programme's calendar. Uses DATABASE_URL
    (unset: the embedded PostgreSQL of TANPUHUI_EMBEDDED_DATA_DIR)."""
    assert settings.database.url
    zone = ZoneInfo(settings.timezone)
    last = args.last or rollups.today(zone)
    days = args.days or settings.reporting.refresh_days
    first = args.first or last - timedelta(days=days - 1)
    if first > last:
        sys.stderr.write("tanpuhui reporting: --from is after --to\n")
        return 2

    async def refresh(tx: Tx) -> Any:
        return await rollups.refresh_window(
            tx,
            timezone=settings.timezone,
            settings=settings.reporting,
            ent=settings.enterprises,
            first=first,
            last=last,
            years=True,
        )

    async def check(tx: Tx) -> Any:
        return await reconcile.reconcile(tx, first, last, timezone=settings.timezone)

    work = refresh if args.action == "refresh" else check
    done = asyncio.run(_in_tx(settings.database.url, work))
    out = {"first_day": first, "last_day": last, "result": done}
    sys.stdout.write(msgspec.json.format(msgspec.json.encode(out), indent=2).decode() + "\n")
    if args.action == "reconcile" and not done.ok:
        return 1
    return 0
