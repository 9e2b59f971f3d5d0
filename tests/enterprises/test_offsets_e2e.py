"""Issue 13's offsets end to end through the real app: residents' metro trips are verified and
credited; an administrator pools the year's grams into a serial block over the gov admin API
(audited); an enterprise buys some and retires them against the year over the enterprise API;
the public certificate verifies offline (the stand-alone verifier in a subprocess); the
enterprise's net emissions and the region's enterprise totals show the offset once, and the
residents' grams stay counted once. The ledger audit passes afterwards (``clean_stores``)."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from enterprises.factors import Basis
from kit.auth import sign_request
from kit.db import transaction
from points import journal, verify, witness
from reporting import reports, rollups
from server.settings import Settings
from tests.behaviours.factories import SECRET, link, operator
from tests.enterprises.accounting_factories import enterprises, recorded, year_rows
from tests.enterprises.api import admin, signed_in
from tests.gov.factories import bearer, gov_user
from tests.residents.factories import resident

ROOT = Path(__file__).resolve().parents[2]
OPS, PUB, GOV = "/api/operators/v1", "/api/public/v1", "/api/gov/v1/admin"


async def _trip(client: Any, subject: str, n: int, start: datetime) -> int:
    trip = {
        "type": "transit_trip",
        "record_id": f"offsets-e2e-{n}",
        "subject": subject,
        "mode": "metro",
        "boarded_at": start.isoformat(),
        "alighted_at": (start + timedelta(minutes=25)).isoformat(),
        "distance_m": 12_000,
    }
    body = json.dumps({"events": [trip]}).encode()
    path = f"{OPS}/events"
    headers = sign_request(SECRET, "POST", path, body, operator_id="metro", key_id="k1")
    r = await client.post(
        path, content=body, headers={**headers, "content-type": "application/json"}
    )
    assert r.status_code == 200, r.text
    [verdict] = r.json()["results"]
    assert verdict["status"] == "accepted", verdict
    grams: int = verdict["reduction_g"]
    return grams


async def test_trips_pooled_bought_retired_certified_netted(
    pool: Any, settings: Settings, client: Any, tmp_path: Path
):
    zone = ZoneInfo(settings.timezone)
    now = datetime.now(UTC).replace(microsecond=0)
    year = now.astimezone(zone).year
    await operator(pool, "metro")
    # 1. Two residents' metro trips, verified and credited.
    verified = 0
    for n in range(2):
        rid = await resident(pool, "440305")
        subject = await link(pool, rid, "metro")
        start = now - timedelta(hours=3 + n)
        if start.astimezone(zone).year != year:  # the first hours of a year: keep the vintage
            start = now - timedelta(minutes=40 + n)
        verified += await _trip(client, subject, n, start)
    assert verified > 0

    # 2. An administrator pools them (audited); the same key again answers the same block.
    _, token = await gov_user(pool, settings, role="gov_admin")
    gov = {**bearer(token), "Idempotency-Key": "pool-1"}
    body = {"methodology": "low-carbon-travel", "vintage": year}
    r = await client.post(f"{GOV}/offsets/issuances", json=body, headers=gov)
    assert r.status_code == 201, r.text
    block = r.json()
    assert (block["serial_start"], block["serial_end"], block["amount"]) == (1, verified, verified)
    again = await client.post(f"{GOV}/offsets/issuances", json=body, headers=gov)
    assert again.json() == block
    r = await client.post(f"{GOV}/offsets/issuances", json=body, headers=bearer(token))
    assert r.status_code == 400, r.text  # the key is required
    listed = (await client.get(f"{GOV}/offsets/issuances", headers=bearer(token))).json()
    assert listed == [block]
    entries = (await client.get(f"{GOV}/audit?action=offsets", headers=bearer(token))).json()
    assert [(e["action"], e["target"]) for e in entries] == [("offsets.issue", str(block["id"]))]

    # 3. Three enterprises with a year of emissions; the first buys and retires.
    a = await signed_in(client, await admin(pool, 1))
    ids = [a.enterprise.id, *await enterprises(pool, 2, first=2)]
    rows = [r for e in ids for r in year_rows(e, year, {"electricity": 10_000.0})]
    await recorded(
        pool,
        rows,
        start=date(year, 1, 1),
        end=date(year + 1, 1, 1),
        basis=Basis.of(settings.enterprises),
        enterprise_ids=ids,
    )
    bought = verified - 1
    keyed = {**a.headers, "Idempotency-Key": "buy-1"}
    order = {"quantity_g": bought, "price_yuan_per_t": 62.5}
    r = await client.post(f"{a.base}/offsets/purchases", json=order, headers=keyed)
    assert r.status_code == 201, r.text
    purchase = r.json()
    assert [(s["start"], s["end"]) for s in purchase["serials"]] == [(1, bought)]
    assert (await client.post(f"{a.base}/offsets/purchases", json=order, headers=keyed)).json() == (
        purchase
    )
    r = await client.post(
        f"{a.base}/offsets/purchases",
        json={"quantity_g": 2, "price_yuan_per_t": 1},
        headers={**a.headers, "Idempotency-Key": "buy-2"},
    )
    assert r.status_code == 422 and r.json()["code"] == "offset_supply_short", r.text
    assert r.json()["extra"]["available_g"] == 1

    retired = bought - 1
    keyed = {**a.headers, "Idempotency-Key": "retire-1"}
    order = {"quantity_g": retired, "period": year}
    r = await client.post(f"{a.base}/offsets/retirements", json=order, headers=keyed)
    assert r.status_code == 201, r.text
    retirement = r.json()
    assert (
        await client.post(f"{a.base}/offsets/retirements", json=order, headers=keyed)
    ).json() == retirement
    r = await client.post(
        f"{a.base}/offsets/retirements",
        json={"quantity_g": 1, "period": year - 1},  # no emissions recorded that year
        headers={**a.headers, "Idempotency-Key": "retire-2"},
    )
    assert r.status_code == 422 and r.json()["code"] == "offset_cap_exceeded", r.text
    extra = r.json()["extra"]
    assert (extra["cap_g"], extra["used_g"], extra["requested_g"]) == (0, 0, 1)
    holdings = (await client.get(f"{a.base}/offsets/holdings", headers=a.headers)).json()
    assert (holdings["held_g"], holdings["retired_g"]) == (1, retired)
    listed = (await client.get(f"{a.base}/offsets/retirements", headers=a.headers)).json()
    assert [x["serial"] for x in listed] == [retirement["serial"]]

    # 4. Sealed, the public certificate verifies offline.
    async with transaction(pool) as tx:
        await journal.seal(tx)
    r = await client.get(retirement["certificate_url"])  # no login
    assert r.status_code == 200, r.text
    cert = r.json()
    assert cert["status"] == "sealed" and cert["amount"] == retired and cert["period"] == year
    assert cert["enterprise_name"] == a.enterprise.name
    assert [(s["start"], s["end"]) for s in cert["serials"]] == [(1, retired)]
    assert (
        await client.get(f"{PUB}/offsets/certificates/TPH-{year}-O-99999999")
    ).status_code == 404
    pinned = witness.public_key_b64(witness.settings_key(settings))
    ok, bad = verify.verify(cert, pinned)
    assert not bad and len(ok) == 8, (ok, bad)
    path = tmp_path / "certificate.json"
    path.write_text(json.dumps(cert, ensure_ascii=False), encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-I", str(ROOT / "points" / "verify.py"), str(path),
         "--public-key", pinned],
        capture_output=True, text=True, timeout=60, check=False, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"certificate {cert['serial']}: verified" in done.stdout
    forged = {**cert, "serials": [{**cert["serials"][0], "end": retired + 1}]}
    assert verify.verify(forged, pinned)[1]  # other serials than the transfer's: refused

    # 5. The enterprise's net emissions: gross less the offset, once.
    r = await client.get(f"{a.base}/offsets/net?year={year}", headers=a.headers)
    assert r.status_code == 200, r.text
    net = r.json()
    assert net["offsets_retired_g"] == retired and net["gross_emissions_kg"] > 0
    assert abs(net["net_emissions_kg"] - (net["gross_emissions_kg"] - retired / 1000)) < 1e-3

    # 6. The region's enterprise totals count it once; residents' grams are counted once.
    async with transaction(pool) as tx:
        await rollups.refresh_enterprises(
            tx, [year], settings=settings.reporting, ent=settings.enterprises
        )
        first, last = date(year, 1, 1), now.astimezone(zone).date()
        await rollups.refresh_points(tx, first, last, timezone=settings.timezone)
    async with pool.acquire() as conn:
        table = await reports.enterprise_table(conn, "year", date(year, 1, 1), "district")
        assert table.total.offsets_t.value == round(retired / 1_000_000, 6)
        lines = await reports_points(conn, first, last)
    assert lines == (verified, 0)  # grams issued to residents once; no resident retired any


async def reports_points(conn: Any, first: date, last: date) -> tuple[int, int]:
    """(grams issued, grams retired by residents) of the points rollup over [first, last]."""
    from reporting import repository

    rows = await repository.points_rows(conn, first, last)
    return sum(int(r["grams_issued"]) for r in rows), sum(int(r["grams_retired"]) for r in rows)


async def test_issuances_are_for_administrators_only(pool: Any, settings: Settings, client: Any):
    _, analyst = await gov_user(pool, settings, role="gov_analyst")
    body = {"methodology": "low-carbon-travel", "vintage": 2026}
    keyed = {**bearer(analyst), "Idempotency-Key": "k"}
    r = await client.post(f"{GOV}/offsets/issuances", json=body, headers=keyed)
    assert r.status_code == 403, r.text
    assert (
        await client.get(f"{GOV}/offsets/issuances", headers=bearer(analyst))
    ).status_code == 403
    _, token = await gov_user(pool, settings, role="gov_admin")
    r = await client.post(
        f"{GOV}/offsets/issuances", json=body, headers={**bearer(token), "Idempotency-Key": "k"}
    )
    assert r.status_code == 422 and r.json()["code"] == "offset_pool_empty", r.text  # no trips
