"""The government dashboard in a real headless Chromium (Debian's ``chromium`` and
``chromium-driver``, driven by selenium) against the real app (`tanpuhui serve`):

the demo city is loaded into the test stores (so some district cells are suppressed and some
not), a government analyst signs in through the page's form (password and a TOTP code), and
the test checks that the page logs no console error, that the map and every chart hold series
data from the API (the same figures the API answers), that suppressed cells are shown as
suppressed (never as a number or 0), that the scenario slider re-queries the Kaya endpoint and
that the language switch relabels the page. Screenshots go to a temporary directory (printed);
with ``TANPUHUI_UPDATE_SCREENSHOTS=1`` also to docs/dashboard.png (the README's picture).

Without chromium the test fails with the install command: it never skips. A third test reads
``GET /api/gov/v1/reports/districts.geojson`` (the map's polygons) without a browser.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pyotp
import pytest
from selenium import webdriver
from selenium.webdriver import Chrome
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from shapely import wkb
from shapely.geometry import shape

from behaviours import service as behaviours
from integrations.districts import read_districts_file
from kit.db import transaction
from server import demo
from server.settings import Settings
from tests.gov.factories import PASSWORD, gov_user, new_gov_user
from tests.server.processes import ROOT, api, free_port, port_answers

INSTALL = "apt-get update && apt-get install -y chromium chromium-driver"
CHARTS = ("series", "modes", "map", "grades", "index", "synergy", "scenario", "decision")
READY_S = 60.0
DISTRICTS = ROOT / "tests" / "integrations" / "data" / "districts.geojson"
# What the page exposes of its state (window.tanpuhuiDashboard also holds the chart objects).
STATE = (
    "const s = window.tanpuhuiDashboard;"
    "return s && {ready: s.ready, errors: s.errors, scenarioQueries: s.scenarioQueries};"
)


def _browser_binaries() -> tuple[str, str]:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not chromium or not driver:
        pytest.fail(
            "the dashboard test needs Debian's chromium and chromium-driver "
            f"(missing: {'chromium' if not chromium else 'chromedriver'}); install them: {INSTALL}",
            pytrace=False,
        )
    return chromium, driver


@pytest.fixture
def browser() -> Iterator[Chrome]:
    chromium, driver = _browser_binaries()
    options = Options()
    options.binary_location = chromium
    for arg in (
        "--headless=new",
        "--no-sandbox",  # CI runs as root
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1440,3900",
        "--lang=zh-CN",
        "--force-device-scale-factor=1",
    ):
        options.add_argument(arg)
    options.add_experimental_option("prefs", {"intl.accept_languages": "zh-CN,zh"})
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    b = webdriver.Chrome(options=options, service=Service(executable_path=driver))
    try:
        yield b
    finally:
        b.quit()


@pytest.fixture
def shots() -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="tph-dashboard-"))
    yield folder
    print(f"dashboard screenshots: {folder}")


def _console_errors(b: Chrome) -> list[dict[str, Any]]:
    return [e for e in b.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]


def _wait(b: Chrome, script: str, what: str, timeout: float = READY_S) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = b.execute_script(script)
        if value:
            return value
        time.sleep(0.2)
    state = b.execute_script(STATE)
    raise AssertionError(
        f"no {what} after {timeout} s; page state {state}; console {b.get_log('browser')}"
    )


def _series_data(b: Chrome, panel: str) -> list[Any]:
    data: list[Any] = b.execute_script(
        "const c = echarts.getInstanceByDom(document.getElementById(arguments[0]));"
        "if (!c) return null;"
        "return c.getOption().series.map(s => s.data);",
        f"chart-{panel}",
    )
    return data


def _sign_in(b: Chrome, base: str, login: str, secret: str) -> None:
    b.get(f"{base}/dashboard")
    _wait(b, "return !document.getElementById('sign-in').hidden", "sign-in form")
    b.find_element(By.ID, "login").send_keys(login)
    b.find_element(By.ID, "password").send_keys(PASSWORD)
    b.find_element(By.ID, "totp").send_keys(pyotp.TOTP(secret).now())
    b.find_element(By.ID, "sign-in-submit").click()


async def test_the_dashboard_renders_every_panel_from_the_api_with_suppressed_cells_shown(
    stores: Any, pool: Any, settings: Settings, browser: Chrome, shots: Path
) -> None:
    assert settings.database.url
    # The demo city (what `make run DEMO=1` shows): districts of very unequal size, some under
    # k = 10 residents.
    summary, _, _ = await demo.load(settings.database.url, settings, admin=False)
    assert summary.accepted > 1000
    analyst = await new_gov_user(pool, settings, role="gov_analyst", login="analyst.dash")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with api(settings, port) as server:
        server.wait_for(lambda: port_answers(port), "the API")
        _check_dashboard(browser, base, analyst.totp_secret, summary.districts, shots)
    picture = shots / "dashboard-zh.png"
    assert picture.stat().st_size > 50_000  # a rendered page, not a blank one
    if os.environ.get("TANPUHUI_UPDATE_SCREENSHOTS") == "1":
        shutil.copy(picture, ROOT / "docs" / "dashboard.png")


def _check_dashboard(b: Chrome, base: str, secret: str, districts: int, shots: Path) -> None:
    """(Synchronous: selenium and httpx block; the app is another process.)"""
    _sign_in(b, base, "analyst.dash", secret)
    _wait(
        b,
        "const s = window.tanpuhuiDashboard; return s && (s.ready || s.errors.length > 0);",
        "rendered dashboard",
    )
    state = b.execute_script(STATE)
    assert state["errors"] == [], state["errors"]
    assert state["ready"] is True
    time.sleep(1.0)  # the charts' entry animations, for the screenshot
    b.save_screenshot(str(shots / "dashboard-zh.png"))

    # The same figures the API answers, read with the token the page holds.
    token = b.execute_script(
        "return JSON.parse(sessionStorage.getItem('tanpuhui.gov.session')).access_token"
    )
    period = b.execute_script("return document.getElementById('period-select').value")
    grain, first = period.split(":")
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}) as http:
        by_district = http.get(
            "/api/gov/v1/reports/by-district", params={"grain": grain, "period": first}
        ).json()["districts"]
        geojson = http.get("/api/gov/v1/reports/districts.geojson").json()
        by_mode = http.get(
            "/api/gov/v1/reports/by-mode", params={"grain": grain, "period": first}
        ).json()["modes"]

    # Every chart holds series data.
    for panel in CHARTS:
        data = _series_data(b, panel)
        assert data and any(series for series in data), f"chart {panel} has no series data"

    # The map: the districts' polygons registered, one data item per district of the API,
    # suppressed ones flagged (no value), the others with the API's kilograms.
    features = b.execute_script(
        "return echarts.getMap('tanpuhui-districts').geoJSON.features.length"
    )
    assert features == len(geojson["features"]) == districts
    [map_data] = _series_data(b, "map")
    # (ECharts adds an empty item for each region without data: those have no status.)
    shown = {d["name"]: d for d in map_data if "status" in d}
    assert set(shown) == set(by_district)
    suppressed = {c for c, f in by_district.items() if f["grams"]["status"] == "suppressed"}
    published = {c for c, f in by_district.items() if f["grams"]["status"] == "ok"}
    assert suppressed, "the demo city should have districts under k residents"
    assert published, "and districts above it"
    for code in suppressed:
        assert shown[code]["status"] == "suppressed"
        assert shown[code].get("value") in (None, "NaN") or shown[code]["value"] != 0
    for code in published:
        assert shown[code]["status"] == "ok"
        assert shown[code]["value"] == pytest.approx(by_district[code]["grams"]["value"] / 1000)

    # The district table says "suppressed" in words, hatched, never a number.
    cells = b.find_elements(By.CSS_SELECTOR, "#district-table td.num")
    by_code = {c.get_attribute("data-code"): c for c in cells}
    for code in suppressed:
        cell = by_code[code]
        assert "suppressed" in (cell.get_attribute("class") or "")
        assert cell.text == "已抑制"
    for code in published:
        assert "suppressed" not in (by_code[code].get_attribute("class") or "")
        assert by_code[code].text.replace(",", "").replace(".", "").isdigit()

    # The daily series: the API's days, a suppressed day a gap in the line under a hatched
    # column flagged "suppressed", every other day the API's kilograms.
    days = b.execute_script(
        "return echarts.getInstanceByDom(document.getElementById('chart-series'))"
        ".getOption().xAxis[0].data"
    )
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}) as http:
        api_days = http.get(
            "/api/gov/v1/reports/series",
            params={"grain": "day", "start": days[0], "end": days[-1]},
        ).json()["points"]
    line, columns = _series_data(b, "series")
    assert [d["period"] for d in api_days] == days
    for point, value, column in zip(api_days, line, columns, strict=True):
        if point["grams"]["status"] == "suppressed":
            assert value is None and column["status"] == "suppressed"
        else:
            assert column is None
            assert value == pytest.approx(point["grams"]["value"] / 1000)

    # By mode: one bar per mode of the API, in kilograms.
    bars = _series_data(b, "modes")[0]
    assert len(bars) == len(by_mode)
    for bar, row in zip(bars, by_mode, strict=True):
        if row["figures"]["grams"]["status"] == "ok":
            assert bar == pytest.approx(row["figures"]["grams"]["value"] / 1000)

    # The scenario slider re-queries the Kaya endpoint and redraws.
    before = state["scenarioQueries"]
    old_line = _series_data(b, "scenario")[0]
    b.execute_script(
        "const s = document.getElementById('rate-gdp_per_capita'); s.value = '8';"
        "s.dispatchEvent(new Event('input'));"
    )
    _wait(
        b,
        f"return window.tanpuhuiDashboard.scenarioQueries > {before}",
        "scenario re-query",
        timeout=10,
    )
    deadline = time.monotonic() + 10
    while (new_line := _series_data(b, "scenario")[0]) == old_line:
        assert time.monotonic() < deadline, "the scenario chart was not redrawn"
        time.sleep(0.2)
    assert new_line != old_line
    assert new_line[-1] > old_line[-1]  # faster GDP growth: more emissions at the horizon

    _check_synergy_panel(b, base, token)
    _check_decision_panel(b, base, token)

    # English labels on request.
    b.find_element(By.ID, "lang").click()
    _wait(b, "return document.documentElement.lang === 'en'", "English page", timeout=5)
    assert b.find_element(By.CSS_SELECTOR, "h1").text == "Carbon inclusion · Government dashboard"
    code = sorted(suppressed)[0]
    assert b.find_element(By.CSS_SELECTOR, f"td[data-code='{code}']").text == "suppressed"
    time.sleep(0.8)
    b.save_screenshot(str(shots / "dashboard-en.png"))

    errors = _console_errors(b)
    assert errors == [], errors


def _check_synergy_panel(b: Chrome, base: str, token: str) -> None:
    """The synergy view: the industries in the API's order (ranked by joint reduction potential
    first), each ranked one's bar its potential in per cent, a suppressed industry a hatched stub
    and "suppressed" in its table row, never a number."""
    year = b.execute_script("return document.getElementById('synergy-year').textContent")
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}) as http:
        r = http.get("/api/gov/v1/reports/enterprises/synergy", params={"year": year})
    assert r.status_code == 200, r.text
    answer = r.json()
    industries = answer["industries"]
    assert industries, "the demo's district has pollutant data"
    categories = b.execute_script(
        "return echarts.getInstanceByDom(document.getElementById('chart-synergy'))"
        ".getOption().xAxis[0].data"
    )
    assert categories == [i["industry"] for i in industries]
    if answer["ranking"]:
        assert categories[0] == answer["ranking"][0]
    bars, stubs = _series_data(b, "synergy")
    published = suppressed = 0
    for i, bar, stub in zip(industries, bars, stubs, strict=True):
        row = b.find_element(By.CSS_SELECTOR, f"#synergy-table tr[data-industry='{i['industry']}']")
        cells = [td.text for td in row.find_elements(By.TAG_NAME, "td")]
        potential = i["potential"]
        if isinstance(potential, dict) and potential.get("status") == "suppressed":
            suppressed += 1
            assert bar is None and stub["status"] == "suppressed"
            assert cells[-1] == "已抑制"
        else:
            published += 1
            value = potential["value"] if isinstance(potential, dict) else potential
            assert bar == pytest.approx(value * 100)
            assert stub is None
            assert cells[-1].endswith("%")
        if i["status"] == "suppressed":
            assert cells[1] == "已抑制" and cells[2] == "已抑制"
    assert published > 0, "some industry of the demo's district is published"


def _decision(b: Chrome) -> dict[str, Any]:
    answer: dict[str, Any] = b.execute_script(
        "const s = window.tanpuhuiDashboard;"
        "return {n: s.decisionQueries, body: s.decisionBody, shown: s.data.decision,"
        " text: document.getElementById('decision-result').textContent};"
    )
    return answer


def _evaluate(b: Chrome, **fields: str) -> dict[str, Any]:
    """Type ``fields`` (input id suffix -> value) into the decision form, submit it, and wait
    for the page's new answer."""
    before = _decision(b)["n"]
    for name, value in fields.items():
        box = b.find_element(By.ID, f"decision-{name}")
        box.clear()
        box.send_keys(value)
    b.find_element(By.ID, "decision-run").click()
    _wait(b, f"return window.tanpuhuiDashboard.decisionQueries > {before}", "decision", 10)
    _wait(b, "return document.getElementById('decision-result').textContent !== ''", "text", 10)
    time.sleep(0.3)
    return _decision(b)


