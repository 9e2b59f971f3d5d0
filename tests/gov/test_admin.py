"""The administration API through the real app, each action checked in its owner's data and in
the audit log: government users, operators (register, change, suspend), signing keys (issue,
rotate with an overlap window, revoke: through the signed operator API), districts (GeoJSON),
GTFS feeds (zip: validated, replaced atomically), methodologies (draft, preview changes
nothing, publish makes a new version from its date, a published one is never edited),
merchants, projects and enterprises."""

from __future__ import annotations

import asyncio
import io
import uuid
import zipfile
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from behaviours import service as behaviours
from kit.auth import sign_request
from kit.db import transaction
from reporting import audit
from tests.behaviours.factories import DATA, linked, metro, now, operator, run
from tests.enterprises.factories import code
from tests.gov.factories import bearer, gov_user

API = "/api/gov/v1/admin"


class Admin:
    def __init__(self, user: Any, token: str) -> None:
        self.user = user
        self.headers = bearer(token)


@pytest.fixture
async def adm(pool, settings) -> Admin:
    user, token = await gov_user(pool, settings, role="gov_admin")
    return Admin(user, token)


async def entries(pool, **kw) -> list[audit.AuditEntry]:
    async with pool.acquire() as conn:
        return await audit.entries(conn, **kw)


async def signed_get(client, key_id: str, secret: str, op: str = "bus-co") -> int:
    path = f"/api/operators/v1/files/{uuid.uuid4()}"
    headers = sign_request(secret, "GET", path, b"", operator_id=op, key_id=key_id)
    r = await client.get(path, headers=headers)
    # 404: past the signature (the file does not exist); 401: the signature was refused.
    assert r.status_code in (401, 404), r.text
    return r.status_code


class TestUsers:
    async def test_add_list_disable_with_the_audit_trail(self, client, pool, adm):
        body = {
            "login": "analyst.chen",
            "display_name": "陈分析",
            "role": "gov_analyst",
            "password": "a long enough password",
        }
        r = await client.post(f"{API}/users", json=body, headers=adm.headers)
        assert r.status_code == 201, r.text
        made = r.json()
        assert made["totp_uri"].startswith("otpauth://totp/") and made["totp_secret"]
        uid = made["user"]["id"]
        r = await client.post(f"{API}/users", json=body, headers=adm.headers)
        assert (r.status_code, r.json()["code"]) == (409, "gov_login_taken")
        listed = (await client.get(f"{API}/users", headers=adm.headers)).json()
        assert {u["login"] for u in listed} == {adm.user.login, "analyst.chen"}
        r = await client.patch(f"{API}/users/{uid}", json={"disabled": True}, headers=adm.headers)
        assert r.status_code == 200 and r.json()["disabled"] is True
        r = await client.patch(
            f"{API}/users/{adm.user.id}", json={"disabled": True}, headers=adm.headers
        )
        assert (r.status_code, r.json()["code"]) == (409, "gov_last_admin")
        log = await entries(pool, target=uid)
        assert [e.action for e in log] == ["gov_user.disable", "gov_user.add"]
        assert all(e.actor == str(adm.user.id) for e in log)
        assert log[0].before["disabled_at"] is None and log[0].after["disabled_at"] is not None
        assert "password" not in str(log[1].after) and made["totp_secret"] not in str(log[1].after)
        # The audit log is readable through the API, newest first, with filters.
        r = await client.get(f"{API}/audit", params={"target": uid}, headers=adm.headers)
        assert [e["action"] for e in r.json()] == ["gov_user.disable", "gov_user.add"]


