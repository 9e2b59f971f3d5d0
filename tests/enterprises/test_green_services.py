"""The green-services catalogue: the packaged one loads, a broken one is refused naming its
fault (and stops the settings from loading); rules match on grade, band, industry, alerts,
equipment, structure and use, with their reasons in both languages; actions' savings are
computed from the enterprise's own use and factors (numbers written out); the enterprise API
lists the recommendations of a worked enterprise, alert-driven ones appearing with the alert."""

from __future__ import annotations

import json
import math
import uuid
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
import pytest

from enterprises import alerts, green_services
from enterprises.alerts import BudgetIn
from enterprises.green_services import CatalogueInvalid, Facts, Use
from enterprises.settings import EnterprisesSettings
from kit.db import transaction
from kit.settings import SettingsError
from server.settings import Settings
from tests.enterprises.api import admin, signed_in
from tests.enterprises.green_factories import INDUSTRY, YEAR, district

ZONE = ZoneInfo("Asia/Shanghai")
PACKAGED = json.loads(green_services.CATALOGUE_FILE.read_text(encoding="utf-8"))


def _broken(change: Any) -> bytes:
    data = json.loads(json.dumps(PACKAGED))
    change(data)
    return json.dumps(data).encode()


def _service(data: dict[str, Any], sid: str) -> dict[str, Any]:
    return next(s for s in data["services"] if s["id"] == sid)


class TestCatalogue:
    def test_the_packaged_catalogue_loads(self):
        cat = green_services.catalogue()
        ids = [s.id for s in cat.services]
        assert 8 <= len(ids) <= 12 and len(set(ids)) == len(ids)
        assert {"energy_audit", "transformer_right_sizing", "rooftop_pv", "green_loan"} <= set(ids)
        assert all(s.source for s in cat.services) and cat.prices.source
        # every action's every kind has a price
        assert any(s.savings for s in cat.services)

    @pytest.mark.parametrize(
        ("change", "fault"),
        [
            # a rule naming no condition would match every enterprise
            (
                lambda d: _service(d, "green_loan")["rules"][0].pop("grades"),
                "at least one condition",
            ),
            (lambda d: _service(d, "green_loan")["rules"][0].update(grades=[6]), "grades"),
            (lambda d: _service(d, "green_loan")["rules"][0].update(colour="red"), "colour"),
            (
                lambda d: _service(d, "rooftop_pv")["rules"][0].update(industries=["C3X"]),
                "industries",
            ),
            (
                lambda d: _service(d, "energy_audit")["rules"][1].update(alerts=["noise_db"]),
                "alerts",
            ),
            (
                lambda d: _service(d, "compressed_air")["rules"][0].update(equipment=["robot"]),
                "equipment",
            ),
            (
                lambda d: _service(d, "green_loan")["rules"][0]["reason"].update(en="{grde}"),
                "unknown placeholder {grde}",
            ),
            # {grade} without a grades condition: the grade may be unknown
            (
                lambda d: _service(d, "compressed_air")["rules"][0]["reason"].update(
                    zh="{grade} 级"
                ),
                "{grade} needs the rule's grades condition",
            ),
            (
                lambda d: _service(d, "waste_heat_recovery")["rules"][0]["uses"].update(
                    min_quantity=5
                ),
                "exactly one of min_tce and min_quantity",
            ),
            (
                lambda d: _service(d, "waste_heat_recovery")["rules"][0].update(
                    uses={"kinds": ["coal", "steam"], "min_quantity": 5}
                ),
                "min_quantity applies to exactly one kind",
            ),
            (lambda d: d["prices"]["energy_yuan_per_unit"].pop("steam"), "no price of steam"),
            (
                lambda d: _service(d, "rooftop_pv")["savings"][0].update(share=1.5),
                "share",
            ),
            (
                lambda d: _service(d, "rooftop_pv")["savings"][0].update(formula="magic"),
                "formula",
            ),
            (lambda d: d["services"].append(d["services"][0]), "listed twice"),
        ],
    )
    def test_a_broken_catalogue_is_refused_naming_its_fault(self, change, fault):
        with pytest.raises(CatalogueInvalid) as caught:
            green_services.load(_broken(change))
        assert fault in str(caught.value)

    def test_not_json_is_refused(self):
        with pytest.raises(CatalogueInvalid, match="not JSON"):
            green_services.load(b"{services: ")

    def test_a_broken_catalogue_stops_the_settings(self, tmp_path: Path):
        bad = tmp_path / "services.json"
        bad.write_bytes(_broken(lambda d: _service(d, "green_loan")["rules"][0].pop("grades")))
        problems = EnterprisesSettings(green_services_file=str(bad)).problems()
        assert [f for f, _ in problems] == ["green_services_file"]
        assert "at least one condition" in problems[0][1]
        with pytest.raises(SettingsError, match="GREEN_SERVICES_FILE"):
            Settings.from_env({"TANPUHUI_ENTERPRISES_GREEN_SERVICES_FILE": str(bad)})
        missing = EnterprisesSettings(green_services_file=str(tmp_path / "none.json")).problems()
        assert [f for f, _ in missing] == ["green_services_file"]


