"""The synthetic industrial district (enterprises/synthetic.py): deterministic by seed, valid
credit codes in the programme's districts, a dozen industries with cement planted far more
carbon-intensive, loadable through the services (again: nothing changes) and by the CLI."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from collections import defaultdict
from datetime import date
from pathlib import Path
from zoneinfo import ZoneInfo

from enterprises import energy, service, synthetic
from server.settings import PrivacySettings

ROOT = Path(__file__).resolve().parents[2]
ZONE = ZoneInfo("Asia/Shanghai")
DISTRICTS = ["440303", "440304"]
# Rough factors (t CO2 per unit) only to compare industries: coal t, natural gas m3, kWh.
ROUGH = {"coal": 1.9, "natural_gas": 0.00216, "electricity": 0.00057}


def test_the_same_seed_gives_the_same_district():
    a = synthetic.district(seed=3, enterprises=50, districts=DISTRICTS)
    b = synthetic.district(seed=3, enterprises=50, districts=DISTRICTS)
    c = synthetic.district(seed=4, enterprises=50, districts=DISTRICTS)
    assert a == b and a != c
    e = a.enterprises[7]
    first = list(synthetic.readings(e, 2025, ZONE, days=2, seed=3))
    assert first == list(synthetic.readings(e, 2025, ZONE, days=2, seed=3))
    assert synthetic.reports(e, 2025, 3) == synthetic.reports(e, 2025, 3)


def test_enterprises_are_valid_and_spread_over_a_dozen_industries():
    d = synthetic.district(seed=7, enterprises=300, districts=DISTRICTS)
    codes = [e.registration.credit_code for e in d.enterprises]
    assert len(set(codes)) == 300
    assert all(service.credit_code_problem(c) is None for c in codes)
    assert all(not service.shape_problems(e.registration) for e in d.enterprises)
    assert len({e.industry.code for e in d.enterprises}) == 12
    assert {e.registration.district for e in d.enterprises} == set(DISTRICTS)


def test_readings_are_a_cumulative_15_minute_register():
    d = synthetic.district(seed=7, enterprises=12, districts=DISTRICTS)
    rs = list(synthetic.readings(d.enterprises[0], 2025, ZONE, days=3, seed=7))
    assert len(rs) == 3 * 96 + 1 - (
        d.enterprises[0].gap_at is not None and d.enterprises[0].gap_at < 288
    )
    assert all(b.value >= a.value for a, b in itertools.pairwise(rs))
    assert rs[0].at.astimezone(ZONE).isoformat() == "2025-01-01T00:00:00+08:00"


def _intensities(d: synthetic.District) -> dict[str, list[float]]:
    """t CO2 (rough) per 10,000 yuan of added value, per enterprise, by industry, for a year."""
    out: dict[str, list[float]] = defaultdict(list)
    for e in d.enterprises:
        emissions = value = 0.0
        for month, report in zip(range(1, 13), synthetic.reports(e, 2025, 7), strict=True):
            kinds = {x.kind: x.quantity for x in report.lines}
            kwh = synthetic.monthly_electricity_kwh(e, date(2025, month, 1))
            emissions += kwh * ROUGH["electricity"]
            emissions += kinds.get("coal", 0) * ROUGH["coal"]
            emissions += kinds.get("natural_gas", 0) * ROUGH["natural_gas"]
            value += kinds["added_value"]
        out[e.industry.code].append(emissions / value)
    return out


def test_cement_is_planted_clearly_more_intensive():
    by_industry = _intensities(synthetic.district(seed=7, enterprises=300, districts=DISTRICTS))
    means = {code: sum(v) / len(v) for code, v in by_industry.items()}
    cement = means.pop("C3011")
    assert cement > 2.0  # the provincial "high" band
    assert cement > 2 * max(means.values()), (cement, means)
    # Within an industry the enterprises spread (grades 1 to 5 need K from < 0.6 to > 2).
    spread = sorted(by_industry["C3120"])
    assert spread[-1] / spread[0] > 3


async def test_loading_goes_through_the_services_and_again_changes_nothing(pool):
    async with pool.acquire() as conn:
        loaded = await synthetic.load(
            conn,
            seed=5,
            enterprises=12,
            days=2,
            zone=ZONE,
            privacy=PrivacySettings(),
            region_code="440300",
        )
        assert (loaded.enterprises, loaded.reports) == (12, 144)
        d = synthetic.district(seed=5, enterprises=12, districts=DISTRICTS)
        expected = sum(
            len(list(synthetic.readings(e, 2025, ZONE, days=2, seed=5))) for e in d.enterprises
        )
        assert loaded.readings == expected
        activity = await energy.monthly_activity(conn, start=date(2025, 1, 1), end=date(2026, 1, 1))
        january = {(r.enterprise_id, r.kind): r for r in activity if r.month == date(2025, 1, 1)}
        electricity = [r for (_, kind), r in january.items() if kind == "electricity"]
        assert len(electricity) == 12 and all(
            r.source == "meter" and r.quantity > 0 for r in electricity
        )
        assert sum(1 for (_, kind) in january if kind == "added_value") == 12
        again = await synthetic.load(
            conn,
            seed=5,
            enterprises=12,
            days=2,
            zone=ZONE,
            privacy=PrivacySettings(),
            region_code="440300",
        )
        assert again.readings == loaded.readings and again.key_id != loaded.key_id
        after = await energy.monthly_activity(conn, start=date(2025, 1, 1), end=date(2026, 1, 1))
        assert after == activity


async def test_the_cli_loads_a_district(settings, pool):
    env = {**os.environ, "DATABASE_URL": str(settings.database.url), "PYTHONPATH": str(ROOT)}
    env.pop("TANPUHUI_EMBEDDED_DATA_DIR", None)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "server.cli",
            "load-synthetic-district",
            "--enterprises",
            "3",
            "--days",
            "1",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    d = synthetic.district(seed=7, enterprises=3, districts=DISTRICTS)
    expected = sum(len(list(synthetic.readings(e, 2025, ZONE, days=1))) for e in d.enterprises)
    assert f"3 enterprises, {expected} readings (" in done.stdout, done.stdout
    assert "pusher synthetic-grid, key syn7-" in done.stdout
    async with pool.acquire() as conn:
        found = await service.enterprises_by_credit_code(
            conn, [e.registration.credit_code for e in d.enterprises]
        )
    assert len(found) == 3
