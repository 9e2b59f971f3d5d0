"""Emissions = Σ activity × factor: the pure core over ActivityRow lists (green electricity
lowers scope 2 at most by the month's grid electricity, on-site renewables are zero-carbon),
set-wise persistence, and the recompute from the data side's monthly activity (a report
uploaded through enterprises.energy, green kWh only as far as certificates were claimed)."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from enterprises import accounting, energy, factors
from enterprises.energy_schemas import ReportLineIn
from enterprises.factors import Basis
from kit.db import Tx, transaction
from tests.enterprises.accounting_factories import (
    enterprises,
    month_rows,
    monthly_report,
    recorded,
)
from tests.statements import CountingConnection

JAN = date(2023, 1, 1)
FEB = date(2023, 2, 1)


async def _library(pool: Any) -> factors.Library:
    async with pool.acquire() as conn:
        return await factors.library(conn)


class TestCore:
    async def test_green_electricity_lowers_scope_2_at_most_by_the_grid_kwh(self, pool: Any):
        lib = await _library(pool)
        [a, b] = await enterprises(pool, 2)
        rows = accounting.emissions(
            [
                *month_rows(a, JAN, {"electricity": 10_000.0, "green_electricity": 4_000.0}),
                # more green than grid kWh: only the grid's 3,000 kWh are taken out
                *month_rows(b, JAN, {"electricity": 3_000.0, "green_electricity": 5_000.0}),
            ],
            lib,
            Basis(year=2023),
        )
        by = {(r.enterprise_id, r.kind): r for r in rows}
        assert by[(a, "green_electricity")].emissions_kg == pytest.approx(-4_000 * 0.5306)
        assert accounting.totals([r for r in rows if r.enterprise_id == a]).emissions_kg == (
            pytest.approx(6_000 * 0.5306)
        )
        assert by[(b, "green_electricity")].emissions_kg == pytest.approx(-3_000 * 0.5306)
        assert accounting.totals([r for r in rows if r.enterprise_id == b]).emissions_kg == 0.0

    async def test_on_site_renewables_are_zero_carbon_and_economic_kinds_carry_no_factor(
        self, pool: Any
    ):
        lib = await _library(pool)
        [a] = await enterprises(pool, 1)
        rows = accounting.emissions(
            month_rows(
                a,
                JAN,
                {"onsite_renewable": 50_000.0, "added_value": 120.0, "tax": 8.0, "output": 3.0},
            ),
            lib,
            Basis(),
        )
        assert {r.kind: r.emissions_kg for r in rows} == {
            "onsite_renewable": 0.0,
            "added_value": 0.0,
            "tax": 0.0,
            "output": 0.0,
        }
        assert [r.factor_ref for r in rows if r.kind != "onsite_renewable"] == [None] * 3
        assert accounting.totals(rows).emissions_kg == 0.0

    async def test_heat_steam_and_oil_products(self, pool: Any):
        lib = await _library(pool)
        [a] = await enterprises(pool, 1)
        rows = accounting.emissions(
            month_rows(
                a,
                JAN,
                {"heat": 10.0, "steam": 5.0, "diesel": 1.0, "gasoline": 0.5, "lpg": 0.2},
            ),
            lib,
            Basis(),
        )
        t = accounting.totals(rows)
        # heat and steam 15 GJ x 110 = 1,650 kg (scope 2); diesel 3,095.909637 + gasoline
        # 0.5 x 2,925.05598 + LPG 0.2 x 3,101.329821 = 5,178.703591 kg (scope 1)
        assert t.scope2_kg == pytest.approx(1_650.0)
        assert t.scope1_kg == pytest.approx(5_178.703591, abs=1e-6)

    async def test_the_same_rows_in_any_order_give_the_same_result(self, pool: Any):
        lib = await _library(pool)
        ids = await enterprises(pool, 3)
        activity = [
            r
            for e in ids
            for m in (JAN, FEB)
            for r in month_rows(e, m, {"electricity": 1234.5, "coal": 0.7, "added_value": 33.0})
        ]
        one = accounting.emissions(activity, lib, Basis())
        assert accounting.emissions(list(reversed(activity)), lib, Basis()) == one


class TestPersistence:
    async def test_recording_many_enterprises_is_a_constant_number_of_statements(self, pool: Any):
        ids = await enterprises(pool, 12)
        activity = [
            r
            for e in ids
            for m in (JAN, FEB)
            for r in month_rows(e, m, {"electricity": 1000.0, "natural_gas": 10.0})
        ]
        lib = await _library(pool)
        async with transaction(pool) as tx:
            counter = CountingConnection(tx.conn)
            done = await accounting.record(
                Tx(counter), activity, start=JAN, end=date(2023, 3, 1), basis=Basis(), lib=lib
            )
        assert done.rows == 48 and done.enterprises == 12
        assert counter.calls == 3, counter.log  # plan mode, delete, insert

    async def test_recording_replaces_only_its_months_and_enterprises(self, pool: Any):
        [a, b] = await enterprises(pool, 2)
        both = [
            *month_rows(a, JAN, {"electricity": 1000.0}),
            *month_rows(b, JAN, {"electricity": 2000.0}),
            *month_rows(a, FEB, {"electricity": 3000.0}),
        ]
        await recorded(pool, both, start=JAN, end=date(2023, 3, 1))
        # a's January again, with gas and less electricity; b and February stay
        async with transaction(pool) as tx:
            await accounting.record(
                tx,
                month_rows(a, JAN, {"electricity": 500.0, "natural_gas": 1.0}),
                start=JAN,
                end=FEB,
                basis=Basis(),
                enterprise_ids=[a],
            )
        async with pool.acquire() as conn:
            ea = await accounting.monthly_emissions(
                conn, a, start=JAN, end=date(2023, 3, 1), basis=Basis()
            )
            eb = await accounting.monthly_emissions(conn, b, start=JAN, end=FEB, basis=Basis())
        assert [(m.month, sorted(k.kind for k in m.kinds)) for m in ea] == [
            (JAN, ["electricity", "natural_gas"]),
            (FEB, ["electricity"]),
        ]
        assert ea[0].kinds[0].quantity == 500.0 and ea[1].kinds[0].quantity == 3000.0
        assert eb[0].emissions_kg == pytest.approx(2000 * 0.5306)


class TestRecompute:
    async def test_a_report_is_recomputed_from_the_data_side_with_claimed_green_kwh(
        self, pool: Any
    ):
        [a] = await enterprises(pool, 1)
        may = date(2026, 5, 1)
        await monthly_report(
            pool,
            a,
            may,
            [
                ReportLineIn(kind="electricity", quantity=200.0, unit="MWh"),
                ReportLineIn(
                    kind="green_electricity",
                    quantity=2_000.0,
                    unit="kWh",
                    certificates=["GEC-2026-000001", "GEC-2026-000002"],
                ),
                ReportLineIn(kind="natural_gas", quantity=10_000.0, unit="m3"),
                ReportLineIn(kind="added_value", quantity=300.0, unit="10k_CNY"),
            ],
        )
        async with transaction(pool) as tx:
            done = await accounting.recompute(
                tx, start=may, end=date(2026, 6, 1), basis=Basis(), enterprise_ids=[a]
            )
        assert done.rows == 4
        async with pool.acquire() as conn:
            [m] = await accounting.monthly_emissions(
                conn, a, start=may, end=date(2026, 6, 1), basis=Basis()
            )
            activity = await energy.monthly_activity(
                conn, start=may, end=date(2026, 6, 1), enterprise_ids=[a]
            )
        assert {r.kind: r.quantity for r in activity}["electricity"] == 200_000.0
        kinds = {k.kind: k for k in m.kinds}
        # 2026 is not published: the latest year before it, 2023 (0.5306 kg/kWh).
        assert kinds["electricity"].factor_ref == "grid:2023:national:"
        assert kinds["electricity"].emissions_kg == pytest.approx(200_000 * 0.5306)
        assert kinds["green_electricity"].emissions_kg == pytest.approx(-2_000 * 0.5306)
        assert kinds["natural_gas"].emissions_kg == pytest.approx(10_000 * 2.162189)
        assert m.emissions_kg == pytest.approx(198_000 * 0.5306 + 21_621.89)
        assert m.basis == "own/national/"
