"""`tanpuhui demo` on a fresh database, as a user runs it (a real process, the application's
least-privilege role): the reports answer non-empty figures from what it loaded (trips through
the ingestion pipeline, redemptions and donations, the enterprises' grades), the printed demo
administrator signs in with its password and TOTP, and a second run duplicates nothing; and
`make run DEMO=1` on fresh embedded stores, timed."""

from __future__ import annotations

import re
import shutil
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pyotp
from litestar.testing import AsyncTestClient

from server.settings import Settings
from tests.server.processes import (
    Process,
    base_env,
    free_port,
    python,
    run,
    stop_postgres,
    store_env,
)

REPORTS = "/api/gov/v1/reports"


def _demo(settings: Settings, data_dir: Path) -> tuple[str, str]:
    done = run(
        python("-m", "server.cli", "demo", "--residents", "300", "--days", "14"),
        store_env(settings, TANPUHUI_EMBEDDED_DATA_DIR=str(data_dir)),
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return done.stdout, done.stderr


def _field(out: str, name: str) -> str:
    found = re.search(rf"^\s*{name}:\s+(\S+)", out, re.MULTILINE)
    assert found, f"no {name} in:\n{out}"
    return found.group(1)


async def _figures(
    client: AsyncTestClient[Any], token: str, year: int, enterprise_year: int
) -> dict[str, Any]:
    auth = {"Authorization": f"Bearer {token}"}
    out: dict[str, Any] = {}
    for name, path, params in (
        ("totals", "/totals", {"grain": "year", "period": f"{year}-01-01"}),
        ("by_district", "/by-district", {"grain": "year", "period": f"{year}-01-01"}),
        ("by_mode", "/by-mode", {"grain": "year", "period": f"{year}-01-01"}),
        ("grades", "/enterprises/grades", {"year": enterprise_year}),
        ("liability", "/liability", {"unit": "year"}),
        ("geojson", "/districts.geojson", {}),
    ):
        r = await client.get(REPORTS + path, params=params, headers=auth)
        assert r.status_code == 200, (path, r.text)
        out[name] = r.json()
        out[name].pop("as_of", None)
    return out


async def test_the_demo_loads_a_living_city_once(
    stores: Any, settings: Settings, client: AsyncTestClient[Any]
) -> None:
    data_dir = Path(tempfile.mkdtemp(prefix="tph-demo-"))
    out, err = _demo(settings, data_dir)
    assert "demo city: 12 districts" in out
    accepted = int(re.search(r"(\d+) accepted", out).group(1))  # type: ignore[union-attr]
    assert accepted > 1000, out
    assert "the reports' rollups" in err
    login, password, secret = (
        _field(out, "login"),
        _field(out, "password"),
        _field(out, "TOTP secret"),
    )
    assert login == "demo.admin"
    assert (data_dir / "demo-gov-admin.json").stat().st_mode & 0o777 == 0o600

    # The printed administrator signs in (password + TOTP) through the real sign-in route.
    signed = await client.post(
        "/api/gov/v1/sessions",
        json={"login": login, "password": password, "totp": pyotp.TOTP(secret).now()},
    )
    assert signed.status_code == 201, signed.text
    assert signed.json()["role"] == "gov_admin"
    token = signed.json()["access_token"]

    # The year holding most of the demo's 14 days; the enterprises' year is the last complete one.
    today = datetime.now(ZoneInfo(settings.timezone)).date()
    first = await _figures(client, token, (today - timedelta(days=7)).year, today.year - 1)
    figures = first["totals"]["figures"]
    assert figures["trips"]["value"] > 1000
    assert figures["participants"]["value"] > 100
    assert figures["grams"]["value"] > 0 and figures["points"]["value"] > 0
    statuses = {f["grams"]["status"] for f in first["by_district"]["districts"].values()}
    assert statuses == {"ok", "suppressed"}  # districts of very unequal size
    assert {m["mode"] for m in first["by_mode"]["modes"]} >= {"bus", "shared_bike", "walk"}
    assert first["grades"]["total"]["total"]["value"] == 120
    assert first["liability"]["redeemed"] > 0 and first["liability"]["donated"] > 0
    assert len(first["geojson"]["features"]) == 12

    # Again: nothing new (every record a duplicate, every step found done), the same figures.
    again, _ = _demo(settings, data_dir)
    assert re.search(r"\b0 accepted, \d+ duplicate", again), again
    assert "0 new" in again and "loaded before" in again
    assert _field(again, "password") == password  # read back from the data directory
    second = await _figures(client, token, (today - timedelta(days=7)).year, today.year - 1)
    assert second == first


def test_make_run_demo_shows_a_living_dashboard_soon_after_the_command() -> None:
    """The README's first command, as a new user types it (embedded stores, a fresh data
    directory): the demo's sign-in is printed and works, and the reports answer, soon after
    `make run DEMO=1` (-o: the test's .venv is already installed)."""
    data_dir = Path(tempfile.mkdtemp(prefix="tph-make-demo-"))
    port = free_port()
    env = base_env(TANPUHUI_EMBEDDED_DATA_DIR=str(data_dir), TANPUHUI_HTTP_PORT=str(port))
    started = time.monotonic()
    try:
        with Process(["make", "-s", "-o", ".venv/.installed", "run", "DEMO=1"], env) as p:
            p.wait_for(lambda: "(loaded in " in p.stdout(), "the demo's sign-in", timeout=180)
            elapsed = time.monotonic() - started
            out = p.stdout()
            assert f"dashboard: http://127.0.0.1:{port}/dashboard" in out
            base = f"http://127.0.0.1:{port}"
            page = httpx.get(f"{base}/dashboard")
            assert page.status_code == 200 and "echarts-6.1.0/echarts.min.js" in page.text
            signed = httpx.post(
                f"{base}/api/gov/v1/sessions",
                json={
                    "login": _field(out, "login"),
                    "password": _field(out, "password"),
                    "totp": pyotp.TOTP(_field(out, "TOTP secret")).now(),
                },
            )
            assert signed.status_code == 201, signed.text
            auth = {"Authorization": f"Bearer {signed.json()['access_token']}"}
            day = datetime.now(ZoneInfo("Asia/Shanghai")).date() - timedelta(days=1)
            totals = httpx.get(
                f"{base}{REPORTS}/totals",
                params={"grain": "day", "period": day.isoformat()},
                headers=auth,
            )
            assert totals.status_code == 200, totals.text
            assert totals.json()["figures"]["trips"]["value"] > 100
        # About 30 s on a quiet machine (the README's "within a minute"); the bound leaves room
        # for a 2-core machine shared with other work, where it was seen to take twice as long.
        assert elapsed < 90, f"the demo took {elapsed:.0f} s after `make run DEMO=1`"
    finally:
        stop_postgres(data_dir / "pg")
        shutil.rmtree(data_dir, ignore_errors=True)