def _use(kind: str, annual: float, factor: float, coef: float, unit: str) -> Use:
    return Use(
        kind=kind,
        quantity=annual,
        unit=unit,
        annual=annual,
        energy_kgce=annual * coef,
        emissions_kg=annual * factor,
        factor_kg=factor,
        kgce_per_unit=coef,
        factor_refs=[],
        sources=["report"],
    )


def _facts(**kw: Any) -> Facts:
    fields: dict[str, Any] = {
        "enterprise_id": uuid.UUID(int=1),
        "start": date(2025, 1, 1),
        "end": date(2026, 1, 1),
        "industry": "C1711",
        "grade": None,
        "band": None,
        "intensity": None,
        "alerts": [],
        "equipment": [],
        "zero_carbon_share": None,
        "months": 12,
        "uses": {},
    }
    return Facts(**{**fields, **kw})


def _matched(f: Facts) -> dict[str, list[str]]:
    cat = green_services.catalogue()
    return {r.service: [x.rule for x in r.reasons] for r in green_services.match(cat, f)}


class TestMatching:
    def test_grade_four_or_five_gets_the_audit_and_the_retrofit_loan(self):
        found = _matched(_facts(grade=5, band="high"))
        assert found["energy_audit"] == ["low_grade"]
        assert found["green_loan"] == ["retrofit_finance"]
        assert "transformer_right_sizing" not in found  # no electricity use to size
        reason = next(
            r
            for r in green_services.match(green_services.catalogue(), _facts(grade=5))
            if r.service == "energy_audit"
        ).reasons[0]
        assert reason.zh.startswith("碳效等级为 5 级（行业 C1711）")
        assert reason.en.startswith("Carbon-efficiency grade 5 (industry C1711)")
        assert reason.matched == {"industry": "C1711", "grade": 5}

    def test_a_good_grade_gets_the_green_loan_and_no_audit(self):
        found = _matched(_facts(grade=1))
        assert found == {"green_loan": ["good_grade"]}

    def test_no_grade_no_grade_rule(self):
        assert _matched(_facts()) == {}

    def test_industry_prefixes(self):
        assert _matched(_facts(industry="C3011"))["carbon_verification"] == ["cbam_exposed"]
        assert "carbon_verification" not in _matched(_facts(industry="C3411"))
        assert "carbon_verification" not in _matched(_facts(industry="D4411"))

    def test_alerts_raised(self):
        found = _matched(_facts(alerts=["energy_kgce"]))
        assert found["energy_audit"] == ["energy_alert"]
        assert found["energy_management_system"] == ["budget_alerts"]
        assert "transformer_right_sizing" not in found  # carbon alert and use both needed
        assert "energy_audit" not in _matched(_facts(alerts=["carbon_kg"]))

    def test_equipment_and_use_thresholds(self):
        elec = {"electricity": _use("electricity", 2_000_000, 0.5306, 0.1229, "kWh")}
        found = _matched(_facts(grade=3, uses=elec, equipment=["air_compressor"]))
        assert found["transformer_right_sizing"] == ["large_electricity_low_grade"]
        assert found["compressed_air"] == ["compressor_metered"]
        below = {"electricity": _use("electricity", 1_999_999, 0.5306, 0.1229, "kWh")}
        assert "transformer_right_sizing" not in _matched(_facts(grade=3, uses=below))

    def test_the_structure_share(self):
        elec = {"electricity": _use("electricity", 1_000_000, 0.5306, 0.1229, "kWh")}
        low = _matched(_facts(industry="C1711", zero_carbon_share=0.05, uses=elec))
        assert low["rooftop_pv"] == ["manufacturer_low_green_share"]
        assert low["green_electricity"] == ["low_green_share"]
        mid = _matched(_facts(industry="C1711", zero_carbon_share=0.2, uses=elec))
        assert "rooftop_pv" not in mid and "green_electricity" in mid
        assert _matched(_facts(industry="C1711", zero_carbon_share=0.3, uses=elec)) == {}


