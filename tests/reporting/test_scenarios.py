"""Kaya projections, the C40 peak test and the dual-carbon index on known inputs."""

from __future__ import annotations

import msgspec
import pytest

from reporting.errors import IndexWeightsInvalid, ScenarioInvalid
from reporting.scenarios import Path, index, kaya, peak_test, scales, score
from reporting.schemas import SeriesValue


def test_kaya_is_the_product_of_its_factors():
    r = kaya(
        base_year=2025,
        years=2,
        population=Path(base=1_000_000, rate=0.1),
        gdp_per_capita=Path(base=100_000),
        energy_intensity=Path(base=0.5),
        carbon_intensity=Path(base=2.0, rate=-0.5),
    )
    # 1e6 people x 1e5 yuan / 1e4 x 0.5 tce x 2 t CO2 = 1e7 t
    assert [y.emissions_t for y in r.years] == [10_000_000.0, 5_500_000.0, 3_025_000.0]
    assert [y.year for y in r.years] == [2025, 2026, 2027]
    assert (r.peak_year, r.peak_emissions_t, r.peaks_within_horizon) == (2025, 1e7, True)


def test_kaya_growth_paths_with_drift_peak_inside_the_horizon():
    # GDP growth 6 % falling by 1 point a year, intensity falling 3 % a year: growth of the
    # product is about 3 %, 2 %, 1 %, 0 %, -1 %... so emissions peak after 3 or 4 years.
    r = kaya(
        base_year=2025,
        years=10,
        population=Path(base=20e6),
        gdp_per_capita=Path(base=150_000, rate=0.06, drift=-0.01),
        energy_intensity=Path(base=0.3, rate=-0.03),
        carbon_intensity=Path(base=2.2),
    )
    e = [y.emissions_t for y in r.years]
    assert r.peak_year == 2025 + e.index(max(e))
    assert 2027 <= r.peak_year <= 2029
    assert r.peaks_within_horizon
    assert e[0] == pytest.approx(20e6 * 150_000 / 1e4 * 0.3 * 2.2)
    # the rate path is applied year by year: GDP per capita after 2 years is x1.06 x1.05
    assert r.years[2].gdp_per_capita == pytest.approx(150_000 * 1.06 * 1.05)


def _kaya(years: int, carbon: Path) -> object:
    one = Path(base=1.0)
    return kaya(
        base_year=2025,
        years=years,
        population=one,
        gdp_per_capita=one,
        energy_intensity=one,
        carbon_intensity=carbon,
    )


def test_kaya_refuses_impossible_paths():
    with pytest.raises(ScenarioInvalid):  # the rate reaches -100 % on the path
        _kaya(10, Path(base=1.0, rate=-0.5, drift=-0.1))
    with pytest.raises(ScenarioInvalid):
        _kaya(0, Path(base=1.0))
    with pytest.raises(ScenarioInvalid):
        _kaya(5, Path(base=0.0))


def series(*pairs: tuple[int, float]) -> list[SeriesValue]:
    return [SeriesValue(year=y, value=v) for y, v in pairs]


def test_peak_test_peaked():
    t = peak_test(series((2010, 100), (2013, 120), (2020, 90)), current_year=2024)
    assert t.status == "peaked"
    assert all(c.met for c in t.criteria)
    assert (t.peak_year, t.latest_year) == (2013, 2020)


@pytest.mark.parametrize(
    ("points", "current", "status", "failed"),
    [
        # two points only: unknown
        (((2010, 120), (2020, 90)), 2024, "unknown", {"at_least_3_points"}),
        # the latest point is 6 years old: unknown
        (((2005, 100), (2008, 120), (2018, 90)), 2024, "unknown", {"latest_within_5_years"}),
        # the peak is only 5 years before the latest: not peaked
        (((2010, 100), (2015, 120), (2020, 90)), 2022, "not_peaked",
         {"peak_over_5_years_before_latest"}),
        # the latest is only 10 % below the peak (not more): not peaked
        (((2010, 100), (2012, 110), (2020, 100)), 2022, "not_peaked",
         {"peak_over_10_percent_above_latest"}),
        # still rising: the peak is the latest point
        (((2018, 100), (2019, 110), (2020, 120)), 2022, "not_peaked",
         {"peak_over_5_years_before_latest", "peak_over_10_percent_above_latest"}),
    ],
)  # fmt: skip
def test_peak_test_criteria(points, current, status, failed):
    t = peak_test(series(*points), current_year=current)
    assert t.status == status
    assert {c.name for c in t.criteria if not c.met} == failed


def test_peak_test_refuses_a_year_twice():
    with pytest.raises(ScenarioInvalid):
        peak_test(series((2010, 1), (2010, 2), (2011, 3)), current_year=2012)


def test_index_weights_renormalise_over_available_indicators():
    table = scales(None)
    assert sum(s.weight for s in table.values()) == pytest.approx(1.0)
    # green travel +5 % on a -20 %..+30 % scale scores 50; emissions -10 % scores 100
    r = index(2026, {"green_travel_growth": 0.05, "enterprise_emissions_change": -0.1}, table)
    by = {i.code: i for i in r.indicators}
    assert by["green_travel_growth"].score == 50.0
    assert by["enterprise_emissions_change"].score == 100.0
    assert by["participation_growth"].score is None
    assert by["green_travel_growth"].effective_weight == pytest.approx(0.5)
    assert r.index == 75.0


