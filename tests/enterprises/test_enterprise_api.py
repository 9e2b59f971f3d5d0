"""The enterprise API's routes over the data side and the accounting side through the real app
(sites, meters, report uploads in JSON and CSV, budgets, alerts, grade), and its place in the
served OpenAPI document: every operation with its error codes and an example body for each."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from enterprises import accounting
from enterprises.factors import Basis
from enterprises.settings import EnterprisesSettings
from kit.db import transaction
from server.app import create_app
from server.enterprise.base import PREFIX
from server.enterprise.errors import CATALOGUE
from server.settings import Settings
from tests.behaviours.factories import operator
from tests.enterprises.accounting_factories import month_rows
from tests.enterprises.api import admin, signed_in

MARCH = {"period": "month", "period_start": "2026-03-01"}


async def _site(client: Any, a: Any) -> str:
    r = await client.post(f"{a.base}/sites", json={"name": "一号厂区"}, headers=a.headers)
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


class TestData:
    async def test_sites_and_meters(self, client, pool):
        a = await signed_in(client, await admin(pool))
        await operator(pool, "gateway-1", "utility")
        site = await _site(client, a)
        key = {**a.headers, "Idempotency-Key": "meter-1"}
        meter = {
            "site_id": site,
            "ref": "G-1",
            "kind": "natural_gas",
            "unit": "m3",
            "pusher": "gateway-1",
            "register": "cumulative",
        }
        first = await client.post(f"{a.base}/meters", json=meter, headers=key)
        again = await client.post(f"{a.base}/meters", json=meter, headers=key)
        assert first.status_code == again.status_code == 201, first.text
        assert first.json() == again.json()
        listed = await client.get(f"{a.base}/meters", params={"site_id": site}, headers=a.headers)
        assert [m["ref"] for m in listed.json()] == ["G-1"]
        assert [
            s["id"] for s in (await client.get(f"{a.base}/sites", headers=a.headers)).json()
        ] == [site]
        # A site of another enterprise, named in A's own path: the data side's own 404.
        b = await signed_in(client, await admin(pool, 2))
        other = await _site(client, b)
        r = await client.post(
            f"{a.base}/meters", json={**meter, "site_id": other}, headers=a.headers
        )
        assert r.status_code == 404 and r.json()["code"] == "site_not_found"

    async def test_a_report_in_json_and_the_same_in_csv_is_one_version(self, client, pool):
        a = await signed_in(client, await admin(pool))
        lines = [
            {"kind": "electricity", "quantity": 120.5, "unit": "MWh"},
            {"kind": "added_value", "quantity": 800, "unit": "10k_CNY"},
        ]
        r = await client.post(
            f"{a.base}/activity-reports", json={**MARCH, "lines": lines}, headers=a.headers
        )
        assert r.status_code == 200, r.text
        first = r.json()
        assert first["version"] == 1 and first["status"] == "current"
        kwh = {x["kind"]: x for x in first["lines"]}["electricity"]
        assert (kwh["quantity"], kwh["unit"]) == (120500.0, "kWh")
        csv = "kind,quantity,unit,certificates\nelectricity,120.5,MWh,\nadded_value,800,10k_CNY,\n"
        r = await client.post(
            f"{a.base}/activity-reports/csv",
            params=MARCH,
            content=csv.encode(),
            headers={**a.headers, "Content-Type": "text/csv; charset=utf-8"},
        )
        assert r.status_code == 200, r.text
        assert r.json()["id"] == first["id"] and r.json()["created"] is False
        listed = await client.get(f"{a.base}/activity-reports", headers=a.headers)
        assert [x["id"] for x in listed.json()] == [first["id"]]

    @pytest.mark.parametrize(
        ("csv", "path"),
        [
            ("kind,amount,unit\nelectricity,1,kWh\n", "line 1"),
            ("kind,quantity,unit\nelectricity,lots,kWh\n", "line 2: quantity"),
            ("kind,quantity,unit\nelectricity,1,kWh\nwater,1,t\n", "line 3"),
            ("kind,quantity,unit\nelectricity,1\n", "line 2"),
            ("kind,quantity,unit\nelectricity,-1,kWh\n", "line 2"),
        ],
    )
    async def test_csv_lines_that_cannot_be_read_are_named(self, client, pool, csv, path):
        a = await signed_in(client, await admin(pool))
        r = await client.post(
            f"{a.base}/activity-reports/csv",
            params=MARCH,
            content=csv.encode(),
            headers={**a.headers, "Content-Type": "text/csv"},
        )
        assert r.status_code == 400, r.text
        assert r.json()["code"] == "validation_failed"
        assert r.json()["errors"][0]["path"] == path

    async def test_csv_that_is_not_utf8_or_sent_as_json_is_a_client_error(self, client, pool):
        a = await signed_in(client, await admin(pool))
        url = f"{a.base}/activity-reports/csv"
        r = await client.post(
            url,
            params=MARCH,
            content=b"\xff\xfe",
            headers={**a.headers, "Content-Type": "text/csv"},
        )
        assert r.status_code == 400 and r.json()["code"] == "validation_failed"
        r = await client.post(url, params=MARCH, json={"lines": []}, headers=a.headers)
        assert r.status_code == 415 and r.json()["code"] == "unsupported_media_type"
        big = b"kind,quantity,unit\n" + b"electricity,1,kWh\n" * 5000
        r = await client.post(
            url, params=MARCH, content=big, headers={**a.headers, "Content-Type": "text/csv"}
        )
        assert r.status_code == 413


class TestAccount:
    async def test_emissions_budgets_alerts_and_no_grade_without_data(self, client, pool):
        a = await signed_in(client, await admin(pool))
        rows = month_rows(
            a.enterprise.id, date(2026, 3, 1), {"electricity": 1000.0, "added_value": 10.0}
        )
        async with transaction(pool) as tx:
            await accounting.record(
                tx,
                rows,
                start=rows[0].month,
                end=date(2026, 4, 1),
                basis=Basis.of(EnterprisesSettings()),
                enterprise_ids=[a.enterprise.id],
            )
        em = await client.get(f"{a.base}/emissions", params={"period": "2026"}, headers=a.headers)
        assert em.status_code == 200
        [march] = em.json()
        assert march["month"] == "2026-03-01" and march["emissions_kg"] == pytest.approx(530.6)
        assert (
            await client.get(f"{a.base}/emissions", params={"period": "2025"}, headers=a.headers)
        ).json() == []
        r = await client.get(f"{a.base}/emissions", params={"period": "26"}, headers=a.headers)
        assert r.status_code == 400

        budget = {
            "metric": "energy_kgce",
            "period_kind": "year",
            "period_start": "2026-01-01",
            "amount": 5e4,
        }
        r = await client.put(f"{a.base}/budgets", json=budget, headers=a.headers)
        assert r.status_code == 200 and r.json()["set_by"] == "enterprise"
        bad = {**budget, "period_start": "2026-03-01"}
        r = await client.put(f"{a.base}/budgets", json=bad, headers=a.headers)
        assert r.status_code == 400 and r.json()["errors"][0]["path"] == "period_start"
        listed = (await client.get(f"{a.base}/budgets", headers=a.headers)).json()
        assert [(x["metric"], x["amount"]) for x in listed] == [("energy_kgce", 5e4)]
        assert (await client.get(f"{a.base}/alerts", headers=a.headers)).json() == []

        g = await client.get(f"{a.base}/grade", params={"year": 2025}, headers=a.headers)
        assert g.status_code == 404 and g.json()["code"] == "not_found"
        # 2026 has data but one enterprise alone: no grade, and the reason says why.
        g = await client.get(f"{a.base}/grade", params={"year": 2026}, headers=a.headers)
        assert g.status_code == 200
        assert g.json()["assessment"]["grade"]["grade"] is None
        assert g.json()["assessment"]["grade"]["reason"] == "industry_too_few_peers"


class TestOpenApi:
    def test_every_operation_is_served_with_its_error_codes_and_examples(self):
        served = create_app(Settings()).openapi_schema.to_schema()
        ops = {
            (method, path): op
            for path, item in served["paths"].items()
            if path.startswith(PREFIX) or path.startswith("/api/public/v1/enterprise-reports")
            for method, op in item.items()
            if isinstance(op, dict) and "responses" in op
        }
        assert len(ops) >= 25
        for (method, path), op in ops.items():
            assert " · " in op["summary"], (method, path)  # bilingual
            codes = set()
            for status, response in op["responses"].items():
                if not status.startswith(("4", "5")):
                    continue
                content = response["content"]["application/problem+json"]
                for code, example in content["examples"].items():
                    assert example["value"]["code"] == code
                    assert example["value"]["status"] == int(status) == CATALOGUE[code].status
                    codes.add(code)
            assert {"internal_error", "retry_later"} <= codes, (method, path)
            if path.startswith(PREFIX + "/enterprises/"):
                assert "enterprise_not_found" in codes, (method, path)
                assert op["security"] == [{"BearerToken": []}]
        sign_in = ops[("post", PREFIX + "/sessions")]
        assert {"sign_in_failed", "sign_in_rate_limited"} <= set(
            sign_in["responses"]["401"]["content"]["application/problem+json"]["examples"]
        ) | set(sign_in["responses"]["429"]["content"]["application/problem+json"]["examples"])
