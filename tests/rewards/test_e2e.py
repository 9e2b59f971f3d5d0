"""Issue 11 end to end through the real app: a resident earns points from an operator's trip,
redeems a coupon, the merchant confirms it over the signed API, the settlement statement shows
it, the resident donates to a project, and the public endpoint's certificate verifies offline.
The ledger's audit passes afterwards (the ``clean_stores`` fixture)."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from litestar.testing import AsyncTestClient

from kit.auth import Role, sign_request
from kit.db import transaction
from points import journal, verify, witness
from server.app import SURFACES, create_app
from server.mobile import rewards_routes
from server.settings import Settings
from tests.behaviours.factories import SECRET, link, operator
from tests.residents.factories import resident
from tests.rewards import factories as rewards_factories
from tests.rewards.factories import project

ROOT = Path(__file__).resolve().parents[2]
M, OPS, SHOP, PUB = "/api/mobile/v1", "/api/operators/v1", "/api/merchants/v1", "/api/public/v1"
SHOP_ID, SHOP_KEY, SHOP_SECRET = "green-cafe", "gk1", "green-cafe-secret-0123456789abcdef"


def _app(settings: Settings) -> Any:
    # The resident's redemption routes, whether or not SURFACES lists them yet.
    extra = rewards_routes.rewards_mobile_router
    surfaces = SURFACES if extra in SURFACES else (*SURFACES, extra)
    return create_app(settings, surfaces=surfaces)


async def signed(client: Any, method: str, path: str, body: bytes, *, key: str | None = None):
    headers = sign_request(SHOP_SECRET, method, path, body, operator_id=SHOP_ID, key_id=SHOP_KEY)
    headers = {**headers, "content-type": "application/json"}
    if key:
        headers["Idempotency-Key"] = key
    if method == "GET":
        return await client.get(path, headers=headers)
    return await client.post(path, content=body, headers=headers)


async def test_earn_redeem_confirm_settle_donate_verify(pool, settings, jwt_keys, tmp_path):
    now = datetime.now(UTC).replace(microsecond=0)
    await operator(pool, "metro")
    rid = await resident(pool, "440305")
    subject = await link(pool, rid, "metro")
    cfg = rewards_factories.config(settings)
    await rewards_factories.merchant(pool, cfg, SHOP_ID, key=(SHOP_KEY, SHOP_SECRET))
    item = await rewards_factories.coupon_item(
        pool,
        cfg,
        SHOP_ID,
        ["CAFE0001"],
        title="Green coffee",
        cost_points=10,
        active_from=now - timedelta(days=1),
        active_until=now + timedelta(days=30),
        visible_from=now - timedelta(days=1),
        visible_until=now + timedelta(days=30),
        validity_s=86400,
    )
    p = await project(pool, title="Mangroves", target_amount=1_000)
    me = {
        "Authorization": "Bearer "
        + jwt_keys.issue(rid, Role.RESIDENT, 600, extra={"typ": "access"})
    }

    async with AsyncTestClient(app=_app(settings), raise_server_exceptions=False) as client:
        # 1. The operator pushes a signed metro trip: verified, credited.
        start = now - timedelta(hours=3)
        trip = {
            "type": "transit_trip",
            "record_id": "e2e-trip-1",
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
        earned = verdict["points"]
        assert earned > 10
        summary = (await client.get(f"{M}/summary", headers=me)).json()
        assert summary["points_available"] == earned

        # 2. The resident redeems the coupon (the same key twice: one reward).
        keyed = {**me, "Idempotency-Key": "redeem-coffee"}
        r = await client.post(f"{M}/redemptions", json={"item_id": item.id}, headers=keyed)
        assert r.status_code == 201, r.text
        reward = r.json()
        again = await client.post(f"{M}/redemptions", json={"item_id": item.id}, headers=keyed)
        assert again.json()["id"] == reward["id"]
        assert reward["code"] == "CAFE0001" and reward["status"] == "issued"
        summary = (await client.get(f"{M}/summary", headers=me)).json()
        assert (summary["points_on_hold"], summary["points_available"]) == (10, earned - 10)

        # 3. The merchant confirms it at the till over the signed API (masked answer).
        code = json.dumps({"code": reward["code"]}).encode()
        r = await signed(client, "POST", f"{SHOP}/rewards/confirm", code, key="till-1")
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "used" and "CAFE0001" not in r.text

        # 4. The settlement statement shows it.
        day = now.astimezone(ZoneInfo(settings.timezone))  # statements' dates: programme's
        start_d, end_d = day.date().isoformat(), (day.date() + timedelta(days=1)).isoformat()
        r = await signed(client, "GET", f"{SHOP}/statements?start={start_d}&end={end_d}", b"")
        assert r.status_code == 200, r.text
        statement = r.json()
        assert (statement["confirmed_count"], statement["confirmed_points"]) == (1, 10)
        assert [line["reward_id"] for line in statement["lines"]] == [reward["id"]]

        # 5. The resident donates what is left to a project.
        left = earned - 10
        r = await client.post(
            f"{M}/projects/{p.id}/donations",
            json={"asset": "POINT", "amount": left},
            headers={**me, "Idempotency-Key": "give-all"},
        )
        assert r.status_code == 201, r.text
        donation = r.json()
        summary = (await client.get(f"{M}/summary", headers=me)).json()
        assert (summary["points_available"], summary["points_on_hold"]) == (0, 0)

        # 6. Sealed (the periodic sealer's work), the public certificate verifies offline.
        async with transaction(pool) as tx:
            await journal.seal(tx)
        r = await client.get(donation["certificate_url"])  # no login
        assert r.status_code == 200, r.text
        cert = r.json()
        assert cert["status"] == "sealed" and cert["amount"] == left
        assert rid not in r.text and subject not in r.text
        block = (await client.get(f"{PUB}/journal/blocks/{cert['block']['seq']}")).json()
        assert block == cert["block"]
        page = (await client.get(f"{PUB}/projects/{p.id}")).json()
        assert (page["points_donated"], page["donors"]) == (left, 1)

    pinned = witness.public_key_b64(witness.settings_key(settings))
    ok, bad = verify.verify(cert, pinned)
    assert not bad and len(ok) == 7, (ok, bad)
    path = tmp_path / "certificate.json"
    path.write_text(json.dumps(cert), encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-I", str(ROOT / "points" / "verify.py"), str(path),
         "--public-key", pinned],
        capture_output=True, text=True, timeout=60, check=False, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"certificate {donation['serial']}: verified" in done.stdout