class TestSavings:
    def test_huzhou_transformer_example_by_hand(self):
        """10 GWh a year: capacity = 10,000,000 / (8,760 × 0.40 × 0.90) = 3,170.9792 kVA;
        10 % of it × 30 yuan/kVA/month × 12 = 114,155.25 yuan; losses 0.5 % × 10,000,000 =
        50,000 kWh × 0.65 = 32,500 yuan and × 0.5306 kg = 26.53 t CO2; × 0.1229 = 6.145 t ce.
        About Huzhou's '100k yuan and 25 t a year'."""
        cat = green_services.catalogue()
        service = next(s for s in cat.services if s.id == "transformer_right_sizing")
        uses = {"electricity": _use("electricity", 10_000_000, 0.5306, 0.1229, "kWh")}
        s = green_services.savings(service, uses, cat.prices)
        assert s is not None
        capacity, losses = s.terms
        assert capacity.formula == "capacity_charge"
        assert {i.name: i.value for i in capacity.inputs}["capacity"] == pytest.approx(
            3170.9792, abs=1e-4
        )
        assert capacity.yuan_per_year == pytest.approx(114_155.25, abs=0.01)
        assert capacity.t_co2_per_year == 0
        assert losses.saved_quantity == pytest.approx(50_000)
        assert losses.yuan_per_year == pytest.approx(32_500)
        assert losses.t_co2_per_year == pytest.approx(26.53)
        assert losses.tce_per_year == pytest.approx(6.145)
        assert s.yuan_per_year == pytest.approx(146_655.25, abs=0.01)
        assert s.t_co2_per_year == pytest.approx(26.53)
        assert s.carbon_value_yuan_per_year == pytest.approx(26.53 * 51.37)
        assert "3,170.98 kVA" in capacity.expression

    def test_the_enterprises_own_factor_is_used(self):
        cat = green_services.catalogue()
        service = next(s for s in cat.services if s.id == "rooftop_pv")
        dirty = {"electricity": _use("electricity", 1_000_000, 0.8273, 0.1229, "kWh")}
        s = green_services.savings(service, dirty, cat.prices)
        assert s is not None and s.t_co2_per_year == pytest.approx(100_000 * 0.8273 / 1000)
        assert green_services.savings(service, {}, cat.prices) == green_services.Savings(
            yuan_per_year=0.0,
            t_co2_per_year=0.0,
            tce_per_year=0.0,
            carbon_value_yuan_per_year=0.0,
            terms=[],
        )
        not_an_action = next(s for s in cat.services if s.id == "green_loan")
        assert green_services.savings(not_an_action, dirty, cat.prices) is None