def _check_decision_panel(b: Chrome, base: str, token: str) -> None:
    """The project-impact scenario: what the page draws and says is what the decision endpoint
    answers for the body the page sent; a project large enough moves the peak past the target
    (the gap shown), and a substitution whose avoided emissions equal its added ones draws the
    baseline again."""
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}) as http:

        def asked(d: dict[str, Any]) -> dict[str, Any]:
            r = http.post("/api/gov/v1/reports/scenarios/decision", json=d["body"])
            assert r.status_code == 200, r.text
            answer: dict[str, Any] = r.json()
            return answer

        # A project of 40 Mt a year from 2032 on a path that peaks near 2030: late, with a gap.
        d = _evaluate(b, target="2030", **{"project-t": "40000000", "project-year": "2032"})
        api = asked(d)
        assert d["body"]["projects"][0]["annual_emissions_t"] == 40_000_000
        assert d["body"]["projects"][0]["starts_on"] == "2032-01-01"
        baseline, with_project = _series_data(b, "decision")
        assert baseline == pytest.approx([y["baseline_t"] / 1e6 for y in api["years"]])
        assert with_project == pytest.approx([y["emissions_t"] / 1e6 for y in api["years"]])
        assert api["peaks_on_time"] is False and api["gap_t"] > 0
        assert d["shown"]["peak_year"] == api["peak_year"] > 2030
        assert str(api["peak_year"]) in d["text"] and str(api["gap_year"]) in d["text"]
        assert "不能按期达峰" in d["text"]

        # No project; a substitution adding as much as it avoids: the baseline path itself.
        d = _evaluate(b, **{"project-t": "0", "added-t": "500000", "avoided-t": "500000"})
        api = asked(d)
        assert d["body"]["projects"] == [] and len(d["body"]["substitutions"]) == 1
        baseline, with_decisions = _series_data(b, "decision")
        assert with_decisions == pytest.approx(baseline)
        assert api["peak_year"] == api["baseline_peak_year"]
        assert api["peaks_on_time"] == api["baseline_peaks_on_time"]


