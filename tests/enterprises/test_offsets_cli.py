"""`tanpuhui offsets ...` as a real process on the test database: an issuance audited as the
command's operating-system user, the same --key answering the same block, a refusal in one line,
and the blocks listed."""

from __future__ import annotations

import asyncio
import json
import subprocess
from typing import Any

from reporting import audit
from tests.enterprises.offsets_factories import YEAR, events
from tests.server.processes import ROOT, base_env, python


def _offsets(settings: Any, *args: str) -> Any:
    env = base_env(DATABASE_URL=settings.database.url, TANPUHUI_ENV="test")
    return subprocess.run(
        python("-m", "server.cli", "offsets", *args),
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def cli(settings: Any, *args: str) -> Any:
    return await asyncio.to_thread(_offsets, settings, *args)


async def test_issue_audited_replayed_refused_listed(pool: Any, settings: Any):
    await events(pool, [700, 300], methodology="low-carbon-travel")
    args = ("issue", "--methodology", "low-carbon-travel", "--vintage", str(YEAR))
    done = await cli(settings, *args, "--amount", "600", "--key", "k1")
    assert done.returncode == 0, done.stderr
    block = json.loads(done.stdout)
    assert (block["serial_start"], block["serial_end"]) == (1, 600)
    again = await cli(settings, *args, "--amount", "600", "--key", "k1")
    assert json.loads(again.stdout) == block
    refused = await cli(settings, *args, "--amount", "401")
    assert refused.returncode == 1 and "available_g" in refused.stderr and "400" in refused.stderr
    rest = await cli(settings, *args)
    assert json.loads(rest.stdout)["amount"] == 400
    listed = await cli(settings, "blocks")
    assert [b["amount"] for b in json.loads(listed.stdout)] == [600, 400]
    async with pool.acquire() as conn:
        entries = await audit.entries(conn, action="offsets")
    assert [e.target for e in entries] == [str(json.loads(rest.stdout)["id"]), str(block["id"])]
    assert all(e.actor.startswith("cli:") for e in entries)