class TestOperatorsAndKeys:
    async def test_register_change_suspend_and_resume(self, client, pool, adm):
        body = {"id": "bus-co", "name": "Bus Co", "kind": "transit"}
        r = await client.post(f"{API}/operators", json=body, headers=adm.headers)
        assert r.status_code == 201, r.text
        assert r.json()["region_code"] == "440300" and r.json()["suspended_at"] is None
        r = await client.post(f"{API}/operators", json=body, headers=adm.headers)
        assert (r.status_code, r.json()["code"]) == (409, "operator_exists")
        r = await client.patch(
            f"{API}/operators/bus-co", json={"kind": "platform"}, headers=adm.headers
        )
        assert r.status_code == 200 and r.json()["kind"] == "platform"
        r = await client.post(
            f"{API}/operators/bus-co/keys", json={"key_id": "k1"}, headers=adm.headers
        )
        assert r.status_code == 201, r.text
        secret = r.json()["secret"]
        assert await signed_get(client, "k1", secret) == 404
        r = await client.put(
            f"{API}/operators/bus-co/suspension", json={"suspended": True}, headers=adm.headers
        )
        assert r.status_code == 200 and r.json()["suspended_at"] is not None
        assert await signed_get(client, "k1", secret) == 401  # refused at once
        r = await client.put(
            f"{API}/operators/bus-co/suspension", json={"suspended": False}, headers=adm.headers
        )
        assert await signed_get(client, "k1", secret) == 404
        detail = (await client.get(f"{API}/operators/bus-co", headers=adm.headers)).json()
        assert [k["key_id"] for k in detail["keys"]] == ["k1"] and "secret" not in str(detail)
        assert "transit" in detail["consent_scopes"]
        actions = [e.action for e in await entries(pool, action="operator")]
        assert actions == [
            "operator.resume",
            "operator.suspend",
            "operator.key.issue",
            "operator.change",
            "operator.register",
        ]
        change = (await entries(pool, action="operator.change"))[0]
        assert (change.before["kind"], change.after["kind"]) == ("transit", "platform")
        r = await client.get(f"{API}/operators/nobody", headers=adm.headers)
        assert (r.status_code, r.json()["code"]) == (404, "unknown_operator")

    async def test_scopes_registered_changed_audited_and_enforced(
        self, client, pool, settings, adm
    ):
        body = {"id": "maas", "name": "MaaS", "kind": "platform", "scopes": ["cycling"]}
        r = await client.post(f"{API}/operators", json=body, headers=adm.headers)
        assert r.status_code == 201 and r.json()["scopes"] == ["cycling"], r.text
        gateway = {"id": "plant-gw", "name": "Plant gateway", "kind": "utility", "scopes": []}
        r = await client.post(f"{API}/operators", json=gateway, headers=adm.headers)
        assert r.status_code == 201 and r.json()["scopes"] == []
        r = await client.post(
            f"{API}/operators",
            json={**body, "id": "odd", "scopes": ["flying"]},
            headers=adm.headers,
        )
        assert (r.status_code, r.json()["code"]) == (400, "validation_failed")
        _, subject = await linked(pool, "maas")
        [v] = await run(pool, settings, [metro(subject, "m1")], op_id="maas")
        assert v.reason_code == "scope_not_allowed"
        r = await client.patch(
            f"{API}/operators/maas", json={"scopes": ["transit", "cycling"]}, headers=adm.headers
        )
        assert r.status_code == 200 and r.json()["scopes"] == ["cycling", "transit"], r.text
        ride = metro(subject, "m2", start=now() - timedelta(hours=4))  # not overlapping m1
        [v] = await run(pool, settings, [ride], op_id="maas")
        assert v.status == "accepted"
        change = (await entries(pool, action="operator.change"))[0]
        assert (change.before["scopes"], change.after["scopes"]) == (
            ["cycling"],
            ["cycling", "transit"],
        )
        detail = (await client.get(f"{API}/operators/maas", headers=adm.headers)).json()
        assert detail["consent_scopes"] == ["cycling", "transit"]

    async def test_rotation_keeps_the_old_key_for_the_overlap_then_never(self, client, pool, adm):
        await client.post(
            f"{API}/operators",
            json={"id": "bus-co", "name": "Bus Co", "kind": "transit"},
            headers=adm.headers,
        )
        old = (
            await client.post(
                f"{API}/operators/bus-co/keys", json={"key_id": "k1"}, headers=adm.headers
            )
        ).json()["secret"]
        r = await client.post(
            f"{API}/operators/bus-co/keys/k1/rotate",
            json={"new_key_id": "k2", "overlap_s": 2},
            headers=adm.headers,
        )
        assert r.status_code == 201, r.text
        new = r.json()["secret"]
        assert r.json()["retiring"]["key_id"] == "k1" and r.json()["retiring"]["revoked_at"]
        # Inside the window both keys verify.
        assert await signed_get(client, "k1", old) == 404
        assert await signed_get(client, "k2", new) == 404
        await asyncio.sleep(2.5)
        # After it, only the new one.
        assert await signed_get(client, "k1", old) == 401
        assert await signed_get(client, "k2", new) == 404
        # Rotating a key that no longer verifies is refused.
        r = await client.post(
            f"{API}/operators/bus-co/keys/k1/rotate",
            json={"new_key_id": "k3", "overlap_s": 60},
            headers=adm.headers,
        )
        assert (r.status_code, r.json()["code"]) == (404, "signing_key_not_found")
        rotate = (await entries(pool, action="operator.key.rotate"))[0]
        assert rotate.before["old"]["revoked_at"] is None and rotate.after["old"]["revoked_at"]
        assert old not in str(rotate.after) and new not in str(rotate.after)

    async def test_revocation_is_immediate_even_inside_an_overlap(self, client, pool, adm):
        await client.post(
            f"{API}/operators",
            json={"id": "bus-co", "name": "Bus Co", "kind": "transit"},
            headers=adm.headers,
        )
        old = (
            await client.post(
                f"{API}/operators/bus-co/keys", json={"key_id": "k1"}, headers=adm.headers
            )
        ).json()["secret"]
        await client.post(
            f"{API}/operators/bus-co/keys/k1/rotate",
            json={"new_key_id": "k2", "overlap_s": 3600},
            headers=adm.headers,
        )
        assert await signed_get(client, "k1", old) == 404
        r = await client.post(f"{API}/operators/bus-co/keys/k1/revoke", headers=adm.headers)
        assert r.status_code == 200, r.text
        assert await signed_get(client, "k1", old) == 401
        r = await client.post(
            f"{API}/operators/bus-co/keys", json={"key_id": "k2"}, headers=adm.headers
        )
        assert (r.status_code, r.json()["code"]) == (409, "signing_key_exists")
        assert (await entries(pool, action="operator.key.revoke"))[0].target == "bus-co/k1"