async def test_a_wrong_code_is_refused_on_the_page_and_the_page_needs_no_inline_script(
    stores: Any, pool: Any, settings: Settings, browser: Chrome
) -> None:
    admin = await new_gov_user(pool, settings, role="gov_admin", login="admin.dash")
    totp = pyotp.TOTP(admin.totp_secret)
    now = time.time()
    valid = {totp.at(now + 30 * k) for k in range(-3, 4)}
    wrong = next(c for c in (f"{n:06d}" for n in range(1_000_000)) if c not in valid)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with api(settings, port) as server:
        server.wait_for(lambda: port_answers(port), "the API")
        _check_refusal(browser, base, wrong)


def _check_refusal(b: Chrome, base: str, wrong: str) -> None:
    page = httpx.get(f"{base}/dashboard")
    csp = page.headers["content-security-policy"]
    assert (
        "script-src 'self'" in csp
        and "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]
    )
    assert "<script>" not in page.text  # every script is a file (src=...)
    assert not re.search(r"\son[a-z]+\s*=", page.text)  # and no inline event handler
    b.get(f"{base}/dashboard")
    _wait(b, "return !document.getElementById('sign-in').hidden", "sign-in form")
    b.find_element(By.ID, "login").send_keys("admin.dash")
    b.find_element(By.ID, "password").send_keys(PASSWORD)
    b.find_element(By.ID, "totp").send_keys(wrong)
    b.find_element(By.ID, "sign-in-submit").click()
    message = _wait(
        b,
        "const e = document.getElementById('sign-in-error'); return !e.hidden && e.textContent;",
        "refusal",
        timeout=15,
    )
    assert message == "登录名、密码或动态验证码不正确。"
    assert b.find_element(By.ID, "dashboard").get_attribute("hidden") is not None
    # The refused sign-in's 401 is the only console entry (the browser logs a failed fetch).
    errors = [e for e in _console_errors(b) if "/api/gov/v1/sessions" not in e["message"]]
    assert errors == [], errors


async def test_the_districts_geojson_answers_the_imported_districts_to_the_metre(
    stores: Any, pool: Any, settings: Settings, client: Any
) -> None:
    rows = read_districts_file(DISTRICTS)
    async with transaction(pool) as tx:
        await behaviours.import_districts(tx, rows)
    _, token = await gov_user(pool, settings, role="gov_analyst")
    r = await client.get(
        "/api/gov/v1/reports/districts.geojson", headers={"Authorization": f"Bearer {token}"}
    )
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/geo+json")
    assert "script-src 'self'" in r.headers["content-security-policy"]
    body = r.json()
    assert body["type"] == "FeatureCollection"
    got = {f["id"]: f for f in body["features"]}
    assert {code: f["properties"]["name"] for code, f in got.items()} == {
        code: name for code, name, _, _ in rows
    }
    for code, _, _, geometry in rows:
        assert got[code]["properties"]["code"] == code
        drawn = shape(got[code]["geometry"])
        assert drawn.is_valid
        assert drawn.hausdorff_distance(wkb.loads(geometry)) < 2e-4  # about 20 m at most
    assert (await client.get("/api/gov/v1/reports/districts.geojson")).status_code == 401
