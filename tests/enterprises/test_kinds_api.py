"""Account kinds through the real app and stores: registration with a kind (the gov admin API and
the service), the catalogue of kinds, a building's year declared, accounted and stored (the
same again unchanged, a new activity replacing it), a bad field refused with its name, an
industrial enterprise sent to its activity reports, and the served OpenAPI document."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from enterprises import users
from enterprises.kinds import service as kinds
from enterprises.schemas import Enterprise
from kit.db import transaction
from kit.errors import InvalidInput
from server.app import create_app
from server.enterprise.base import PREFIX
from server.settings import Settings
from tests.enterprises.api import PASSWORD, Admin, admin, signed_in
from tests.enterprises.factories import code, districts, enterprise, registered
from tests.gov.factories import bearer, gov_user

OFFICE = {
    "building_type": "office",
    "floor_area_m2": 10_000,
    "electricity_kwh": 800_000,
    "natural_gas_m3": 20_000,
}


async def _of_kind(pool: Any, n: int, kind: str) -> Admin:
    await districts(pool)
    e = msgspec.structs.replace(enterprise(n), kind=kind)
    done = (await registered(pool, e)).enterprise
    async with transaction(pool) as tx:
        u = await users.add_first_admin(
            tx, done.credit_code, login=f"kind{n}", display_name=f"管理员 {n}", password=PASSWORD
        )
    return Admin(done, u)


class TestRegistration:
    async def test_kind_defaults_to_industry_and_an_unknown_kind_is_refused(self, pool):
        await districts(pool)
        plain = (await registered(pool, enterprise(1))).enterprise
        assert plain.kind == "industry"
        with pytest.raises(InvalidInput) as caught:
            await registered(pool, msgspec.structs.replace(enterprise(2), kind="spaceport"))
        assert [e.path for e in caught.value.errors or []] == ["kind"]
        building = await registered(pool, msgspec.structs.replace(enterprise(3), kind="building"))
        assert building.created and building.enterprise.kind == "building"
        again = await registered(pool, msgspec.structs.replace(enterprise(3), kind="building"))
        assert not again.created and again.enterprise.id == building.enterprise.id
        # The same credit code under another kind is other content.
        from enterprises.errors import CreditCodeTaken

        with pytest.raises(CreditCodeTaken):
            await registered(pool, enterprise(3))

    async def test_the_gov_admin_registers_a_kind(self, client, pool, settings):
        await districts(pool)
        _, token = await gov_user(pool, settings, role="gov_admin")
        body = {
            "credit_code": code(7),
            "name": "某公交运输公司",
            "industry": "G5411",
            "district": "440303",
            "size_class": "above",
            "kind": "road_transport",
        }
        r = await client.post("/api/gov/v1/admin/enterprises", json=body, headers=bearer(token))
        assert r.status_code == 201, r.text
        assert r.json()["enterprise"]["kind"] == "road_transport"
        r = await client.post(
            "/api/gov/v1/admin/enterprises",
            json={**body, "credit_code": code(8), "kind": "castle"},
            headers=bearer(token),
        )
        assert r.status_code == 400 and r.json()["code"] == "validation_failed"
        assert [e["path"] for e in r.json()["errors"]] == ["kind"]


class TestAccounts:
    async def test_the_catalogue_lists_every_kind_with_its_schema(self, client, pool):
        a = await signed_in(client, await admin(pool))
        r = await client.get(f"{a.base}/account-kinds", headers=a.headers)
        assert r.status_code == 200, r.text
        assert r.json()["own"] == "industry"
        found = {k["name"]: k for k in r.json()["kinds"]}
        assert list(found) == [
            "industry",
            "energy_producer",
            "building",
            "road_transport",
            "agriculture",
            "resident",
        ]
        area = {f["name"]: f for f in found["building"]["fields"]}["floor_area_m2"]
        assert (area["unit"], area["required"], area["exclusive_min"]) == ("m2", True, True)
        assert found["building"]["grading"]["bounds"]["office"] == [34, 42, 58, 73]
        assert found["road_transport"]["denominator_unit"] == "t-km"
        assert (await client.get(f"{a.base}/account-kinds")).status_code == 401

    async def test_a_building_declares_its_year_and_reads_its_grade(self, client, pool):
        a = await signed_in(client, await _of_kind(pool, 1, "building"))
        body = {"year": 2023, "activity": OFFICE}
        r = await client.put(f"{a.base}/kind-accounts", json=body, headers=a.headers)
        assert r.status_code == 200, r.text
        first = r.json()
        res = first["result"]
        # 800,000 kWh × 0.5306 + 20,000 m3 × 2.162189 = 467,723.78 kg over 10,000 m2.
        assert res["emissions_kg"] == pytest.approx(467_723.78)
        assert (res["denominator"], res["denominator_unit"]) == (10_000.0, "m2")
        assert res["intensity"] == pytest.approx(46.772378)
        assert (res["grade"]["label"], res["grade"]["value"]) == ("C", 46.8)
        assert res["lines"][0]["factor_ref"] == "grid:2023:national:"
        assert (first["kind"], first["basis"]) == ("building", "own/national/")
        # The same again: unchanged (the row as it was recorded).
        again = await client.put(f"{a.base}/kind-accounts", json=body, headers=a.headers)
        assert again.json() == first
        got = await client.get(f"{a.base}/kind-account", params={"year": 2023}, headers=a.headers)
        assert got.status_code == 200 and got.json() == first
        # A new activity replaces the year: 600,000 kWh and no gas = 31.836 kg/m2, A.
        lighter = {k: v for k, v in OFFICE.items() if k != "natural_gas_m3"}
        newer = {"year": 2023, "activity": {**lighter, "electricity_kwh": 600_000}}
        r = await client.put(f"{a.base}/kind-accounts", json=newer, headers=a.headers)
        assert r.json()["result"]["intensity"] == pytest.approx(31.836)
        assert r.json()["result"]["grade"]["label"] == "A"
        await client.put(
            f"{a.base}/kind-accounts", json={"year": 2024, "activity": OFFICE}, headers=a.headers
        )
        listed = await client.get(f"{a.base}/kind-accounts", headers=a.headers)
        assert [x["year"] for x in listed.json()] == [2024, 2023]
        missing = await client.get(
            f"{a.base}/kind-account", params={"year": 2022}, headers=a.headers
        )
        assert missing.status_code == 404 and missing.json()["code"] == "not_found"
        far = await client.get(f"{a.base}/kind-account", params={"year": 9999}, headers=a.headers)
        assert far.status_code == 400, far.text

    async def test_a_bad_field_is_refused_by_name_and_nothing_is_stored(self, client, pool):
        a = await signed_in(client, await _of_kind(pool, 1, "building"))
        bad = {**OFFICE, "floor_area_m2": -3, "rooms": 12}
        r = await client.put(
            f"{a.base}/kind-accounts", json={"year": 2023, "activity": bad}, headers=a.headers
        )
        assert r.status_code == 400 and r.json()["code"] == "validation_failed"
        assert sorted(e["path"] for e in r.json()["errors"]) == [
            "activity.floor_area_m2",
            "activity.rooms",
        ]
        for year in (1999, 9999):
            r = await client.put(
                f"{a.base}/kind-accounts",
                json={"year": year, "activity": OFFICE},
                headers=a.headers,
            )
            assert r.status_code == 400, r.text
        async with pool.acquire() as conn:
            assert await kinds.accounts(conn, a.enterprise.id) == []

    async def test_an_industrial_enterprise_is_accounted_from_its_reports(self, client, pool):
        a = await signed_in(client, await admin(pool))
        r = await client.put(
            f"{a.base}/kind-accounts",
            json={"year": 2023, "activity": {"electricity_kwh": 1, "added_value_10k_cny": 1}},
            headers=a.headers,
        )
        assert r.status_code == 422 and r.json()["code"] == "kind_not_self_reported"

    async def test_each_self_reported_kind_is_accounted_and_stored(self, client, pool):
        examples = {
            "energy_producer": ({"coal_t": 400_000, "supplied_electricity_kwh": 1e9}, "B"),
            "road_transport": ({"diesel_t": 1_000, "tonne_km": 50_000_000}, "C"),
            "agriculture": ({"nitrogen_kg": 10_000, "output_value_10k_cny": 500}, "A"),
            "resident": ({"electricity_kwh": 2_700}, "B"),
        }
        for n, (kind, (activity, label)) in enumerate(examples.items(), start=1):
            a = await signed_in(client, await _of_kind(pool, n, kind))
            r = await client.put(
                f"{a.base}/kind-accounts",
                json={"year": 2023, "activity": activity},
                headers=a.headers,
            )
            assert r.status_code == 200, r.text
            assert (r.json()["kind"], r.json()["result"]["grade"]["label"]) == (kind, label)

    async def test_another_enterprise_is_not_found(self, client, pool):
        a = await signed_in(client, await _of_kind(pool, 1, "building"))
        b = await _of_kind(pool, 2, "building")
        r = await client.get(
            f"{PREFIX}/enterprises/{b.enterprise.id}/kind-accounts", headers=a.headers
        )
        assert r.status_code == 404 and r.json()["code"] == "enterprise_not_found"


def test_the_openapi_document_serves_the_kind_routes():
    doc = create_app(Settings.from_env({"TANPUHUI_ENV": "test"})).openapi_schema.to_schema()
    ops = doc["paths"][f"{PREFIX}/enterprises/{{enterprise_id}}/kind-accounts"]
    assert "kind_not_self_reported" in str(ops["put"]["responses"]["422"])
    assert f"{PREFIX}/enterprises/{{enterprise_id}}/account-kinds" in doc["paths"]
    assert (
        isinstance(Enterprise.__struct_fields__, tuple) and "kind" in Enterprise.__struct_fields__
    )
