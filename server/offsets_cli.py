"""`tanpuhui offsets ...`: issue pooled reductions into a serial block (audited as
``cli:<os user>``, through the same function as the admin API: reporting.offsets_admin) and list
the blocks issued. Prints JSON."""

from __future__ import annotations

import argparse
import asyncio
import sys
import uuid
from typing import Any

import msgspec

from enterprises.offsets_schemas import IssuanceIn
from kit.db import connect, transaction_on
from kit.errors import DomainError
from points.schemas import PointsPolicy
from reporting import audit, offsets_admin
from server.settings import Settings

PROG = "tanpuhui offsets"


def configure(parser: argparse.ArgumentParser) -> None:
    """The sub-commands of `tanpuhui offsets` (server/cli.py calls this for its parser)."""
    actions = parser.add_subparsers(dest="action", required=True, metavar="COMMAND")
    p = actions.add_parser(
        "issue",
        help="pool residents' verified grams of a vintage and methodology into a serial block",
        description="Pool residents' verified grams (not pooled, donated or retired yet) of "
        "--vintage and --methodology into the next serial block; audited.",
    )
    p.add_argument("--methodology", required=True, help="the methodology's code")
    p.add_argument("--vintage", type=int, required=True, help="the reductions' year")
    p.add_argument("--amount", type=int, help="grams (default: all that may be pooled)")
    p.add_argument(
        "--key", help="a request key: the same key again answers the first block (default: new)"
    )
    actions.add_parser("blocks", help="the blocks issued, by serial")


async def _run(settings: Settings, args: argparse.Namespace) -> Any:
    assert settings.database.url
    conn = await connect(settings.database.url)
    try:
        if args.action == "blocks":
            return await offsets_admin.blocks(conn)
        spec = msgspec.convert(
            {"methodology": args.methodology, "vintage": args.vintage, "amount": args.amount},
            IssuanceIn,
        )
        policy = PointsPolicy.from_settings(settings.points, timezone=settings.timezone)
        async with transaction_on(conn) as tx:
            return await offsets_admin.issue(
                tx,
                policy,
                spec,
                request_key=f"cli:{args.key or uuid.uuid4()}",
                region_code=settings.region_code,
                actor=audit.cli_actor(),
            )
    finally:
        await conn.close()


def cmd_offsets(settings: Settings, args: argparse.Namespace) -> int:
    """Issue pooled reductions (`issue`, audited) or list the blocks (`blocks`). Uses
    DATABASE_URL (unset: the embedded PostgreSQL of TANPUHUI_EMBEDDED_DATA_DIR)."""
    try:
        done = asyncio.run(_run(settings, args))
    except DomainError as exc:
        sys.stderr.write(f"{PROG}: {exc.detail} {msgspec.json.encode(exc.extra).decode()}\n")
        return 1
    except msgspec.ValidationError as exc:
        sys.stderr.write(f"{PROG}: refused: {exc}\n")
        return 1
    sys.stdout.write(msgspec.json.format(msgspec.json.encode(done), indent=2).decode() + "\n")
    return 0
