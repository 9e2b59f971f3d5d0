"""`tanpuhui admin ...` as a real process on the test database: the first administrator (who
then signs in with the printed TOTP URI), operators and key rotation, the importers (districts,
GTFS, a methodology draft previewed and published), refusals in one line, `--help` for every
command, and the audit log naming the command's operating-system user."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pyotp
import pytest

from reporting import audit
from tests.behaviours.factories import DATA
from tests.gov.factories import PASSWORD
from tests.gov.test_admin import draft_body
from tests.server.processes import base_env, python, run


def admin(settings: Any, *args: str, stdin: str = "") -> Any:
    import subprocess

    from tests.server.processes import ROOT

    env = base_env(DATABASE_URL=settings.database.url, TANPUHUI_ENV="test")
    return subprocess.run(
        python("-m", "server.cli", "admin", *args),
        input=stdin,
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def cli(settings: Any, *args: str, stdin: str = "") -> Any:
    return await asyncio.to_thread(admin, settings, *args, stdin=stdin)


async def test_the_first_administrator_signs_in_with_the_printed_uri(client, pool, settings):
    done = await cli(
        settings, "add-user", "Admin.Li", "--role", "gov_admin", "--name", "李管理",
        "--password-stdin", stdin=PASSWORD + "\n",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    made = json.loads(done.stdout)
    assert made["user"]["login"] == "admin.li" and made["user"]["role"] == "gov_admin"
    uri = made["totp_uri"]
    assert uri in done.stderr and PASSWORD not in done.stdout + done.stderr
    secret = parse_qs(urlsplit(uri).query)["secret"][0]
    r = await client.post(
        "/api/gov/v1/sessions",
        json={"login": "admin.li", "password": PASSWORD, "totp": pyotp.TOTP(secret).now()},
    )
    assert r.status_code == 201, r.text
    assert r.json()["role"] == "gov_admin"
    async with pool.acquire() as conn:
        (entry,) = await audit.entries(conn)
    assert entry.actor.startswith("cli:") and entry.action == "gov_user.add"


async def test_operators_keys_and_refusals(pool, settings):
    done = await cli(
        settings, "operator", "register", "bus-co", "--name", "Bus", "--kind", "transit"
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["id"] == "bus-co" and "registered" in done.stderr
    again = await cli(
        settings, "operator", "register", "bus-co", "--name", "Bus", "--kind", "transit"
    )
    assert again.returncode == 1 and "registered already" in again.stderr
    assert "Traceback" not in again.stderr and again.stderr.count("\n") == 1
    issued = await cli(settings, "key", "issue", "bus-co", "k1")
    assert issued.returncode == 0, issued.stderr
    assert len(json.loads(issued.stdout)["secret"]) == 64
    rotated = await cli(settings, "key", "rotate", "bus-co", "k1", "k2", "--overlap-s", "600")
    assert rotated.returncode == 0, rotated.stderr
    body = json.loads(rotated.stdout)
    assert body["key_id"] == "k2" and body["retiring"]["key_id"] == "k1"
    assert "k1 verifies until" in rotated.stderr
    shown = json.loads((await cli(settings, "operator", "show", "bus-co")).stdout)
    assert [k["key_id"] for k in shown["keys"]] == ["k1", "k2"]
    revoked = await cli(settings, "key", "revoke", "bus-co", "k1")
    assert revoked.returncode == 0 and json.loads(revoked.stdout)["revoked_at"]
    unknown = await cli(settings, "key", "issue", "nobody", "k1")
    assert unknown.returncode == 1 and "nobody" in unknown.stderr
    suspended = await cli(settings, "operator", "suspend", "bus-co")
    assert json.loads(suspended.stdout)["suspended_at"] is not None
    log = json.loads((await cli(settings, "audit", "--action", "operator")).stdout)
    assert [e["action"] for e in log] == [
        "operator.suspend",
        "operator.key.revoke",
        "operator.key.rotate",
        "operator.key.issue",
        "operator.register",
    ]
    assert all(e["actor"].startswith("cli:") for e in log)


async def test_operator_scopes_on_the_command_line(pool, settings):
    gw = await cli(
        settings, "operator", "register", "plant-gw", "--name", "Gateway", "--kind", "utility",
        "--scopes", "",
    )  # fmt: skip
    assert gw.returncode == 0 and json.loads(gw.stdout)["scopes"] == [], gw.stderr
    maas = await cli(
        settings, "operator", "register", "maas", "--name", "MaaS", "--kind", "platform"
    )
    assert json.loads(maas.stdout)["scopes"] == ["cycling", "transit", "walking"]  # its kind's
    narrowed = await cli(settings, "operator", "change", "maas", "--scopes", "transit,walking")
    assert json.loads(narrowed.stdout)["scopes"] == ["transit", "walking"], narrowed.stderr
    bad = await cli(settings, "operator", "change", "maas", "--scopes", "transit,flying")
    assert bad.returncode == 1 and "flying" in bad.stderr and "Traceback" not in bad.stderr
    (change,) = json.loads((await cli(settings, "audit", "--action", "operator.change")).stdout)
    assert change["before"]["scopes"] == ["cycling", "transit", "walking"]
    assert change["after"]["scopes"] == ["transit", "walking"]


async def test_the_importers_report_what_they_changed(pool, settings, tmp_path: Path):
    d = await cli(settings, "districts", str(DATA / "districts.geojson"))
    assert d.returncode == 0, d.stderr
    assert json.loads(d.stdout)["imported"] == 2 and "2 districts imported" in d.stderr
    bad = tmp_path / "bad.geojson"
    bad.write_text('{"type": "Polygon"}')
    refused = await cli(settings, "districts", str(bad))
    assert refused.returncode == 1 and "FeatureCollection" in refused.stderr
    g = await cli(settings, "gtfs", "city", str(DATA / "gtfs"))
    assert g.returncode == 0, g.stderr
    assert json.loads(g.stdout)["counts"]["stops"] > 0 and "replaced" in g.stderr
    missing = await cli(settings, "gtfs", "city", str(tmp_path / "nothing.zip"))
    assert missing.returncode == 1 and "no such file" in missing.stderr
    draft_file = tmp_path / "draft.json"
    draft_file.write_text(json.dumps(draft_body(21.5)))
    made = await cli(settings, "methodology", "draft", str(draft_file))
    assert made.returncode == 0, made.stderr
    draft_id = json.loads(made.stdout)["id"]
    preview = await cli(settings, "methodology", "preview", draft_id, "--days", "7")
    assert preview.returncode == 0 and "nothing changed" in preview.stderr
    published = await cli(settings, "methodology", "publish", draft_id)
    assert published.returncode == 0, published.stderr
    assert json.loads(published.stdout)["version"] == 2
    edit = await cli(settings, "methodology", "edit", draft_id, str(draft_file))
    assert edit.returncode == 1 and "never" in edit.stderr
    shown = json.loads(
        (await cli(settings, "methodology", "show", "low-carbon-travel", "2")).stdout
    )
    assert shown["factors"][0]["factor_g"] == 21.5


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["add-user"],
        ["operator", "register"],
        ["key", "rotate"],
        ["districts"],
        ["gtfs"],
        ["methodology", "publish"],
        ["merchant", "approve"],
        ["project"],
        ["enterprise", "import"],
    ],
)
def test_every_command_has_help(command: list[str]) -> None:
    done = run(python("-m", "server.cli", "admin", *command, "--help"), base_env(), timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: tanpuhui admin") and len(done.stdout) > 100


def test_help_needs_no_database() -> None:
    start = time.monotonic()
    done = run(python("-m", "server.cli", "admin", "--help"), base_env(), timeout=60)
    assert done.returncode == 0 and "add-user" in done.stdout
    assert time.monotonic() - start < 30
