"""`tanpuhui reporting refresh|reconcile` against the test database (the application role)."""

from __future__ import annotations

import argparse
import asyncio
import json
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest

from server.cli import main
from server.reporting_cli import cmd_reporting
from tests.behaviours.factories import now
from tests.reporting.factories import operators, travel


async def test_refresh_then_reconcile_from_the_command_line(pool, settings, capsys):
    zone = ZoneInfo(settings.timezone)
    start = (now() - timedelta(days=1)).astimezone(zone).replace(hour=8, minute=0, second=0)
    await operators(pool)
    await travel(pool, settings, 3, start=start, modes=("metro",))
    day = start.date()
    ns = argparse.Namespace(action="refresh", first=day, last=day, days=None)
    assert await asyncio.to_thread(cmd_reporting, settings, ns) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["first_day"] == day.isoformat() and out["result"]["travel_day"] == 5
    ns = argparse.Namespace(action="reconcile", first=day, last=day, days=None)
    assert await asyncio.to_thread(cmd_reporting, settings, ns) == 0
    assert json.loads(capsys.readouterr().out)["result"]["ok"] is True
    # another range (no events there): its cells and the whole ledger still agree
    ns = argparse.Namespace(
        action="reconcile", first=day - timedelta(days=3), last=day - timedelta(days=2), days=None
    )
    assert await asyncio.to_thread(cmd_reporting, settings, ns) == 0
    assert json.loads(capsys.readouterr().out)["result"]["differences"] == []


def test_the_command_has_help(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["reporting", "refresh", "--help"])
    assert exit_.value.code == 0
    assert "--from" in capsys.readouterr().out
