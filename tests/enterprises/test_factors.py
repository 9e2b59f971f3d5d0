"""The versioned factor library: seeded from data with sources, fuels derived by the national
guidelines' formula, the grid factor of a month under a basis, and versioning: the same
activity under two factor years gives two results, both written out here."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import pytest

from enterprises import accounting, factors
from enterprises.errors import FactorMissing
from enterprises.factors import Basis, GridFactor
from tests.enterprises.accounting_factories import enterprises, month_rows, recorded

MAY_2023 = date(2023, 5, 1)
# One month of one enterprise: 100,000 kWh from the grid of which 20,000 kWh green (claimed
# certificates), 5,000 kWh from its own PV, 1,000 m3 natural gas, 2 t raw coal.
MONTH = {
    "electricity": 100_000.0,
    "green_electricity": 20_000.0,
    "onsite_renewable": 5_000.0,
    "natural_gas": 1_000.0,
    "coal": 2.0,
    "added_value": 500.0,
}


class TestLibrary:
    async def test_the_seed_stores_every_factor_of_the_file_with_its_source(self, pool: Any):
        data = json.loads(factors.FACTORS_FILE.read_text(encoding="utf-8"))
        async with pool.acquire() as conn:
            lib = await factors.library(conn)
            await factors.seed(conn, "440300")  # again: nothing changes, nothing doubles
            again = await factors.library(conn)
        assert again == lib
        assert len(lib.grid) == len(data["grid"]) == 18
        assert {f.kind for f in lib.fuels.values()} == {f["kind"] for f in data["fuels"]}
        assert all(g.source and g.published for g in lib.grid)
        by_ref = {g.ref: g.kg_per_kwh for g in lib.grid}
        assert by_ref["grid:2021:national:"] == 0.5568
        assert by_ref["grid:2022:national:"] == 0.5366
        assert by_ref["grid:2023:national:"] == 0.5306
        assert by_ref["grid:2022:excl_market_nonfossil:"] == 0.5856
        assert by_ref["grid:2023:fossil_only:"] == 0.8273
        assert by_ref["grid:2023:regional:south"] == 0.4042
        assert by_ref["grid:2022:provincial:530000"] == 0.1073
        assert by_ref["grid:2022:ets_reporting:"] == 0.5703

    async def test_fuels_are_derived_from_the_guidelines_inputs(self, pool: Any):
        async with pool.acquire() as conn:
            lib = await factors.library(conn)
        gas = lib.fuel("natural_gas")
        # 389.31 GJ/10^4 m3 x 15.3 tC/TJ x 99 % x 44/12 = 2.162189 kg CO2/m3
        assert (gas.ncv_gj_per_unit, gas.carbon_tc_per_gj, gas.oxidation) == (
            0.038931,
            0.0153,
            0.99,
        )
        assert gas.kg_per_unit == 2.162189
        assert lib.fuel("coal").kg_per_unit == 1900.298849  # 20.908 x 26.37 x 94 % x 44/12
        assert lib.fuel("diesel").kg_per_unit == 3095.909637
        assert lib.fuel("gasoline").kg_per_unit == 2925.05598
        assert lib.fuel("fuel_oil").kg_per_unit == 3170.461243
        assert lib.fuel("lpg").kg_per_unit == 3101.329821
        assert lib.fuel("heat").kg_per_unit == lib.fuel("steam").kg_per_unit == 110.0
        assert lib.fuel("onsite_renewable").kg_per_unit == 0.0
        assert factors.derived(1.0, 0.012, 1.0) == 44.0  # 1 GJ x 12 kg C/GJ x 44/12

    async def test_the_grid_factor_of_a_month_under_a_basis(self, pool: Any):
        async with pool.acquire() as conn:
            lib = await factors.library(conn)
        own = Basis()
        assert lib.grid_for(own, 2022).ref == "grid:2022:national:"
        assert lib.grid_for(own, 2025).ref == "grid:2023:national:"  # latest before
        assert lib.grid_for(own, 2019).ref == "grid:2021:national:"  # none before: earliest
        fixed = Basis(year=2022)
        assert lib.grid_for(fixed, 2023).kg_per_kwh == 0.5366
        excl = Basis(scope="excl_market_nonfossil")
        assert lib.grid_for(excl, 2021).ref == "grid:2022:excl_market_nonfossil:"
        assert lib.grid_for(Basis(scope="regional", area="east"), 2024).kg_per_kwh == 0.55
        with pytest.raises(FactorMissing):
            lib.grid_for(Basis(year=2020), 2020)  # a named year must be published
        with pytest.raises(FactorMissing):
            lib.grid_for(Basis(scope="regional", area="mars"), 2023)
        assert Basis(year=2022).label == "2022/national/"
        assert Basis(scope="regional", area="south").label == "own/regional/south"


class TestVersioning:
    async def test_the_same_data_under_two_factor_years_gives_two_documented_results(
        self, pool: Any
    ):
        [eid] = await enterprises(pool, 1)
        activity = month_rows(eid, MAY_2023, MONTH)
        end = date(2023, 6, 1)
        for year in (2022, 2023):
            await recorded(pool, activity, start=MAY_2023, end=end, basis=Basis(year=year))
        async with pool.acquire() as conn:
            y22, y23 = [
                (
                    await accounting.monthly_emissions(
                        conn, eid, start=MAY_2023, end=end, basis=Basis(year=y)
                    )
                )[0]
                for y in (2022, 2023)
            ]
        kinds22 = {k.kind: k for k in y22.kinds}
        kinds23 = {k.kind: k for k in y23.kinds}
        # 2022 factors: grid 100,000 kWh x 0.5366 = 53,660 kg; green 20,000 kWh taken out at
        # the same factor = -10,732 kg; gas 1,000 m3 x 2.162189 = 2,162.189 kg; coal
        # 2 t x 1,900.298849 = 3,800.597698 kg; own PV 0. Net 48,890.786698 kg.
        assert kinds22["electricity"].emissions_kg == pytest.approx(53_660.0, abs=1e-6)
        assert kinds22["green_electricity"].emissions_kg == pytest.approx(-10_732.0, abs=1e-6)
        assert kinds22["natural_gas"].emissions_kg == pytest.approx(2_162.189, abs=1e-6)
        assert kinds22["coal"].emissions_kg == pytest.approx(3_800.597698, abs=1e-6)
        assert kinds22["onsite_renewable"].emissions_kg == 0.0
        assert y22.emissions_kg == pytest.approx(48_890.786698, abs=1e-6)
        assert y22.scope1_kg == pytest.approx(5_962.786698, abs=1e-6)
        assert y22.scope2_kg == pytest.approx(42_928.0, abs=1e-6)
        # 2023 factors: grid x 0.5306 = 53,060 kg, green -10,612 kg, fuels unchanged.
        # Net 48,410.786698 kg.
        assert kinds23["electricity"].emissions_kg == pytest.approx(53_060.0, abs=1e-6)
        assert kinds23["green_electricity"].emissions_kg == pytest.approx(-10_612.0, abs=1e-6)
        assert y23.emissions_kg == pytest.approx(48_410.786698, abs=1e-6)
        assert y23.scope2_kg == pytest.approx(42_448.0, abs=1e-6)
        # Every row says which factor, year and version made it.
        assert (kinds22["electricity"].factor_ref, kinds22["electricity"].factor_version) == (
            "grid:2022:national:",
            1,
        )
        assert kinds23["electricity"].factor_ref == "grid:2023:national:"
        assert kinds22["natural_gas"].factor_ref == "fuel:natural_gas"
        assert (y22.basis, y23.basis) == ("2022/national/", "2023/national/")
        # The energy used does not depend on the factor year: 100,000 x 0.1229 + 1,000 x
        # 1.2143 + 2 x 714.3 = 14,932.9 kgce (green and own PV are not counted again).
        assert y22.energy_kgce == pytest.approx(14_932.9) == y23.energy_kgce

    async def test_recomputing_is_deterministic_and_leaves_other_bases_alone(self, pool: Any):
        [eid] = await enterprises(pool, 1)
        activity = month_rows(eid, MAY_2023, MONTH)
        end = date(2023, 6, 1)
        await recorded(pool, activity, start=MAY_2023, end=end, basis=Basis(year=2022))
        first = await recorded(pool, activity, start=MAY_2023, end=end, basis=Basis(year=2023))
        async with pool.acquire() as conn:
            before = await accounting.monthly_emissions(
                conn, eid, start=MAY_2023, end=end, basis=Basis(year=2023)
            )
        again = await recorded(
            pool, list(reversed(activity)), start=MAY_2023, end=end, basis=Basis(year=2023)
        )
        async with pool.acquire() as conn:
            after = await accounting.monthly_emissions(
                conn, eid, start=MAY_2023, end=end, basis=Basis(year=2023)
            )
            other = await accounting.monthly_emissions(
                conn, eid, start=MAY_2023, end=end, basis=Basis(year=2022)
            )
        assert first.rows == again.rows == 6
        assert before == after
        assert other[0].emissions_kg == pytest.approx(48_890.786698, abs=1e-6)

    async def test_a_corrected_publication_is_a_new_version_recorded_with_results(self, pool: Any):
        [eid] = await enterprises(pool, 1)
        activity = month_rows(eid, MAY_2023, {"electricity": 100_000.0})
        end = date(2023, 6, 1)
        basis = Basis(year=2022)
        await recorded(pool, activity, start=MAY_2023, end=end, basis=basis)
        async with pool.acquire() as conn:
            v2 = await factors.publish_grid_factor(
                conn,
                GridFactor(
                    year=2022,
                    scope="national",
                    area="",
                    version=0,
                    kg_per_kwh=0.54,
                    source="a corrected publication (test)",
                    published="2026-12",
                ),
            )
            kept = await accounting.monthly_emissions(
                conn, eid, start=MAY_2023, end=end, basis=basis
            )
        assert v2.version == 2
        assert kept[0].kinds[0].factor_version == 1  # what was computed stays as it was
        await recorded(pool, activity, start=MAY_2023, end=end, basis=basis)
        async with pool.acquire() as conn:
            now = await accounting.monthly_emissions(
                conn, eid, start=MAY_2023, end=end, basis=basis
            )
        assert now[0].kinds[0].factor_version == 2
        assert now[0].emissions_kg == pytest.approx(54_000.0)