class TestReferenceData:
    async def test_districts_upload_all_or_none(self, client, pool, adm):
        raw = (DATA / "districts.geojson").read_bytes()
        headers = {**adm.headers, "Content-Type": "application/geo+json"}
        r = await client.post(f"{API}/districts", content=raw, headers=headers)
        assert r.status_code == 200, r.text
        assert r.json()["imported"] == 2
        assert {d["code"] for d in r.json()["districts"]} == {"440303", "440304"}
        assert not any(d["replaced"] for d in r.json()["districts"])
        r = await client.post(f"{API}/districts", content=raw, headers=headers)
        assert all(d["replaced"] for d in r.json()["districts"])
        for bad in (b"{", b"[]", b'{"type": "FeatureCollection", "features": []}', b'{"type":1}'):
            r = await client.post(f"{API}/districts", content=bad, headers=headers)
            assert (r.status_code, r.json()["code"]) == (422, "districts_invalid"), (bad, r.text)
            assert r.headers["content-type"].startswith("application/problem+json")
        async with pool.acquire() as conn:
            assert await behaviours.district_count(conn) == 2
        log = await entries(pool, action="districts.import")
        assert len(log) == 2 and log[0].before == {"440303": "罗湖区", "440304": "福田区"}

    async def test_gtfs_zip_is_validated_and_replaced_atomically(self, client, pool, adm):
        def zipped(files: dict[str, bytes]) -> bytes:
            out = io.BytesIO()
            with zipfile.ZipFile(out, "w") as z:
                for name, content in files.items():
                    z.writestr(name, content)
            return out.getvalue()

        folder = DATA / "gtfs"
        files = {p.name: p.read_bytes() for p in folder.iterdir() if p.suffix == ".txt"}
        headers = {**adm.headers, "Content-Type": "application/zip"}
        r = await client.put(f"{API}/gtfs/city", content=zipped(files), headers=headers)
        assert r.status_code == 200, r.text
        counts = r.json()["counts"]
        assert counts["stops"] > 0 and counts["trips"] > 0
        # A broken feed (a stop time naming an unknown stop) is refused whole: the feed stays.
        lines = files["stop_times.txt"].decode().splitlines()
        header, first = lines[0].split(","), lines[1].split(",")
        first[header.index("stop_id")] = "no-such-stop"
        broken = {
            **files,
            "stop_times.txt": "\n".join([lines[0], ",".join(first), *lines[2:]]).encode(),
        }
        r = await client.put(f"{API}/gtfs/city", content=zipped(broken), headers=headers)
        assert (r.status_code, r.json()["code"]) == (422, "gtfs_invalid"), r.text
        assert r.json()["extra"]["issues"][0]["file"] == "stop_times.txt"
        r = await client.put(f"{API}/gtfs/city", content=b"not a zip", headers=headers)
        assert (r.status_code, r.json()["code"]) == (422, "gtfs_invalid")
        missing = {k: v for k, v in files.items() if k != "trips.txt"}
        r = await client.put(f"{API}/gtfs/city", content=zipped(missing), headers=headers)
        assert (r.status_code, r.json()["code"]) == (422, "gtfs_invalid")
        log = await entries(pool, action="gtfs.import")
        assert len(log) == 1 and log[0].after["counts"]["stops"] == counts["stops"]


