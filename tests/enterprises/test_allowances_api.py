"""Targets and emission rights through the served app: the government's routes (target,
allocation, periods, transfers, close; GOV_ADMIN, audited, Idempotency-Key) and the enterprise
API's (allowance, offers, purchase, transfers, compliance, surrender). A purchase replayed with
its key answers the first answer; another purchase of the sold offer is 409
``allowance_offer_not_open`` as problem+json."""

from __future__ import annotations

from datetime import date
from typing import Any

from tests.enterprises.accounting_factories import recorded, year_rows
from tests.enterprises.api import admin, signed_in
from tests.enterprises.test_allowances import CITY, YEAR
from tests.gov.factories import bearer, gov_user

GOV = "/api/gov/v1/admin/allowances"


def _key(headers: dict[str, str], key: str) -> dict[str, str]:
    return {**headers, "Idempotency-Key": key}


async def test_target_allocation_offer_purchase_and_records(
    client: Any, pool: Any, settings: Any
) -> None:
    seller = await signed_in(client, await admin(pool, 1))
    buyer = await signed_in(client, await admin(pool, 2))
    rows = year_rows(seller.enterprise.id, YEAR, {"electricity": 1000}) + year_rows(
        buyer.enterprise.id, YEAR, {"electricity": 2000}
    )
    await recorded(pool, rows, start=date(YEAR, 1, 1), end=date(YEAR + 1, 1, 1))
    _, token = await gov_user(pool, settings, role="gov_admin")
    gov = bearer(token)

    target = {"region_code": CITY, "year": YEAR, "target_g": 20_000_000}
    r = await client.post(f"{GOV}/targets", json=target, headers=_key(gov, "t1"))
    assert r.status_code == 201, r.text
    assert r.json()["unallocated_g"] == 20_000_000
    again = await client.post(f"{GOV}/targets", json=target, headers=_key(gov, "t1"))
    assert (again.status_code, again.json()) == (201, r.json())
    other = {**target, "target_g": 1}
    r = await client.post(f"{GOV}/targets", json=other, headers=_key(gov, "t1"))
    assert (r.status_code, r.json()["code"]) == (409, "idempotency_key_reused")
    r = await client.post(f"{GOV}/targets", json=target, headers=gov)  # no key
    assert r.status_code == 400

    lines = [
        {"enterprise_id": str(seller.enterprise.id), "amount_g": 10_000_000},
        {"enterprise_id": str(buyer.enterprise.id), "amount_g": 1_000_000},
    ]
    body = {"region_code": CITY, "year": YEAR, "method": "manual", "lines": lines}
    r = await client.post(f"{GOV}/allocations", json=body, headers=_key(gov, "a1"))
    assert r.status_code == 201, r.text
    assert r.json()["amount_g"] == 11_000_000
    too_much = {**body, "lines": [{**lines[0], "amount_g": 9_000_001}]}
    r = await client.post(f"{GOV}/allocations", json=too_much, headers=_key(gov, "a2"))
    assert (r.status_code, r.json()["code"]) == (422, "allowance_exceeds_target")
    assert r.headers["content-type"].startswith("application/problem+json")
    wrong = {**body, "base_years": [2024]}
    r = await client.post(f"{GOV}/allocations", json=wrong, headers=_key(gov, "a3"))
    assert (r.status_code, r.json()["code"]) == (400, "validation_failed")

    r = await client.get(f"{seller.base}/allowance", params={"year": YEAR}, headers=seller.headers)
    assert r.status_code == 200, r.text
    assert {k: r.json()[k] for k in ("allocated_g", "held_g", "emissions_g", "surplus_g")} == {
        "allocated_g": 10_000_000,
        "held_g": 10_000_000,
        "emissions_g": 6_367_200,
        "surplus_g": 3_632_800,
    }
    offer_body = {"year": YEAR, "quantity_g": 2_000_000, "price_fen_per_t": 5137}
    r = await client.post(
        f"{seller.base}/allowance/offers", json=offer_body, headers=_key(seller.headers, "o1")
    )
    assert r.status_code == 201, r.text
    offer = r.json()
    big = {**offer_body, "quantity_g": 3_000_000}
    r = await client.post(
        f"{seller.base}/allowance/offers", json=big, headers=_key(seller.headers, "o2")
    )
    assert (r.status_code, r.json()["code"]) == (422, "allowance_surplus_insufficient")
    assert r.json()["extra"] == {"surplus_g": 1_632_800}

    r = await client.get(f"{buyer.base}/allowance/offers", headers=buyer.headers)
    assert [o["id"] for o in r.json()["items"]] == [offer["id"]]
    buy = f"{buyer.base}/allowance/offers/{offer['id']}/purchase"
    r = await client.post(buy, headers=_key(buyer.headers, "b1"))
    assert r.status_code == 201, r.text
    assert (r.json()["status"], r.json()["buyer_id"]) == ("sold", str(buyer.enterprise.id))
    replay = await client.post(buy, headers=_key(buyer.headers, "b1"))
    assert (replay.status_code, replay.json()) == (201, r.json())
    r = await client.post(buy, headers=_key(buyer.headers, "b2"))
    assert (r.status_code, r.json()["code"]) == (409, "allowance_offer_not_open")
    own = f"{seller.base}/allowance/offers/{offer['id']}/purchase"
    r = await client.post(own, headers=_key(seller.headers, "b3"))
    assert (r.status_code, r.json()["code"]) == (409, "allowance_offer_not_open")

    for side in (seller, buyer):
        r = await client.get(f"{side.base}/allowance/transfers", headers=side.headers)
        assert [t["id"] for t in r.json()["items"]] == [offer["id"]]
    r = await client.get(f"{GOV}/transfers", params={"year": YEAR}, headers=gov)
    assert r.status_code == 200, r.text
    assert [t["id"] for t in r.json()["items"]] == [offer["id"]]

    r = await client.get(
        f"{buyer.base}/allowance/compliance", params={"year": YEAR}, headers=buyer.headers
    )
    assert r.status_code == 200, r.text
    assert {k: r.json()[k] for k in ("held_g", "emissions_g", "shortfall_g", "status")} == {
        "held_g": 3_000_000,
        "emissions_g": 12_734_400,
        "shortfall_g": 9_734_400,
        "status": "short",
    }
    r = await client.post(
        f"{seller.base}/allowance/surrender",
        json={"year": YEAR},
        headers=_key(seller.headers, "s1"),
    )
    assert r.status_code == 201, r.text
    assert r.json()["surrendered_g"] == 6_367_200

    r = await client.post(
        f"{GOV}/periods/close", json={"region_code": CITY, "year": YEAR}, headers=_key(gov, "c1")
    )
    assert r.status_code == 200, r.text
    assert r.json()["period"]["status"] == "closed"
    assert [s["surrendered_g"] for s in r.json()["surrenders"]] == [3_000_000]  # the buyer's
    r = await client.get(f"{GOV}/periods", headers=gov)
    assert [(p["region_code"], p["status"]) for p in r.json()] == [(CITY, "closed")]
    r = await client.get(
        f"{GOV}/allocations", params={"region_code": CITY, "year": YEAR}, headers=gov
    )
    assert [a["method"] for a in r.json()] == ["manual"]
    r = await client.get("/api/gov/v1/admin/audit", params={"action": "allowance"}, headers=gov)
    assert [e["action"] for e in r.json()] == [
        "allowance.close",
        "allowance.allocate",
        "allowance.target",
    ]
    # Enterprises are not government: the admin routes refuse their tokens.
    r = await client.get(f"{GOV}/periods", headers=seller.headers)
    assert r.status_code in (401, 403)
