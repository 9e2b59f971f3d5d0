"""Synergy analyses (reporting/synergy.py): quartiles, Pearson's r and the joint reduction
potential on a worked example with the numbers written out; over the synthetic industrial
district the planted correlated industry ranks first and the small industry is suppressed;
the route through the real app with a government token."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from enterprises import synthetic
from enterprises.factors import Basis
from enterprises.pollutants import EnterpriseYear
from enterprises.pollutants_schemas import PollutantFigures
from enterprises.settings import EnterprisesSettings
from kit.db import transaction
from reporting import synergy
from reporting.settings import ReportingSettings
from tests.gov.factories import bearer, gov_user

ENT = EnterprisesSettings()
REP = ReportingSettings()  # enterprise tables: k = 3, dominance (2, 85 %)
URL = "/api/gov/v1/reports/enterprises/synergy"


def _ey(n: int, industry: str, carbon: float, pollutant: float, *, year: int = 2025) -> Any:
    """An enterprise-year of 100 (10,000 yuan) of added value at the given intensities."""
    return EnterpriseYear(
        enterprise_id=uuid.UUID(int=n),
        industry=industry,
        district_code="440303",
        year=year,
        emissions_kg=carbon * 100 * 1000,
        added_value=100.0,
        carbon_intensity=carbon,
        pollutants=PollutantFigures(
            amounts_kg={"so2": pollutant * 100 * 0.95},
            sources={"so2": "report"},
            equivalents=pollutant * 100,
            added_value=100.0,
            intensity_kg_per_10k={"so2": pollutant * 0.95},
            equivalents_per_10k=pollutant,
        ),
    )


class TestArithmetic:
    def test_quartiles_and_pearson(self):
        q = synergy.quartiles([1.0, 2.0, 3.0, 4.0, 5.0])
        assert (q.q1, q.median, q.q3) == (2.0, 3.0, 4.0)
        q = synergy.quartiles([1.0, 2.0, 3.0, 4.0])
        assert (q.q1, q.median, q.q3) == (1.75, 2.5, 3.25)
        assert synergy.pearson([1, 2, 3], [2, 4, 6]) == pytest.approx(1.0)
        assert synergy.pearson([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
        assert synergy.pearson([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(0.8)
        assert synergy.pearson([1, 2], [1, 2]) is None
        assert synergy.pearson([1, 1, 1], [1, 2, 3]) is None

    def test_a_worked_example(self):
        # C26: carbon 1.0 ... 3.5 (steps of 0.5) and pollutant 10, 20, 15, 30, 25, 35; C30: the
        # same carbon against pollutant 35 ... 10 (r = -1); C14: two enterprises (k = 3).
        carbon = [1.0, 1.5, 2.0, 2.5, 3.0, 3.5]
        rows = [
            *(
                _ey(i, "C2614", c, p)
                for i, (c, p) in enumerate(zip(carbon, [10, 20, 15, 30, 25, 35], strict=True))
            ),
            *(
                _ey(10 + i, "C3011", c, p)
                for i, (c, p) in enumerate(zip(carbon, [35, 30, 25, 20, 15, 10], strict=True))
            ),
            _ey(20, "C1469", 1.0, 1.0),
            _ey(21, "C1469", 2.0, 2.0),
            # the year before: C26 at carbon 2 and pollutant 50 each.
            *(_ey(30 + i, "C2614", 2.0, 50.0, year=2024) for i in range(3)),
        ]
        got = synergy.analyse(2025, rows, REP, ENT)
        assert got.ranking == ["C26", "C30"]
        c26, c30, c14 = got.industries
        assert (c26.industry, c26.rank, c30.rank, c14.rank) == ("C26", 1, 2, None)
        # Q1 at (6 - 1) x 0.25 = 1.25 between the order statistics: 1.5 + 0.25 x 0.5 = 1.625.
        assert c26.carbon_intensity == synergy.Quartiles(
            q1=1.625, median=2.25, q3=2.875, weighted=2.25
        )
        assert c26.pollutant_intensity == synergy.Quartiles(
            q1=16.25, median=22.5, q3=28.75, weighted=22.5
        )
        # r = Σ dx dy / sqrt(Σ dx² Σ dy²) = 38.75 / sqrt(4.375 x 437.5) = 31 / 35.
        assert c26.correlation == pytest.approx(31 / 35)
        # Excess over Q1 x 100 of added value: carbon (0.375 + 0.875 + 1.375 + 1.875) x 100 =
        # 450 t of the analysed enterprises' 1,350 + 1,350 + 300 = 3,000 t; pollutant (3.75 +
        # 13.75 + 8.75 + 18.75) x 100 = 4,500 equivalents of 13,500 + 13,500 + 300 = 27,300.
        assert c26.carbon_excess_share.value == pytest.approx(0.15)
        assert c26.pollutant_excess_share.value == pytest.approx(4500 / 27300, abs=1e-6)
        assert c26.potential.value == pytest.approx(31 / 35 * (0.15 + 4500 / 27300) / 2, abs=1e-6)
        # A negative correlation has no joint potential.
        assert c30.correlation == pytest.approx(-1.0) and c30.potential.value == 0.0
        # Trend: weighted 2.25 against 2.0 (+12.5 %), 22.5 against 50 (-55 %).
        assert c26.trend is not None
        assert c26.trend.carbon_change == pytest.approx(0.125)
        assert c26.trend.pollutant_change == pytest.approx(-0.55)
        assert c30.trend is not None and c30.trend.previous_carbon is None
        # Two enterprises: suppressed whole, null, never 0.
        assert c14.status == "suppressed" and c14.enterprises.value is None
        assert c14.carbon_intensity is None and c14.potential.status == "suppressed"

    def test_a_dominated_excess_is_suppressed_with_its_rank(self):
        # Four enterprises, one far above the rest: its excess is ~all of the industry's.
        rows = [_ey(i, "C2614", c, c * 10) for i, c in enumerate([1.0, 1.0, 1.01, 9.0])]
        [c26] = synergy.analyse(2025, rows, REP, ENT).industries
        assert c26.status == "ok" and c26.correlation == pytest.approx(1.0)
        assert c26.potential.status == "suppressed" and c26.rank is None


async def _district(pool: Any, seed: int) -> None:
    async with transaction(pool) as tx:
        codes = await synthetic.district_codes(tx)
        d = synthetic.district(seed=seed, enterprises=182, districts=codes, small_industry=2)
        await synthetic.load_accounts(tx, d, [2024, 2025], basis=Basis.of(ENT))


class TestSyntheticDistrict:
    @pytest.mark.parametrize("seed", [7, 11])
    async def test_the_planted_industry_ranks_first_and_the_small_one_is_suppressed(
        self, pool: Any, seed: int
    ):
        await _district(pool, seed)
        async with pool.acquire() as conn:
            got = await synergy.synergy(conn, 2025, REP, ENT)
        planted = synthetic.SYNERGY_PLANTED[:3]  # C26 at the grades' two digits
        assert got.ranking[0] == planted, got.ranking
        by = {x.industry: x for x in got.industries}
        r = by[planted].correlation
        assert r is not None and r > 0.9
        others = [
            x.correlation
            for x in got.industries
            if x.industry != planted and x.correlation is not None
        ]
        assert len(others) == 11 and max(others) < 0.8
        small = by[synthetic.SMALL_INDUSTRY.code[:3]]
        assert small.status == "suppressed" and small.enterprises.value is None
        assert small.rank is None and small.industry not in got.ranking
        assert by[planted].enterprises.value == 15
        # Pollutants fall 4 % a year in the synthetic district; carbon stays (same activity).
        trend = by[planted].trend
        assert trend is not None and trend.pollutant_change == pytest.approx(-0.04, abs=0.01)
        assert trend.carbon_change == pytest.approx(0.0, abs=0.01)
        assert set(by[planted].pollutants) == {"so2", "nox", "pm", "vocs"}


async def test_the_route_serves_the_report(pool: Any, settings: Any, client: Any):
    await _district(pool, 7)
    _, token = await gov_user(pool, settings)
    r = await client.get(URL, params={"year": 2025}, headers=bearer(token))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["ranking"][0] == "C26"
    small = next(x for x in body["industries"] if x["industry"] == "C25")
    assert small["enterprises"] == {"value": None, "status": "suppressed"}
    for bad in ("2000", "9999", "-1", "x"):
        r = await client.get(URL, params={"year": bad}, headers=bearer(token))
        assert r.status_code == 400, r.text
    assert (await client.get(URL, params={"year": 2025})).status_code == 401
