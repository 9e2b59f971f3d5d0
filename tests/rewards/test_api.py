"""The rewards through the real app: the residents' mobile routes and the signed merchant API
(lookup, confirm, refund, settlement statements that reconcile to the ledger)."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from datetime import UTC, datetime, timedelta

from kit.auth import Role, sign_request
from points import service as ledger
from tests.points.factories import invariants
from tests.rewards.factories import (
    config,
    coupon_item,
    funded,
    item,
    live,
    merchant,
    points_of,
)

MOBILE = "/api/mobile/v1"
MERCHANTS = "/api/merchants/v1"
KEY_ID, SECRET = "k1", "merchant-secret-0123456789abcdef"


def bearer(jwt_keys, rid):
    token = jwt_keys.issue(rid, Role.RESIDENT, 3600, extra={"typ": "access"})
    return {"Authorization": f"Bearer {token}"}


def signed(merchant_id, method, path, body=b"", **extra):
    return {
        **sign_request(SECRET, method, path, body, operator_id=merchant_id, key_id=KEY_ID),
        **extra,
    }


async def mpost(client, merchant_id, path, payload, **headers):
    body = json.dumps(payload).encode()
    full = MERCHANTS + path
    return await client.post(
        full,
        content=body,
        headers=signed(merchant_id, "POST", full, body, **headers)
        | {"Content-Type": "application/json"},
    )


class TestMobile:
    async def test_catalogue_pages_filters_and_never_shows_codes(
        self, client, pool, settings, jwt_keys
    ):
        cfg = config(settings)
        m = await merchant(pool, cfg)
        for cost in (30, 10, 20):
            await item(pool, m.merchant.id, cost_points=cost, title=f"c{cost}", **live())
        await item(pool, m.merchant.id, title="elsewhere", districts=["440306"], **live())
        await item(
            pool,
            m.merchant.id,
            title="hidden",
            **(live() | {"visible_from": datetime.now(UTC) + timedelta(days=1)}),
        )
        rid = await funded(pool, cfg, 100)
        h = bearer(jwt_keys, rid)
        r = await client.get(f"{MOBILE}/catalogue", params={"limit": 2}, headers=h)
        assert r.status_code == 200, r.text
        first = r.json()
        assert [i["title"] for i in first["items"]] == ["c10", "c20"]
        r = await client.get(
            f"{MOBILE}/catalogue", params={"cursor": first["next_cursor"]}, headers=h
        )
        assert [i["title"] for i in r.json()["items"]] == ["c30"]
        assert r.json()["next_cursor"] is None
        r = await client.get(f"{MOBILE}/catalogue", params={"max_cost": 15}, headers=h)
        assert [i["title"] for i in r.json()["items"]] == ["c10"]
        r = await client.get(f"{MOBILE}/catalogue", params={"cursor": "bm9wZQ"}, headers=h)
        assert r.status_code == 400 and r.json()["code"] == "cursor_invalid"
        one = first["items"][0]
        r = await client.get(f"{MOBILE}/catalogue/{one['id']}", headers=h)
        assert r.status_code == 200 and r.json()["redeemable_now"] is True
        pool_codes = ["SECRET-AAA-111", "SECRET-BBB-222"]
        coupon = await coupon_item(pool, cfg, m.merchant.id, pool_codes, cost_points=5, **live())
        listed = await client.get(f"{MOBILE}/catalogue", params={"kind": "coupon_code"}, headers=h)
        assert [i["id"] for i in listed.json()["items"]] == [coupon.id]
        assert listed.json()["items"][0]["remaining"] == 2
        shown = await client.get(f"{MOBILE}/catalogue/{coupon.id}", headers=h)
        for text in (listed.text, shown.text):
            assert "SECRET" not in text.upper().replace("-", "")
        r = await client.get(f"{MOBILE}/catalogue/00000000-0000-0000-0000-000000000000", headers=h)
        assert r.status_code == 404 and r.json()["code"] == "item_not_found"
        r = await client.get(f"{MOBILE}/catalogue", headers={})
        assert r.status_code == 401

    async def test_same_idempotency_key_three_times_issues_one_reward(
        self, client, pool, settings, jwt_keys
    ):
        cfg = config(settings)
        m = await merchant(pool, cfg)
        it = await item(pool, m.merchant.id, cost_points=100, **live())
        rid = await funded(pool, cfg, 1000)
        h = bearer(jwt_keys, rid) | {"Idempotency-Key": "redeem-1"}
        answers = await asyncio.gather(
            *(
                client.post(f"{MOBILE}/redemptions", json={"item_id": it.id}, headers=h)
                for _ in range(3)
            )
        )
        assert [a.status_code for a in answers] == [201, 201, 201], answers[0].text
        assert len({a.json()["id"] for a in answers}) == 1
        again = await client.post(f"{MOBILE}/redemptions", json={"item_id": it.id}, headers=h)
        assert again.json() == answers[0].json()
        assert await points_of(pool, "resident", rid) == (1000, 100, 900)
        other = await item(pool, m.merchant.id, **live())
        r = await client.post(f"{MOBILE}/redemptions", json={"item_id": other.id}, headers=h)
        assert r.status_code == 409 and r.json()["code"] == "idempotency_key_reused"
        r = await client.post(
            f"{MOBILE}/redemptions", json={"item_id": it.id}, headers=bearer(jwt_keys, rid)
        )
        assert r.status_code == 400  # the key is required
        mine = await client.get(f"{MOBILE}/rewards", headers=bearer(jwt_keys, rid))
        rewards = mine.json()["rewards"]
        assert [x["id"] for x in rewards] == [answers[0].json()["id"]]
        assert rewards[0]["code"] == answers[0].json()["code"] and rewards[0]["status"] == "issued"

    async def test_refusals_are_problems_with_their_codes(self, client, pool, settings, jwt_keys):
        cfg = config(settings)
        m = await merchant(pool, cfg)
        it = await item(pool, m.merchant.id, cost_points=500, total_stock=1, **live())
        poor = await funded(pool, cfg, 100)
        r = await client.post(
            f"{MOBILE}/redemptions",
            json={"item_id": it.id},
            headers=bearer(jwt_keys, poor) | {"Idempotency-Key": "a"},
        )
        assert r.status_code == 422 and r.json()["code"] == "insufficient_points"
        assert r.headers["content-type"].startswith("application/problem+json")
        rich = await funded(pool, cfg, 1000)
        for key, status, code in (("b", 201, None), ("c", 409, "out_of_stock")):
            r = await client.post(
                f"{MOBILE}/redemptions",
                json={"item_id": it.id},
                headers=bearer(jwt_keys, rich) | {"Idempotency-Key": key},
            )
            assert r.status_code == status
            assert code is None or r.json()["code"] == code
        reward = (await client.get(f"{MOBILE}/rewards", headers=bearer(jwt_keys, rich))).json()
        rid = reward["rewards"][0]["id"]
        r = await client.post(f"{MOBILE}/rewards/{rid}/cancel", headers=bearer(jwt_keys, poor))
        assert r.status_code == 404 and r.json()["code"] == "reward_not_found"
        r = await client.post(f"{MOBILE}/rewards/{rid}/cancel", headers=bearer(jwt_keys, rich))
        assert r.status_code == 200 and r.json()["status"] == "cancelled"
        assert await points_of(pool, "resident", rich) == (1000, 0, 1000)


class TestMerchantApi:
    async def test_signed_lookup_confirm_refund_and_statement(
        self, client, pool, settings, jwt_keys
    ):
        cfg = config(settings)
        m = await merchant(pool, cfg, key=(KEY_ID, SECRET))
        mid = m.merchant.id
        it = await item(pool, mid, cost_points=120, **live())
        rid = await funded(pool, cfg, 1000)
        codes = []
        for key in ("r1", "r2", "r3"):
            r = await client.post(
                f"{MOBILE}/redemptions",
                json={"item_id": it.id},
                headers=bearer(jwt_keys, rid) | {"Idempotency-Key": key},
            )
            codes.append(r.json())
        # Unsigned, or signed by nobody: refused before anything is read.
        r = await client.post(f"{MERCHANTS}/rewards/lookup", json={"code": codes[0]["code"]})
        assert r.status_code == 401 and r.json()["code"] == "signature_missing"
        r = await mpost(client, "nobody", "/rewards/lookup", {"code": codes[0]["code"]})
        assert r.status_code == 401 and r.json()["code"] == "signature_invalid"
        r = await mpost(client, mid, "/rewards/lookup", {"code": codes[0]["qr_payload"]})
        assert r.status_code == 200, r.text
        seen = r.json()
        assert seen["status"] == "issued" and "resident" not in r.text
        assert codes[0]["code"] not in r.text and seen["code_masked"].startswith("****")
        r = await mpost(client, mid, "/rewards/lookup", {"code": "NOPE-NOPE"})
        assert r.status_code == 404 and r.json()["code"] == "reward_not_found"
        r = await mpost(client, mid, "/rewards/lookup", {"code": 5})
        assert r.status_code == 400 and r.json()["code"] == "validation_failed"

        # Confirm twice with one Idempotency-Key: one answer; a new attempt: already used.
        first = await mpost(
            client, mid, "/rewards/confirm", {"code": codes[0]["code"]}, **{"Idempotency-Key": "c1"}
        )
        again = await mpost(
            client, mid, "/rewards/confirm", {"code": codes[0]["code"]}, **{"Idempotency-Key": "c1"}
        )
        assert first.status_code == again.status_code == 200 and first.json() == again.json()
        r = await mpost(client, mid, "/rewards/confirm", {"code": codes[0]["code"]})
        assert r.status_code == 409 and r.json()["code"] == "reward_already_used"
        for c in codes[1:]:
            assert (
                await mpost(client, mid, "/rewards/confirm", {"code": c["code"]})
            ).status_code == 200
        # Refund sent three times: one reversal.
        refunds = [
            await mpost(client, mid, "/rewards/refund", {"reward_id": codes[1]["id"]})
            for _ in range(3)
        ]
        assert [x.status_code for x in refunds] == [200, 200, 200]
        assert {x.json()["status"] for x in refunds} == {"refunded"}
        assert await points_of(pool, "merchant", mid) == (240, 0, 240)
        assert await points_of(pool, "resident", rid) == (760, 0, 760)

        today = datetime.now(cfg.zone).date()
        query = f"start={today - timedelta(days=1)}&end={today + timedelta(days=1)}"
        path = f"{MERCHANTS}/statements?{query}"
        r = await client.get(path, headers=signed(mid, "GET", path))
        assert r.status_code == 200, r.text
        st = r.json()
        assert (st["confirmed_count"], st["confirmed_points"]) == (3, 360)
        assert (st["refunded_count"], st["refunded_points"]) == (1, 120)
        assert st["net_points"] == 240
        # Reconciles to the ledger, to the point and transfer by transfer.
        page = await ledger.statement(pool, "merchant", mid, "POINT", cursor=None, limit=500)
        posted = {e.transfer_id: e.delta for e in page.entries if e.delta}
        assert {x["transfer_id"]: x["points"] for x in st["lines"]} == posted
        assert sum(posted.values()) == st["net_points"]
        assert (await ledger.balances(pool, "merchant", mid))[1].posted == st["net_points"]
        cpath = f"{MERCHANTS}/statements?{query}&format=csv"
        r = await client.get(cpath, headers=signed(mid, "GET", cpath))
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(r.text)))
        assert [x["event"] for x in rows[:-1]].count("confirmed") == 3
        assert rows[-1]["reward_id"] == "total" and int(rows[-1]["points"]) == 240
        bad = f"{MERCHANTS}/statements?start=2026-13-01&end=2026-12-01"
        r = await client.get(bad, headers=signed(mid, "GET", bad))
        assert r.status_code == 400 and r.json()["code"] == "period_invalid"
        # Another merchant sees none of it.
        other = await merchant(pool, cfg, key=(KEY_ID, SECRET))
        r = await mpost(client, other.merchant.id, "/rewards/lookup", {"code": codes[0]["code"]})
        assert r.status_code == 404
        r = await mpost(client, other.merchant.id, "/rewards/refund", {"reward_id": codes[0]["id"]})
        assert r.status_code == 404
        async with pool.acquire() as conn:
            await invariants(conn)