def draft_body(factor: float = 20.0, days_ahead: int = 1, mode: str = "metro") -> dict[str, Any]:
    return {
        "code": "low-carbon-travel",
        "title": "Low-carbon travel, revised metro factor",
        "source": "Test: a revised grid factor",
        "effective_from": (datetime.now(UTC) + timedelta(days=days_ahead)).isoformat(),
        "factors": [
            {
                "mode": mode,
                "behaviour": "transit",
                "unit": "pkm",
                "factor_g": factor,
                "min_distance_m": 500,
                "max_distance_m": 120000,
                "max_speed_kmh": 120,
                "typical_trip_m": 20000,
                "source": "test",
            }
        ],
    }


class TestMethodologies:
    async def test_preview_changes_nothing_and_publish_makes_a_new_version(
        self, client, pool, settings, adm
    ):
        await operator(pool, "metro")
        _rid, subject = await linked(pool, "metro")
        verdicts = await run(
            pool,
            settings,
            [
                metro(subject, "r1"),
                metro(subject, "r2", distance_m=8000, start=now() - timedelta(hours=5)),
            ],
        )
        assert all(v.status == "accepted" for v in verdicts), verdicts
        async with pool.acquire() as conn:
            before = await behaviours.methodologies(conn)
        r = await client.post(f"{API}/methodology-drafts", json=draft_body(), headers=adm.headers)
        assert r.status_code == 201, r.text
        draft = r.json()
        r = await client.get(
            f"{API}/methodology-drafts/{draft['id']}/preview",
            params={"days": 7},
            headers=adm.headers,
        )
        assert r.status_code == 200, r.text
        p = r.json()
        (m,) = [x for x in p["by_mode"] if x["mode"] == "metro"]
        assert m["events"] == 2 and m["current_g"] > 0
        # 46.7 g/pkm now, 20 g/pkm drafted: each event scaled by 20/46.7.
        assert abs(m["draft_g"] - m["current_g"] * 20 / 46.7) <= 2
        assert m["change_g"] == m["draft_g"] - m["current_g"] < 0
        assert p["by_mode_and_district"][0]["district"]
        async with pool.acquire() as conn:
            assert await behaviours.methodologies(conn) == before  # preview wrote nothing
        assert [e.action for e in await entries(pool, action="methodology")] == [
            "methodology.draft"
        ]
        # Publish: the next version of the code, effective from the draft's date.
        r = await client.post(
            f"{API}/methodology-drafts/{draft['id']}/publish", json={}, headers=adm.headers
        )
        assert r.status_code == 201, r.text
        pub = r.json()
        assert (pub["code"], pub["version"]) == ("low-carbon-travel", 2)
        async with pool.acquire() as conn:
            after = await behaviours.methodologies(conn)
            v2 = await behaviours.methodology_version(conn, "low-carbon-travel", 2)
        assert len(after) == len(before) + 1
        assert v2 is not None and v2["effective_from"] == datetime.fromisoformat(
            pub["effective_from"]
        )
        assert [f["mode"] for f in v2["factors"]] == ["metro"] and v2["factors"][0][
            "factor_g"
        ] == 20
        # Events before the date keep the version they were credited with.
        new = await run(
            pool,
            settings,
            [metro(subject, "r3", distance_m=9000, start=now() - timedelta(hours=8))],
        )
        assert new[0].methodology_version == "low-carbon-travel@1"
        # A published draft is never edited, discarded or published again.
        r = await client.put(
            f"{API}/methodology-drafts/{draft['id']}", json=draft_body(30), headers=adm.headers
        )
        assert (r.status_code, r.json()["code"]) == (409, "methodology_published")
        r = await client.delete(f"{API}/methodology-drafts/{draft['id']}", headers=adm.headers)
        assert (r.status_code, r.json()["code"]) == (409, "methodology_published")
        r = await client.post(
            f"{API}/methodology-drafts/{draft['id']}/publish", json={}, headers=adm.headers
        )
        assert (r.status_code, r.json()["code"]) == (409, "methodology_published")
        r = await client.get(f"{API}/methodologies/low-carbon-travel/2", headers=adm.headers)
        assert r.status_code == 200 and r.json()["factors"][0]["factor_g"] == 20
        log = await entries(pool, action="methodology.publish")
        assert log[0].target == "low-carbon-travel@2"
        assert log[0].before["published_version"] is None and log[0].after["published_version"] == 2

    async def test_the_database_keeps_a_published_draft_as_it_was(self, client, pool, adm):
        r = await client.post(f"{API}/methodology-drafts", json=draft_body(), headers=adm.headers)
        draft_id = r.json()["id"]
        r = await client.post(
            f"{API}/methodology-drafts/{draft_id}/publish", json={}, headers=adm.headers
        )
        assert r.status_code == 201, r.text
        import asyncpg

        async with pool.acquire() as conn:
            with pytest.raises(asyncpg.RestrictViolationError, match="never changes"):
                await conn.execute(
                    "UPDATE gov_methodology_drafts SET title = 'edited' WHERE id = $1",
                    uuid.UUID(draft_id),
                )

    async def test_drafts_are_edited_until_published_and_dates_checked(self, client, pool, adm):
        r = await client.post(f"{API}/methodology-drafts", json=draft_body(), headers=adm.headers)
        draft_id = r.json()["id"]
        r = await client.put(
            f"{API}/methodology-drafts/{draft_id}", json=draft_body(25), headers=adm.headers
        )
        assert r.status_code == 200 and r.json()["factors"][0]["factor_g"] == 25
        past = (datetime.now(UTC) - timedelta(days=3)).isoformat()
        r = await client.post(
            f"{API}/methodology-drafts/{draft_id}/publish",
            json={"effective_from": past},
            headers=adm.headers,
        )
        assert (r.status_code, r.json()["code"]) == (400, "validation_failed"), r.text
        twice = draft_body()
        twice["factors"] = twice["factors"] * 2
        r = await client.post(f"{API}/methodology-drafts", json=twice, headers=adm.headers)
        assert (r.status_code, r.json()["code"]) == (400, "validation_failed")
        r = await client.get(
            f"{API}/methodology-drafts/{uuid.uuid4()}/preview", headers=adm.headers
        )
        assert (r.status_code, r.json()["code"]) == (404, "methodology_draft_not_found")
        r = await client.delete(f"{API}/methodology-drafts/{draft_id}", headers=adm.headers)
        assert r.status_code == 204
        assert [e.action for e in await entries(pool, action="methodology")] == [
            "methodology.discard",
            "methodology.edit",
            "methodology.draft",
        ]