class TestRecommendations:
    async def test_a_worked_enterprise_through_the_api(self, client, pool):
        a = await signed_in(client, await admin(pool, industry=INDUSTRY))
        await district(pool, own=a.enterprise.id)
        r = await client.get(f"{a.base}/recommendations", params={"year": YEAR}, headers=a.headers)
        assert r.status_code == 200, r.text
        body = r.json()
        # grade 2: K = 0.7053 / (12,509.16 t / 10,800) = 0.6089 (green_factories)
        assert (body["grade"], body["band"], body["industry"]) == (2, "medium", INDUSTRY)
        assert body["zero_carbon_share"] == 0 and body["alerts"] == []
        got = {x["service"]: x for x in body["recommendations"]}
        assert list(got) == [
            "rooftop_pv",
            "waste_heat_recovery",
            "green_electricity",
            "green_loan",
            "carbon_verification",
        ]
        assert [x["rule"] for x in got["green_loan"]["reasons"]] == ["good_grade"]
        assert got["waste_heat_recovery"]["reasons"][0]["matched"]["annual_tce"] == (
            pytest.approx(818.88)
        )
        # waste heat: 8 % × 24,000 GJ = 1,920 GJ; × 80 yuan = 153,600; × 110 kg = 211.2 t
        heat = got["waste_heat_recovery"]["savings"]
        assert heat["yuan_per_year"] == pytest.approx(153_600)
        assert heat["t_co2_per_year"] == pytest.approx(211.2)
        assert heat["tce_per_year"] == pytest.approx(65.5104)
        assert got["green_loan"]["savings"] is None
        assert got["green_loan"]["name"] == {
            "zh": "碳效贷（绿色信贷）",
            "en": "Carbon-efficiency green loan",
        }

    async def test_an_alert_brings_the_audit(self, client, pool, settings):
        a = await signed_in(client, await admin(pool, industry=INDUSTRY))
        await district(pool, own=a.enterprise.id)
        budget = BudgetIn(
            metric="energy_kgce", period_kind="year", period_start=date(YEAR, 1, 1), amount=1e6
        )
        async with transaction(pool) as tx:
            await alerts.set_budget(tx, a.enterprise.id, budget, set_by="enterprise")
            # the year has ended: its projection is what it used, 1,187,580 kgce > 1,000,000
            await alerts.evaluate(
                tx,
                settings=settings.enterprises,
                zone=ZONE,
                now=datetime(2026, 1, 15, tzinfo=ZONE),
                months=[date(YEAR, 12, 1)],
            )
        r = await client.get(f"{a.base}/recommendations", params={"year": YEAR}, headers=a.headers)
        body = r.json()
        assert body["alerts"] == ["energy_kgce"]
        got = {x["service"]: x for x in body["recommendations"]}
        assert [x["rule"] for x in got["energy_audit"]["reasons"]] == ["energy_alert"]
        assert "energy_kgce" in got["energy_audit"]["reasons"][0]["en"]
        assert "energy_management_system" in got
        # the year after has no alert and no data: only what the industry alone brings
        later = await client.get(
            f"{a.base}/recommendations", params={"year": YEAR + 1}, headers=a.headers
        )
        assert [x["service"] for x in later.json()["recommendations"]] == ["carbon_verification"]

    @pytest.mark.parametrize("year", ["9999", "1969", "0001", "abc", "", "2025.5", "-1"])
    async def test_a_hostile_year_is_a_client_error(self, client, pool, year):
        a = await signed_in(client, await admin(pool))
        r = await client.get(f"{a.base}/recommendations", params={"year": year}, headers=a.headers)
        assert r.status_code == 400, r.text
        assert r.headers["content-type"].startswith("application/problem+json")

    async def test_another_enterprise_is_not_found(self, client, pool):
        a = await signed_in(client, await admin(pool))
        r = await client.get(
            f"/api/enterprise/v1/enterprises/{uuid.uuid4()}/recommendations",
            params={"year": YEAR},
            headers=a.headers,
        )
        assert r.status_code == 404 and r.json()["code"] == "enterprise_not_found"


def test_savings_sum_is_fsum_of_terms():
    cat = green_services.catalogue()
    service = next(s for s in cat.services if s.id == "waste_heat_recovery")
    uses = {
        "coal": _use("coal", 1000, 1900.0, 714.3, "t"),
        "steam": _use("steam", 24_000, 110.0, 34.12, "GJ"),
    }
    s = green_services.savings(service, uses, cat.prices)
    assert s is not None and [t.kind for t in s.terms] == ["coal", "steam"]
    assert s.yuan_per_year == math.fsum([0.08 * 1000 * 1000.0, 0.08 * 24_000 * 80.0])
    assert msgspec.json.decode(msgspec.json.encode(s), type=green_services.Savings) == s
