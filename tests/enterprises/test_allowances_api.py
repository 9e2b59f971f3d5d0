"""Targets and emission rights through the served app: the government's routes (target,
allocation, periods, transfers, close, approvals; GOV_ADMIN, audited, Idempotency-Key) and the
enterprise API's (allowance, offers, purchase, transfers, compliance, surrender). A purchase
replayed with its key answers the first answer; another purchase of the sold offer is 409
``allowance_offer_not_open`` as problem+json. In the default government approval mode a
purchase waits in ``pending_approval`` until an administrator approves or rejects it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date
from typing import Any

import msgspec
import pytest
from litestar.testing import AsyncTestClient

from server.app import create_app
from tests.enterprises.accounting_factories import recorded, year_rows
from tests.enterprises.api import admin, signed_in
from tests.enterprises.test_allowances import CITY, YEAR
from tests.gov.factories import bearer, gov_user

GOV = "/api/gov/v1/admin/allowances"


def _key(headers: dict[str, str], key: str) -> dict[str, str]:
    return {**headers, "Idempotency-Key": key}


@pytest.fixture
async def automatic(settings: Any) -> AsyncIterator[Any]:
    """The app with TANPUHUI_ENTERPRISES_ALLOWANCE_APPROVAL=automatic (purchases settle at once);
    the session's ``client`` has the default, government approval."""
    mode = msgspec.structs.replace(settings.enterprises, allowance_approval="automatic")
    app = create_app(msgspec.structs.replace(settings, enterprises=mode))
    async with AsyncTestClient(app=app, raise_server_exceptions=False) as c:
        yield c


async def test_target_allocation_offer_purchase_and_records(
    automatic: Any, pool: Any, settings: Any
) -> None:
    client = automatic
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


async def test_government_approval_through_the_app(client: Any, pool: Any, settings: Any) -> None:
    seller = await signed_in(client, await admin(pool, 1))
    buyer = await signed_in(client, await admin(pool, 2))
    rows = year_rows(seller.enterprise.id, YEAR, {"electricity": 1000})
    await recorded(pool, rows, start=date(YEAR, 1, 1), end=date(YEAR + 1, 1, 1))
    _, token = await gov_user(pool, settings, role="gov_admin")
    gov = bearer(token)
    target = {"region_code": CITY, "year": YEAR, "target_g": 20_000_000}
    assert (await client.post(f"{GOV}/targets", json=target, headers=_key(gov, "t"))).is_success
    lines = [{"enterprise_id": str(seller.enterprise.id), "amount_g": 10_000_000}]
    body = {"region_code": CITY, "year": YEAR, "method": "manual", "lines": lines}
    assert (await client.post(f"{GOV}/allocations", json=body, headers=_key(gov, "a"))).is_success
    offers = []
    for i in range(2):
        r = await client.post(
            f"{seller.base}/allowance/offers",
            json={"year": YEAR, "quantity_g": 1_000_000, "price_fen_per_t": 5137},
            headers=_key(seller.headers, f"o{i}"),
        )
        assert r.status_code == 201, r.text
        offers.append(r.json()["id"])

    # The purchase: legality checked, then pending (nothing moves yet), both sides see it.
    for i, offer in enumerate(offers):
        r = await client.post(
            f"{buyer.base}/allowance/offers/{offer}/purchase", headers=_key(buyer.headers, f"b{i}")
        )
        assert r.status_code == 201, r.text
        assert (r.json()["status"], r.json()["buyer_id"]) == (
            "pending_approval",
            str(buyer.enterprise.id),
        )
        assert r.json()["approval"]["status"] == "pending"
    for side in (seller, buyer):
        r = await client.get(f"{side.base}/allowance/transfers", headers=side.headers)
        assert sorted(t["status"] for t in r.json()["items"]) == ["pending_approval"] * 2
    r = await client.post(
        f"{seller.base}/allowance/offers/{offers[0]}/withdraw", headers=_key(seller.headers, "w")
    )
    assert (r.status_code, r.json()["code"]) == (409, "allowance_offer_not_open")
    r = await client.get(f"{GOV}/approvals", params={"year": YEAR}, headers=gov)
    assert r.status_code == 200, r.text
    assert [o["id"] for o in r.json()] == offers
    r = await client.get(f"{buyer.base}/allowance", params={"year": YEAR}, headers=buyer.headers)
    assert r.json()["held_g"] == 0

    # Approved (replayed with its key: the same answer); rejected with a reason.
    approve = f"{GOV}/approvals/{offers[0]}/approve"
    r = await client.post(approve, headers=gov)
    assert r.status_code == 400  # the key is required
    r = await client.post(approve, headers=_key(gov, "ap"))
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "sold" and r.json()["transfer_id"]
    assert (await client.post(approve, headers=_key(gov, "ap"))).json() == r.json()
    r = await client.post(approve, headers=_key(gov, "ap2"))
    assert (r.status_code, r.json()["code"]) == (409, "allowance_approval_not_pending")
    assert r.headers["content-type"].startswith("application/problem+json")
    reject = f"{GOV}/approvals/{offers[1]}/reject"
    r = await client.post(reject, json={"reason": ""}, headers=_key(gov, "rj0"))
    assert (r.status_code, r.json()["code"]) == (400, "validation_failed")
    r = await client.post(reject, json={"reason": "价格待核实"}, headers=_key(gov, "rj"))
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["approval"]["reason"]) == ("open", "价格待核实")

    r = await client.get(f"{buyer.base}/allowance", params={"year": YEAR}, headers=buyer.headers)
    assert r.json()["held_g"] == 1_000_000
    r = await client.get(f"{buyer.base}/allowance/transfers", headers=buyer.headers)
    told = {t["id"]: (t["status"], t["approval"]["status"]) for t in r.json()["items"]}
    assert told == {offers[0]: ("sold", "approved"), offers[1]: ("open", "rejected")}
    r = await client.get(f"{GOV}/transfers", params={"year": YEAR}, headers=gov)
    assert [t["id"] for t in r.json()["items"]] == [offers[0]]
    r = await client.get(f"{GOV}/approvals", headers=gov)
    assert r.json() == []
    r = await client.get("/api/gov/v1/admin/audit", params={"action": "allowance"}, headers=gov)
    assert [e["action"] for e in r.json()][:2] == ["allowance.reject", "allowance.approve"]
    r = await client.post(approve, headers=_key(seller.headers, "x"))
    assert r.status_code in (401, 403)
