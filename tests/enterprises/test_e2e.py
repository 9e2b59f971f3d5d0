"""Issue 12 end to end, through the real app: an enterprise's administrator signs in, adds a
site and a meter, the utility pushes a day of 15-minute readings over the signed meters API,
the enterprise uploads its monthly report (CSV), sets a carbon budget; the worker's recompute
(the task body, on this loop) turns the data into emissions, which the enterprise API serves
by energy kind with their factors, with the grade against four peers of its industry and the
alerts the crossed budget raised; the carbon account report is issued and its hash checked at
the public API."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import msgspec
import pytest

from enterprises import energy, tasks
from enterprises.energy_schemas import ReportIn, ReportLineIn
from enterprises.factors import derived
from kit.auth import sign_request
from kit.db import transaction
from tests.behaviours.factories import SECRET, operator
from tests.enterprises.api import API, admin, signed_in
from tests.enterprises.factories import enterprise, registered

ZONE = ZoneInfo("Asia/Shanghai")
DAY = datetime(2026, 3, 2, tzinfo=ZONE)  # a day of March 2026 (programme time)
METERS = "/api/meters/v1/readings"
GRID_2023 = 0.5306  # kg/kWh: 2026 uses 2023's national factor, the latest published
GAS = derived(0.038931, 0.0153, 0.99)  # kg/m3, natural gas by GB/T 32150-2015's defaults
PEER_KWH = 10_000.0


async def _peers(pool, n: int = 4) -> None:
    """Four more enterprises of the same industry (C26), each with March's report: 10,000 kWh
    and 10 (10,000 yuan) of added value, so the industry has the five peers a grade needs."""
    for i in range(n):
        e = (await registered(pool, enterprise(10 + i))).enterprise
        async with transaction(pool) as tx:
            await energy.submit_report(
                tx,
                e.id,
                ReportIn(
                    period="month",
                    period_start=DAY.date().replace(day=1),
                    lines=[
                        ReportLineIn(kind="electricity", quantity=PEER_KWH, unit="kWh"),
                        ReportLineIn(kind="added_value", quantity=10.0, unit="10k_CNY"),
                    ],
                ),
            )


def _signed(body: bytes) -> dict[str, str]:
    headers = sign_request(SECRET, "POST", METERS, body, operator_id="grid", key_id="k1")
    return {**headers, "Content-Type": "application/json"}


async def test_an_enterprise_from_sign_in_to_its_carbon_account_report(client, pool, settings):
    a = await admin(pool)  # the programme's `tanpuhui enterprise add-admin`
    await operator(pool, "grid", "utility")  # the utility that pushes the meter
    await _peers(pool)

    # 1. Sign in.
    a = await signed_in(client, a)
    me = await client.get(f"{API}/me", headers=a.headers)
    assert me.json()["enterprise_id"] == str(a.enterprise.id)
    profile = (await client.get(a.base, headers=a.headers)).json()
    assert profile["credit_code"] == a.enterprise.credit_code

    # 2. A site and its electricity meter, pushed by the utility.
    site = await client.post(f"{a.base}/sites", json={"name": "一号厂区"}, headers=a.headers)
    assert site.status_code == 201, site.text
    meter = await client.post(
        f"{a.base}/meters",
        json={
            "site_id": site.json()["id"],
            "ref": "E-001",
            "kind": "electricity",
            "unit": "kWh",
            "pusher": "grid",
        },
        headers=a.headers,
    )
    assert meter.status_code == 201, meter.text

    # 3. A day of 15-minute register readings over the signed API: 97 readings, 96 intervals
    #    of 2.5 kWh = 240 kWh.
    readings = [
        {
            "meter": "E-001",
            "at": (DAY + i * timedelta(minutes=15)).isoformat(),
            "value": 5000 + 2.5 * i,
        }
        for i in range(97)
    ]
    body = msgspec.json.encode({"readings": readings})
    pushed = await client.post(METERS, content=body, headers=_signed(body))
    assert pushed.status_code == 200, pushed.text
    assert (pushed.json()["accepted"], pushed.json()["flagged"]) == (97, 0)
    months = await client.get(
        f"{a.base}/meter-months", params={"start": "2026-03-01", "end": "2026-04-01"},
        headers=a.headers,
    )  # fmt: skip
    assert [m["quantity"] for m in months.json()] == [240.0]

    # 4. March's report, as CSV: natural gas and the added value.
    csv = "kind,quantity,unit\nnatural_gas,100,m3\nadded_value,10,10k_CNY\n"
    uploaded = await client.post(
        f"{a.base}/activity-reports/csv",
        params={"period": "month", "period_start": "2026-03-01"},
        content=csv.encode(),
        headers={**a.headers, "Content-Type": "text/csv"},
    )
    assert uploaded.status_code == 200, uploaded.text
    status = (
        await client.get(f"{a.base}/activity-reports/{uploaded.json()['id']}", headers=a.headers)
    ).json()
    assert status["status"] == "current" and len(status["lines"]) == 2

    # 5. A carbon budget for March below what the data will show.
    march_budget = {
        "metric": "carbon_kg",
        "period_kind": "month",
        "period_start": "2026-03-01",
        "amount": 300.0,
    }
    budget = await client.put(f"{a.base}/budgets", json=march_budget, headers=a.headers)
    assert budget.status_code == 200, budget.text

    # 6. The worker recomputes what the data touched (the beat's task, its body on this loop).
    assert await tasks.recompute_touched_body(pool, settings) >= 5

    # 7. Emissions by month and energy kind, each with the factor it used.
    em = await client.get(f"{a.base}/emissions", params={"period": "2026-03"}, headers=a.headers)
    assert em.status_code == 200, em.text
    [march] = em.json()
    kinds = {k["kind"]: k for k in march["kinds"]}
    assert kinds["electricity"]["quantity"] == 240.0 and kinds["electricity"]["source"] == "meter"
    assert kinds["electricity"]["factor_ref"].startswith("grid:2023:national")
    assert kinds["electricity"]["emissions_kg"] == pytest.approx(240 * GRID_2023)
    assert kinds["natural_gas"]["source"] == "report"
    assert kinds["natural_gas"]["emissions_kg"] == pytest.approx(100 * GAS)
    total = 240 * GRID_2023 + 100 * GAS
    assert march["emissions_kg"] == pytest.approx(total)
    assert march["scope1_kg"] == pytest.approx(100 * GAS)

    # 8. The grade of 2026 and its explanation: inputs, benchmark, factor versions.
    g = await client.get(f"{a.base}/grade", params={"year": 2026}, headers=a.headers)
    assert g.status_code == 200, g.text
    explained = g.json()
    grade = explained["assessment"]["grade"]
    intensity = total / 1000 / 10
    benchmark = (4 * PEER_KWH * GRID_2023 / 1000 + total / 1000) / 50
    assert grade["peers"] == 5 and grade["industry"] == "C26"
    assert grade["intensity"] == pytest.approx(intensity, rel=1e-6)
    assert grade["benchmark"] == pytest.approx(benchmark, rel=1e-6)
    assert grade["k"] == pytest.approx(round(intensity / benchmark, 4))
    assert (grade["grade"], grade["colour"], grade["band"], grade["rank"]) == (
        1,
        "dark_green",
        "low",
        1,
    )
    assert any(f.startswith("grid:2023:national") for f in explained["factors"])
    assert explained["added_value"] == 10.0

    # 9. The budget was crossed: an alert at 90 % and one at 100 %, raised once each.
    alerts = (await client.get(f"{a.base}/alerts", headers=a.headers)).json()
    assert sorted((x["threshold"], x["state"]) for x in alerts) == [
        (0.9, "raised"),
        (1.0, "raised"),
    ]
    assert all(x["projected"] == pytest.approx(total) for x in alerts)  # March is over
    assert await tasks.recompute_touched_body(pool, settings) == 0  # nothing left to redo
    assert len((await client.get(f"{a.base}/alerts", headers=a.headers)).json()) == 2

    # 10. The carbon account report, and its hash at the public API.
    issued = await client.post(
        f"{a.base}/carbon-reports", json={"period": "2026-03"}, headers=a.headers
    )
    assert issued.status_code == 201, issued.text
    pdf = await client.get(issued.json()["download"], headers=a.headers)
    digest = hashlib.sha256(pdf.content).hexdigest()
    assert pdf.content.startswith(b"%PDF-") and digest == issued.json()["sha256"]
    checked = await client.get(f"/api/public/v1/enterprise-reports/{digest}")
    assert checked.status_code == 200
    assert checked.json()["credit_code"] == a.enterprise.credit_code
    assert checked.json()["period"] == "2026-03"