class TestProgramme:
    async def test_merchants_projects_and_enterprises(self, client, pool, adm):
        r = await client.post(
            f"{API}/merchants",
            json={"id": "tea-shop", "name": "Tea Shop", "settlement_contact": "ops@tea.example"},
            headers=adm.headers,
        )
        assert r.status_code == 201, r.text
        r = await client.post(
            f"{API}/merchants/tea-shop/keys", json={"key_id": "m1"}, headers=adm.headers
        )
        assert r.status_code == 201 and len(r.json()["secret"]) >= 32
        now = datetime.now(UTC)
        project = {
            "title": "Mangrove planting",
            "beneficiary": "Shenzhen Mangrove Foundation",
            "target_asset": "POINT",
            "target_amount": 100000,
            "starts_at": now.isoformat(),
            "ends_at": (now + timedelta(days=90)).isoformat(),
        }
        keyed = {**adm.headers, "Idempotency-Key": "project-1"}
        r = await client.post(f"{API}/projects", json=project, headers=keyed)
        assert r.status_code == 201, r.text
        project_id = r.json()["id"]
        # A retry with the same key is the same answer, not a second project (nor a second entry).
        again = await client.post(f"{API}/projects", json=project, headers=keyed)
        assert (again.status_code, again.json()["id"]) == (201, project_id)
        assert len(await entries(pool, action="project.approve")) == 1
        from tests.enterprises.factories import districts

        await districts(pool)
        e = {
            "credit_code": code(1),
            "name": "测试化工有限公司",
            "industry": "C2611",
            "district": "440303",
            "size_class": "above",
        }
        r = await client.post(f"{API}/enterprises", json=e, headers=adm.headers)
        assert r.status_code == 201, r.text
        csv = (
            "credit_code,name,industry,district,size_class\n"
            f"{code(2)},二号工厂,C2611,440303,above\n{code(3)},三号工厂,C3011,440304,below\n"
        )
        r = await client.post(
            f"{API}/enterprises/import",
            content=csv.encode(),
            headers={**adm.headers, "Content-Type": "text/csv"},
        )
        assert r.status_code == 200, r.text
        assert r.json()["created"] == 2
        actions = {e.action: e for e in await entries(pool)}
        assert {"merchant.approve", "merchant.key.issue", "project.approve"} <= set(actions)
        assert {"enterprise.register", "enterprise.import"} <= set(actions)
        assert actions["project.approve"].target == project_id
        assert "secret" not in str(actions["merchant.key.issue"].after)


async def test_an_action_that_fails_leaves_no_entry(client, pool, adm):
    r = await client.post(
        f"{API}/operators/nobody/keys", json={"key_id": "k1"}, headers=adm.headers
    )
    assert r.status_code == 404
    async with transaction(pool) as tx:
        assert [e.action for e in await audit.entries(tx.conn)] == ["gov_user.add"]
