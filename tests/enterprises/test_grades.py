"""Grades by Zhejiang's method: the cut points at each boundary (K exactly 0.6, 0.8, 1.2, 2.0
and just above), the intensity bands, no grade with too few peers, rank within the industry,
the benchmark's two methods; then a year of a district read from the store, the explanation
with its factors and year-on-year changes, and the three-colour index."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

import pytest

from enterprises import grades
from enterprises.grades import GradeInput, GradePolicy
from enterprises.settings import EnterprisesSettings
from tests.enterprises.accounting_factories import enterprises, recorded, year_rows

POLICY = GradePolicy()  # 2 digits, 5 peers, K 0.6 / 0.8 / 1.2 / 2.0, L 0.6 / 2.0, weighted


def _ids(n: int) -> list[uuid.UUID]:
    return [uuid.UUID(int=i + 1) for i in range(n)]


def _inputs(
    ls: list[float], *, added_value: float = 100.0, industry: str = "C2611"
) -> list[GradeInput]:
    """Enterprises whose intensity L is each of ``ls`` (t CO2 / 10,000 yuan)."""
    return [
        GradeInput(
            enterprise_id=eid,
            industry=industry,
            emissions_kg=l_value * 1000 * added_value,
            added_value=added_value,
        )
        for eid, l_value in zip(_ids(len(ls)), ls, strict=True)
    ]


def _by_id(result: list[grades.Grade]) -> list[grades.Grade]:
    return sorted(result, key=lambda g: g.enterprise_id.int)


class TestCutPoints:
    @pytest.mark.parametrize("added_value", [100.0, 7.3, 0.1])
    def test_k_exactly_at_each_bound_is_the_better_grade(self, added_value: float):
        # The industry's L: Σ emissions / Σ added value = 5.0 / 5 = 1.0, so K = L.
        result = _by_id(
            grades.grade(_inputs([0.6, 0.8, 1.2, 2.0, 0.4], added_value=added_value), POLICY)
        )
        assert [g.benchmark for g in result] == [pytest.approx(1.0)] * 5
        assert [g.k for g in result] == [0.6, 0.8, 1.2, 2.0, 0.4]
        assert [g.grade for g in result] == [1, 2, 3, 4, 1]
        assert [g.colour for g in result] == [
            "dark_green",
            "light_green",
            "yellow",
            "orange",
            "dark_green",
        ]

    def test_k_just_above_each_bound_is_the_next_grade(self):
        result = _by_id(grades.grade(_inputs([0.6001, 0.8001, 1.2001, 2.0001, 0.3996]), POLICY))
        assert [g.k for g in result] == [0.6001, 0.8001, 1.2001, 2.0001, 0.3996]
        assert [g.grade for g in result] == [2, 3, 4, 5, 1]
        assert result[3].colour == "red"

    def test_intensity_bands_at_and_above_their_bounds(self):
        result = _by_id(grades.grade(_inputs([0.6, 0.6001, 2.0, 2.0001, 0.1]), POLICY))
        assert [g.band for g in result] == ["low", "medium", "medium", "high", "low"]
        assert grades.band_of(0.6000000000000001, POLICY.bands) == "low"

    def test_rank_within_the_industry_lowest_first_ties_shared(self):
        result = _by_id(grades.grade(_inputs([1.0, 0.5, 1.0, 3.0, 0.2]), POLICY))
        assert [g.rank for g in result] == [3, 2, 3, 5, 1]
        assert {g.peers for g in result} == {5}

    def test_the_mean_benchmark(self):
        # Weighted: (0.5 x 100 + 2.0 x 300 + 1.0 x 100 x 3) / 700 = 950 / 700; mean: 5.5 / 5.
        inputs = _inputs([0.5, 2.0, 1.0, 1.0, 1.0])
        inputs[1] = GradeInput(
            enterprise_id=inputs[1].enterprise_id,
            industry="C2611",
            emissions_kg=2.0 * 1000 * 300,
            added_value=300.0,
        )
        weighted = _by_id(grades.grade(inputs, POLICY))
        mean = _by_id(grades.grade(inputs, GradePolicy(benchmark="mean")))
        assert weighted[0].benchmark == pytest.approx(950 / 700)
        assert mean[0].benchmark == pytest.approx(1.1)
        assert mean[0].k == round(0.5 / 1.1, 4) == 0.4545
        assert weighted[0].k == round(0.5 / (950 / 700), 4) == 0.3684


class TestPeers:
    def test_no_grade_when_the_industry_has_too_few_peers(self):
        result = grades.grade(_inputs([0.5, 1.0, 1.5, 2.0]), POLICY)
        assert [g.grade for g in result] == [None] * 4
        assert {g.reason for g in result} == {"industry_too_few_peers"}
        assert {g.peers for g in result} == {4}
        assert all(g.intensity is not None and g.band is not None for g in result)
        assert all(g.benchmark is None and g.k is None for g in result)
        # the same four with a lower minimum are graded
        assert all(
            g.grade for g in grades.grade(_inputs([0.5, 1.0, 1.5, 2.0]), GradePolicy(min_peers=4))
        )

    def test_an_enterprise_without_added_value_is_no_peer(self):
        inputs = _inputs([0.5, 1.0, 1.5, 2.0, 1.0])
        inputs[4] = GradeInput(
            enterprise_id=inputs[4].enterprise_id,
            industry="C2611",
            emissions_kg=1000.0,
            added_value=0.0,
        )
        result = _by_id(grades.grade(inputs, POLICY))
        assert result[4].reason == "added_value_missing" and result[4].intensity is None
        assert {g.reason for g in result[:4]} == {"industry_too_few_peers"}

    def test_industries_at_the_configured_level(self):
        # C2611 and C2614 are one industry at 2 digits (C26), two at 4.
        inputs = _inputs([0.6, 0.8, 1.2]) + [
            GradeInput(
                enterprise_id=uuid.UUID(int=100 + i),
                industry="C2614",
                emissions_kg=l_value * 100_000,
                added_value=100.0,
            )
            for i, l_value in enumerate([2.0, 0.4])
        ]
        at2 = grades.grade(inputs, POLICY)
        assert {g.industry for g in at2} == {"C26"} and all(g.grade for g in at2)
        at4 = grades.grade(inputs, GradePolicy(industry_digits=4))
        assert {g.industry for g in at4} == {"C2611", "C2614"}
        assert {g.reason for g in at4} == {"industry_too_few_peers"}
        assert grades.industry_group("C26", 4) == "C26" and grades.industry_group("C2611", 0) == "C"


class TestIndex:
    def test_the_three_colour_index_from_what_the_data_has(self):
        s = EnterprisesSettings()
        [g1, _, _, g4, _] = _by_id(grades.grade(_inputs([0.6, 0.8, 1.2, 2.0, 0.4]), POLICY))
        # grade 1: carbon 100; 15 % zero-carbon of a 30 % target: 50; L down 10 %: 80.
        # (100 x 0.5 + 50 x 0.25 + 80 x 0.25) / 1 = 82.5: green.
        good = grades.three_colour(g1, zero_carbon_share=0.15, intensity_change=-0.1, settings=s)
        assert good.indicators == {"carbon": 100.0, "structure": 50.0, "efficiency": 80.0}
        assert (good.score, good.colour) == (82.5, "green")
        assert good.missing == ["pollutants", "management"]
        # grade 4: carbon 40; no renewables: 0; L up 20 %: 20. 40 x 0.5 + 0 + 5 = 25: red.
        bad = grades.three_colour(g4, zero_carbon_share=0.0, intensity_change=0.2, settings=s)
        assert (bad.score, bad.colour) == (25.0, "red")
        # no previous year: efficiency missing, weights renormalised: (40 x .5 + 100 x .25)/.75
        first = grades.three_colour(g4, zero_carbon_share=0.5, intensity_change=None, settings=s)
        assert first.score == 60.0 and first.colour == "yellow"
        assert first.missing == ["efficiency", "pollutants", "management"]


class TestStore:
    async def test_a_year_of_a_district_graded_with_explanation(self, pool: Any):
        s = EnterprisesSettings()
        # Six chemical enterprises (C2611): monthly kWh and added value chosen so that their
        # yearly L is 0.6, 0.8, 1.2, 2.0, 0.4, 1.0 t CO2 / 10,000 yuan under 2023's 0.5306.
        ids = await enterprises(pool, 6)
        ls = [0.6, 0.8, 1.2, 2.0, 0.4, 1.0]
        activity = []
        for eid, l_value in zip(ids, ls, strict=True):
            kwh = l_value * 1000 * 10 / 0.5306  # 10 (10,000 yuan) of added value a month
            activity += year_rows(eid, 2023, {"electricity": kwh, "added_value": 10.0})
            activity += year_rows(eid, 2022, {"electricity": kwh * 1.25, "added_value": 10.0})
        await recorded(pool, activity, start=date(2022, 1, 1), end=date(2024, 1, 1))
        async with pool.acquire() as conn:
            year = await grades.grade_year(conn, 2023, s)
            why = await grades.explain(conn, ids[0], 2023, s)
            none = await grades.explain(conn, ids[0], 2019, s)
        assert none is None
        got = {a.grade.enterprise_id: a for a in year}
        assert len(got) == 6
        # benchmark: Σ emissions / Σ added value = 6.0 x 120 / 720 = 1.0
        assert [got[e].grade.benchmark for e in ids] == [pytest.approx(1.0)] * 6
        assert [got[e].grade.k for e in ids] == ls
        assert [got[e].grade.grade for e in ids] == [1, 2, 3, 4, 1, 3]
        assert [got[e].grade.rank for e in ids] == [2, 3, 5, 6, 1, 4]
        assert all(a.basis == "own/national/" for a in year)
        assert why is not None
        assert why.assessment.grade.k == 0.6
        assert why.emissions_kg == pytest.approx(0.6 * 1000 * 120)
        assert (why.added_value, why.emission_months, why.value_months) == (120.0, 12, 12)
        assert why.factors == ["grid:2023:national:@v1"]
        assert why.benchmark_method == "weighted" and why.min_peers == 5
        changes = {c.kind: c for c in why.year_on_year}
        assert changes["electricity"].change == pytest.approx(-0.2)
        assert changes["added_value"].change == 0.0
        # L fell 20 % against 2022 (2022's 0.5366 factor: 0.75 x 1.25 x 0.5366 / 0.5306)
        l22 = 0.6 * 1.25 * 0.5366 / 0.5306
        assert why.assessment.index.indicators["efficiency"] == pytest.approx(
            min(100.0, 60 - 200 * (0.6 - l22) / l22)
        )

    async def test_an_industry_with_too_few_peers_in_the_store(self, pool: Any):
        ids = await enterprises(pool, 3, industry="C3011")
        activity = [
            r
            for e in ids
            for r in year_rows(e, 2023, {"electricity": 10_000.0, "added_value": 5.0})
        ]
        await recorded(pool, activity, start=date(2023, 1, 1), end=date(2024, 1, 1))
        async with pool.acquire() as conn:
            year = await grades.grade_year(conn, 2023, EnterprisesSettings())
        assert [a.grade.reason for a in year] == ["industry_too_few_peers"] * 3
        assert [a.grade.grade for a in year] == [None] * 3
        assert year[0].grade.industry == "C30" and year[0].grade.peers == 3
