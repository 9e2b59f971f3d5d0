"""End to end through the real app: sign in with a code -> link an operator -> the operator
pushes a signed trip -> credited in history and summary -> unlink -> a later trip is rejected
with the consent reason. Then export and deletion keep the ledger true."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from behaviours import service as behaviours
from kit.auth import sign_request
from kit.db import transaction
from server.settings import PrivacySettings
from tests.mobile.conftest import API, bearer, sign_in

SECRET = "metro-secret-0123456789abcdef"


async def push(client, subject: str, record_id: str, start: datetime):
    body = json.dumps(
        {
            "events": [
                {
                    "type": "transit_trip",
                    "record_id": record_id,
                    "subject": subject,
                    "mode": "metro",
                    "boarded_at": start.isoformat(),
                    "alighted_at": (start + timedelta(minutes=4)).isoformat(),
                    "distance_m": 3_000,
                }
            ]
        }
    ).encode()
    path = "/api/operators/v1/events"
    headers = sign_request(SECRET, "POST", path, body, operator_id="metro", key_id="k1")
    r = await client.post(
        path, content=body, headers={**headers, "content-type": "application/json"}
    )
    assert r.status_code == 200, r.text
    return r.json()["results"][0]


async def test_sign_in_link_trip_credited_unlink_rejected(mclient, upstreams, pool, redis):
    async with transaction(pool) as tx:
        await behaviours.register_operator(
            tx, "metro", name="Shenzhen Metro", kind="transit", region_code="440300"
        )
        await behaviours.add_signing_key(tx, "metro", "k1", SECRET, privacy=PrivacySettings())
    pair = await sign_in(mclient, upstreams)
    auth = bearer(pair)

    sources = (await mclient.get(f"{API}/data-sources", headers=auth)).json()
    assert [(s["operator_id"], s["linked"]) for s in sources] == [("metro", False)]
    assert sources[0]["scopes"] == ["transit"]  # what the operator may report
    r = await mclient.put(
        f"{API}/data-sources/metro/link", json={"scope": ["transit", "cycling"]}, headers=auth
    )
    assert (r.status_code, r.json()["code"]) == (400, "scope_not_offered"), r.text
    r = await mclient.put(
        f"{API}/data-sources/metro/link", json={"scope": ["transit"]}, headers=auth
    )
    assert r.status_code == 200, r.text
    link = r.json()
    assert link["linked"] and link["subject_ref"] and link["scope"] == ["transit"]

    first = await push(
        mclient, link["subject_ref"], "trip-1", datetime.now(UTC) + timedelta(seconds=1)
    )
    assert first["status"] == "accepted", (first["reason_code"], first.get("message"))
    assert first["reduction_g"] == 140

    history = (await mclient.get(f"{API}/history", headers=auth)).json()
    [item] = history["items"]
    assert item["status"] == "accepted"
    assert item["reduction_g"] == 140 and item["points"] == first["points"] > 0
    assert item["methodology_version"] == "low-carbon-travel@1"
    assert item["operator_id"] == "metro" and item["mode"] == "metro"
    summary = (await mclient.get(f"{API}/summary", headers=auth)).json()
    assert summary["total_reduction_g"] == 140
    assert summary["points_available"] == first["points"]
    assert summary["district_rank"] == 1 and summary["district_residents"] == 1
    assert summary["level"]["level"] == 1
    monthly = (await mclient.get(f"{API}/monthly", headers=auth)).json()["months"]
    assert [(m["mode"], m["trips"], m["reduction_g"]) for m in monthly] == [("metro", 1, 140)]

    r = await mclient.delete(f"{API}/data-sources/metro/link", headers=auth)
    assert r.status_code == 204
    later = await push(
        mclient,
        link["subject_ref"],
        "trip-2",
        datetime.now(UTC) + timedelta(minutes=4) - timedelta(minutes=3),
    )
    assert later["status"] == "rejected"
    assert later["reason_code"] == "consent_revoked"
    # Data that came without consent is kept only as the operator's verdict: not in my history.
    rejected = (await mclient.get(f"{API}/history?status=rejected", headers=auth)).json()["items"]
    assert rejected == []
    r = await mclient.delete(f"{API}/data-sources/metro/link", headers=auth)
    assert r.status_code == 404 and r.json()["code"] == "link_not_found"

    # Export: everything about me; then delete: the ledger keeps the grams under the pseudonym.
    export = (await mclient.get(f"{API}/me/export", headers=auth)).json()
    assert export["profile"]["phone_masked"] == "138****5678"
    assert len(export["history"]) == 1
    assert {e["asset"] for e in export["ledger"]} == {"CO2E_G", "POINT"}
    assert "13812345678" not in json.dumps(export)
    assert (await mclient.delete(f"{API}/me", headers=auth)).status_code == 204
    async with pool.acquire() as conn:
        kept = await conn.fetchval(
            "SELECT posted FROM ledger_accounts WHERE owner_type = 'resident' "
            "AND owner_id = $1 AND asset = 'CO2E_G'",
            pair["resident_id"],
        )
        total = await conn.fetchval(
            "SELECT sum(posted) FROM ledger_accounts WHERE asset = 'CO2E_G'"
        )
    assert kept == 140 and total == 0
    assert await redis.zscore("mobile:lb:440305", pair["resident_id"]) is None