def test_index_weights_are_configurable_and_checked():
    table = scales('{"green_travel_growth": 3, "enterprise_emissions_change": 1}')
    r = index(2026, {"green_travel_growth": 0.05, "enterprise_emissions_change": -0.1}, table)
    assert r.index == pytest.approx(0.75 * 50 + 0.25 * 100)
    for bad in ('{"nope": 1}', '{"green_travel_growth": -1}', "[1]", '{"offset_share": 0}'):
        with pytest.raises(IndexWeightsInvalid):
            scales(bad)


def test_index_without_data_is_null():
    assert index(2026, {}, scales(None)).index is None


def test_scores_clamp():
    s = scales(None)["offset_share"]
    assert score(1.0, s) == 100.0 and score(-1.0, s) == 0.0


# --- decisions on the peak path (issue 15, item 4) -------------------------------------------
# The baseline, by hand: population 1,000 x GDP 10,000 yuan / 10,000 x 1 tce x 1 t = 1,000 t in
# 2025; GDP per head grows 10 %, then 5 %, 0 %, -5 % (rate 0.1, drift -0.05), the rest flat:
# 2025 1,000 · 2026 1,100 · 2027 1,155 · 2028 1,155 · 2029 1,097.25 t; the peak 2027 (the
# earlier of two equal years).
BASELINE = [1000.0, 1100.0, 1155.0, 1155.0, 1097.25]
# That baseline as a decision's body, target 2027 (also used by test_reports_api.py).
DECISION = {
    "kaya": {
        "base_year": 2025,
        "years": 4,
        "population": {"base": 1000},
        "gdp_per_capita": {"base": 10000, "rate": 0.1, "drift": -0.05},
        "energy_intensity": {"base": 1},
        "carbon_intensity": {"base": 1},
    },
    "target_peak_year": 2027,
}


def _decision(**kw):
    from reporting.scenarios import decision
    from reporting.schemas import DecisionIn

    return decision(msgspec.convert({**DECISION, **kw}, DecisionIn, strict=False))


def test_the_baseline_decision_is_the_kaya_path():
    r = _decision()
    assert [y.baseline_t for y in r.years] == BASELINE == [y.emissions_t for y in r.years]
    assert (r.baseline_peak_year, r.peak_year, r.peak_emissions_t) == (2027, 2027, 1155.0)
    assert r.peaks_on_time and r.baseline_peaks_on_time and r.gap_t == 0 and r.gap_year is None


def test_a_planned_project_moves_the_peak_year_as_computed_by_hand():
    # 200 t a year from 2028: 2028 1,155 + 200 = 1,355 > 1,155, the new peak, after the target.
    r = _decision(
        projects=[{"name": "Ethylene", "annual_emissions_t": 200, "starts_on": "2028-01-01"}]
    )
    assert [y.projects_t for y in r.years] == [0, 0, 0, 200, 200]
    assert [y.emissions_t for y in r.years] == [1000, 1100, 1155, 1355, 1297.25]
    assert (r.baseline_peak_year, r.peak_year, r.peak_emissions_t) == (2027, 2028, 1355.0)
    assert not r.peaks_on_time and r.baseline_peaks_on_time
    # to peak by 2027, 2028 must come down to 2027's 1,155: 200 t to cut or absorb
    assert (r.gap_t, r.gap_year) == (200.0, 2028)


def test_a_project_starting_mid_year_counts_its_days_that_year():
    # 365 t a year from 2 July 2027: 183 of 2027's 365 days -> 183 t in 2027
    r = _decision(projects=[{"name": "Kiln", "annual_emissions_t": 365, "starts_on": "2027-07-02"}])
    assert [y.projects_t for y in r.years] == [0, 0, 183, 365, 365]
    assert [y.emissions_t for y in r.years] == [1000, 1100, 1338, 1520, 1462.25]
    assert r.peak_year == 2028 and (r.gap_t, r.gap_year) == (182.0, 2028)  # 1,520 - 1,338


def test_a_substitution_with_equal_avoided_and_added_emissions_leaves_the_path_unchanged():
    base = _decision()
    r = _decision(
        substitutions=[
            {
                "name": "Steam from the power plant",
                "supplier_added_t": 500,
                "consumers_avoided_t": 500,
                "starts_on": "2026-03-01",
            }
        ]
    )
    assert [y.emissions_t for y in r.years] == [y.emissions_t for y in base.years] == BASELINE
    assert (r.peak_year, r.peaks_on_time, r.gap_t) == (base.peak_year, True, 0.0)


def test_a_saving_substitution_offsets_a_project():
    # the project's 200 t from 2028 against a substitution saving 300 - 100 = 200 t from 2025
    r = _decision(
        projects=[{"name": "Ethylene", "annual_emissions_t": 200, "starts_on": "2028-01-01"}],
        substitutions=[
            {
                "name": "Steam",
                "supplier_added_t": 100,
                "consumers_avoided_t": 300,
                "starts_on": "2025-01-01",
            }
        ],
    )
    assert [y.substitutions_t for y in r.years] == [-200] * 5
    assert [y.emissions_t for y in r.years] == [800, 900, 955, 1155, 1097.25]
    assert r.peak_year == 2028 and (r.gap_t, r.gap_year) == (200.0, 2028)  # vs 2027's 955


def test_a_target_outside_the_horizon_is_refused():
    with pytest.raises(ScenarioInvalid):
        _decision(target_peak_year=2040)
