"""The energy-efficiency bill on the worked district (tests/enterprises/green_factories.py, its
numbers written out there and below): use by energy kind with its cost, metered use by site and
equipment class, the intensities against the peers' medians (computed by hand), the savings of
the recommended actions; no median below the minimum of peers; the CSV download; meters
carrying an equipment class; hostile periods answered 4xx."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
import pytest

from enterprises import efficiency_bill, energy
from enterprises import efficiency_repository as repo
from enterprises.energy_schemas import MeterIn, SiteIn
from kit.db import transaction
from tests.enterprises.accounting_factories import enterprises, recorded, year_rows
from tests.enterprises.api import admin, signed_in
from tests.enterprises.energy_factories import PUSHER, push, pusher, series
from tests.enterprises.green_factories import INDUSTRY, YEAR, district

ZONE = ZoneInfo("Asia/Shanghai")
MARCH = datetime(YEAR, 3, 1, tzinfo=ZONE).astimezone(UTC)
SITE = "=Kiln plant"  # a name a spreadsheet would take for a formula

# Enterprise 1's year: 3,000,000 kWh (368.7 t ce, 1,591.8 t) and 24,000 GJ of steam
# (818.88 t ce, 2,640 t); 6,000 of added value.
ENERGY_TCE = 368.7 + 818.88  # 1,187.58
EMISSIONS_T = 1591.8 + 2640.0  # 4,231.8
# The peers' intensities with enterprise 1's (0.19793 and 0.7053), sorted; the median is the
# third of five: energy 0.3687 (the 300,000 kWh peer), carbon 1.5918.
ENERGY_I = ENERGY_TCE / 6000
CARBON_I = EMISSIONS_T / 6000
ENERGY_MEDIAN = sorted([0.1229, 0.3687, 0.4916, 0.6145, ENERGY_I])[2]
CARBON_MEDIAN = sorted([0.5306, 1.5918, 2.1224, 2.653, CARBON_I])[2]


async def _meters(pool: Any, enterprise_id: Any) -> None:
    """A compressor meter (250 kWh metered in March) and an unclassified one (40 kWh)."""
    await pusher(pool)
    async with transaction(pool) as tx:
        site = await energy.add_site(tx, enterprise_id, SiteIn(name=SITE))
        for ref, cls in (("AC1", "air_compressor"), ("M2", None)):
            await energy.add_meter(
                tx,
                enterprise_id,
                MeterIn(
                    site_id=site.id,
                    ref=ref,
                    kind="electricity",
                    unit="kWh",
                    pusher=PUSHER,
                    equipment_class=cls,  # type: ignore[arg-type]
                ),
            )
    await push(pool, series("AC1", [0, 100, 250], start=MARCH) + series("M2", [0, 40], start=MARCH))


async def _worked(client: Any, pool: Any) -> Any:
    a = await signed_in(client, await admin(pool, industry=INDUSTRY))
    await _meters(pool, a.enterprise.id)
    await district(pool, own=a.enterprise.id)
    return a


class TestTheBill:
    async def test_the_worked_year(self, client, pool):
        a = await _worked(client, pool)
        r = await client.get(f"{a.base}/bills/{YEAR}", headers=a.headers)
        assert r.status_code == 200, r.text
        b = r.json()
        assert (b["period"], b["start"], b["end"]) == ("2025", "2025-01-01", "2026-01-01")
        assert b["months_with_data"] == 12 and b["added_value"] == pytest.approx(6000)
        assert b["energy_tce"] == pytest.approx(1187.58)
        assert b["emissions_t"] == pytest.approx(4231.8)
        # 3,000,000 kWh × 0.65 + 24,000 GJ × 80 yuan
        assert b["cost_yuan"] == pytest.approx(1_950_000 + 1_920_000)
        kinds = {k["kind"]: k for k in b["kinds"]}
        assert list(kinds) == ["electricity", "steam"]
        e, s = kinds["electricity"], kinds["steam"]
        assert (e["quantity"], e["unit"]) == (pytest.approx(3_000_000), "kWh")
        assert e["energy_tce"] == pytest.approx(368.7)
        assert e["energy_share"] == pytest.approx(368.7 / 1187.58)
        assert e["emissions_t"] == pytest.approx(1591.8)
        assert e["factor_refs"] == ["grid:2023:national:@v1"]
        assert (e["price_yuan_per_unit"], e["cost_yuan"]) == (0.65, pytest.approx(1_950_000))
        assert (s["quantity"], s["unit"], s["emissions_t"]) == (
            pytest.approx(24_000),
            "GJ",
            pytest.approx(2640),
        )
        assert s["energy_tce"] == pytest.approx(818.88)
        # metered, by site and equipment class (the unclassified meter last)
        assert [
            (m["site"], m["equipment_class"], m["kind"], m["quantity"], m["meters"])
            for m in b["metered"]
        ] == [
            (SITE, "air_compressor", "electricity", 250.0, 1),
            (SITE, "unclassified", "electricity", 40.0, 1),
        ]
        p = b["peers"]
        assert (p["industry"], p["peers"], p["min_peers"], p["disclosed"]) == ("C30", 5, 5, True)
        assert p["energy_intensity"] == pytest.approx(0.19793)
        assert p["energy_median"] == pytest.approx(0.3687) == ENERGY_MEDIAN
        assert p["energy_ratio"] == pytest.approx(0.19793 / 0.3687)
        assert p["carbon_intensity"] == pytest.approx(0.7053)
        assert p["carbon_median"] == pytest.approx(1.5918) == CARBON_MEDIAN
        assert p["carbon_ratio"] == pytest.approx(0.7053 / 1.5918)
        assert p["reason"] is None
        got = {x["service"]: x for x in b["recommendations"]}
        assert list(got) == [
            "rooftop_pv",
            "waste_heat_recovery",
            "compressed_air",
            "green_electricity",
            "green_loan",
            "carbon_verification",
        ]
        # rooftop PV: 10 % × 3,000,000 kWh = 300,000 kWh; × 0.65 = 195,000 yuan;
        # × 0.5306 kg = 159.18 t CO2
        pv = got["rooftop_pv"]["savings"]
        assert pv["yuan_per_year"] == pytest.approx(195_000)
        assert pv["t_co2_per_year"] == pytest.approx(159.18)
        (term,) = pv["terms"]
        inputs = {i["name"]: (i["value"], i["source"]) for i in term["inputs"]}
        assert inputs["annual_use"] == (pytest.approx(3_000_000), "enterprise")
        assert inputs["share"] == (0.1, "catalogue")
        assert inputs["factor"] == (pytest.approx(0.5306), "factor")
        # waste heat: 8 % × 24,000 GJ = 1,920 GJ; × 80 = 153,600 yuan; × 110 kg = 211.2 t
        assert got["waste_heat_recovery"]["savings"]["yuan_per_year"] == pytest.approx(153_600)
        # compressed air: 2 % × 3,000,000 = 60,000 kWh: 39,000 yuan, 31.836 t
        assert got["compressed_air"]["savings"]["t_co2_per_year"] == pytest.approx(31.836)
        assert got["compressed_air"]["reasons"][0]["matched"]["equipment"] == ["air_compressor"]
        assert b["savings_yuan_per_year"] == pytest.approx(195_000 + 153_600 + 39_000)
        assert b["savings_t_co2_per_year"] == pytest.approx(159.18 + 211.2 + 31.836)

    async def test_a_month_is_annualised(self, client, pool):
        a = await _worked(client, pool)
        b = (await client.get(f"{a.base}/bills/2025-03", headers=a.headers)).json()
        assert b["months_with_data"] == 1
        assert b["energy_tce"] == pytest.approx(1187.58 / 12)
        # the month × 12: the same savings a year as the year's
        got = {x["service"]: x["savings"] for x in b["recommendations"]}
        assert got["waste_heat_recovery"]["yuan_per_year"] == pytest.approx(153_600)
        assert b["peers"]["energy_median"] == pytest.approx(0.3687)

    async def test_below_the_minimum_of_peers_no_median(self, pool, settings):
        ids = await district(pool)
        few = msgspec.structs.replace(settings.enterprises, bill_min_peers=6)
        async with pool.acquire() as conn:
            b = await efficiency_bill.bill(conn, ids[0], str(YEAR), few)
            row = await repo.peer_intensities(conn, b.basis, b.start, b.end, "C30", min_peers=6)
        p = b.peers
        assert (p.peers, p.min_peers, p.disclosed, p.reason) == (
            5,
            6,
            False,
            "industry_too_few_peers",
        )
        assert p.energy_median is None and p.carbon_median is None and p.energy_ratio is None
        assert p.energy_intensity == pytest.approx(0.19793)  # its own figure stays
        assert p.note is not None and "fewer than 6" in p.note.en and "少于 6 家" in p.note.zh
        # the statement itself answers no median below the minimum
        assert (row["peers"], row["energy_median"], row["carbon_median"]) == (5, None, None)

    async def test_an_enterprise_alone_in_its_industry(self, pool, settings):
        await district(pool)
        (alone,) = await enterprises(pool, 1, industry="C1711", first=6)
        await recorded(
            pool,
            year_rows(alone, YEAR, {"electricity": 1000.0, "added_value": 10.0}),
            start=datetime(YEAR, 1, 1).date(),
            end=datetime(YEAR + 1, 1, 1).date(),
            enterprise_ids=[alone],
        )
        async with pool.acquire() as conn:
            b = await efficiency_bill.bill(conn, alone, str(YEAR), settings.enterprises)
        assert (b.peers.industry, b.peers.peers, b.peers.disclosed) == ("C17", 1, False)

    async def test_no_data_in_the_period_is_not_found(self, client, pool):
        a = await _worked(client, pool)
        r = await client.get(f"{a.base}/bills/2024", headers=a.headers)
        assert r.status_code == 404 and r.json()["code"] == "not_found"
        r = await client.get(f"{a.base}/bills/2024/csv", headers=a.headers)
        assert r.status_code == 404

    @pytest.mark.parametrize(
        "period",
        ["9999-12", "9999", "2025-13", "2025-00", "1969", "0001-01", "2101", "2025-3",
         "abc", "2025-03-01", "%00"],
    )  # fmt: skip
    async def test_a_hostile_period_is_a_client_error(self, client, pool, period):
        a = await signed_in(client, await admin(pool))
        for suffix in ("", "/csv"):
            r = await client.get(f"{a.base}/bills/{period}{suffix}", headers=a.headers)
            assert 400 <= r.status_code < 500, (period, suffix, r.status_code, r.text)
            assert r.headers["content-type"].startswith("application/problem+json")


class TestTheDownload:
    async def test_the_csv(self, client, pool):
        a = await _worked(client, pool)
        r = await client.get(f"{a.base}/bills/{YEAR}/csv", headers=a.headers)
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == "text/csv; charset=utf-8"
        assert r.headers["content-disposition"] == (
            f'attachment; filename="efficiency-bill-{a.enterprise.credit_code}-2025.csv"'
        )
        assert r.content.startswith(b"\xef\xbb\xbf")  # the BOM: a spreadsheet reads UTF-8
        rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"), newline="")))
        assert b"\r\n" in r.content
        assert rows[0] == ["能效账单 · Energy-efficiency bill"]
        items = {row[0]: row[1] for row in rows[2:12]}
        assert items["企业 Enterprise"] == a.enterprise.name
        assert items["综合能耗 Energy (t ce)"] == "1187.58"
        assert items["估算费用 Estimated cost (yuan)"] == "3870000"
        by_first = {row[0]: row for row in rows if row}
        assert by_first["electricity"][1:4] == ["3000000", "kWh", "368.7"]
        assert by_first["steam"][5] == "2640"
        assert [row[1:6] for row in rows if row and row[0] == "'" + SITE] == [
            ["air_compressor", "electricity", "250", "kWh", "1"],
            ["unclassified", "electricity", "40", "kWh", "1"],
        ]
        assert SITE not in by_first  # never a bare formula
        assert by_first["能耗强度 Energy intensity (t ce / 万元)"][1:3] == ["0.19793", "0.3687"]
        assert by_first["waste_heat_recovery"][3:6] == ["153600", "211.2", "65.51"]
        assert "8 %" not in by_first["waste_heat_recovery"][6]
        assert "0.08 × 24,000 GJ = 1,920 GJ" in by_first["waste_heat_recovery"][6]
        assert by_first["green_loan"][3] == ""  # not an action
        assert by_first["合计 Total"][3:5] == ["387600", "402.216"]

    def test_csv_cells_a_spreadsheet_would_evaluate(self):
        for text in ("=1+1", "+1", "-1", "@SUM(A1)"):
            assert efficiency_bill._cell(text) == "'" + text
        assert efficiency_bill._cell("Kiln") == "Kiln"


class TestMeterClasses:
    async def test_a_meter_registers_with_its_class(self, client, pool):
        a = await signed_in(client, await admin(pool))
        await pusher(pool)
        site = await client.post(f"{a.base}/sites", json={"name": "Plant"}, headers=a.headers)
        body = {
            "site_id": site.json()["id"],
            "ref": "AC9",
            "kind": "electricity",
            "unit": "kWh",
            "pusher": PUSHER,
            "equipment_class": "air_compressor",
        }
        r = await client.post(f"{a.base}/meters", json=body, headers=a.headers)
        assert r.status_code == 201, r.text
        assert r.json()["equipment_class"] == "air_compressor"
        again = await client.post(f"{a.base}/meters", json=body, headers=a.headers)
        assert again.status_code == 201 and again.json()["id"] == r.json()["id"]
        other = await client.post(
            f"{a.base}/meters", json={**body, "equipment_class": "lighting"}, headers=a.headers
        )
        assert other.status_code == 409 and other.json()["code"] == "meter_ref_taken"
        bad = await client.post(
            f"{a.base}/meters", json={**body, "ref": "X", "equipment_class": "robot"},
            headers=a.headers,
        )  # fmt: skip
        assert bad.status_code == 400
        listed = (await client.get(f"{a.base}/meters", headers=a.headers)).json()
        assert [m["equipment_class"] for m in listed] == ["air_compressor"]
        plain = await client.post(
            f"{a.base}/meters", json={**body, "ref": "P1", "equipment_class": None},
            headers=a.headers,
        )  # fmt: skip
        assert plain.status_code == 201 and plain.json()["equipment_class"] is None
