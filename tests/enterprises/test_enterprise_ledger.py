"""Enterprises on the regional ledger: an account opened at registration (and by the seeder for
those registered before), verified reductions (the year-on-year fall of the intensity at the
year's output) credited once per enterprise and year, read back from the one ledger; the
ledger audit (run after every test by the fixtures) passes."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime
from typing import Any

from enterprises import accounting, ledger, service
from enterprises.factors import Basis
from enterprises.settings import EnterprisesSettings
from kit.db import transaction
from points import reads
from points import service as points
from points.schemas import PointsPolicy
from tests.enterprises.accounting_factories import enterprises, month_rows, recorded, year_rows
from tests.enterprises.factories import code, enterprise

SETTINGS = EnterprisesSettings()
POLICY = PointsPolicy()
HEAT = 110.0  # kg CO2 per GJ: a factor that does not change with the year


def _heat_for(intensity: float, added_value: float) -> float:
    """GJ of purchased heat a month that makes ``intensity`` (t CO2 / 10,000 yuan)."""
    return intensity * 1000 * added_value / HEAT


async def _grams(pool: Any, owner_type: str, owner_id: str) -> int:
    async with pool.acquire() as conn:
        return {b.asset: b.posted for b in await points.balances(conn, owner_type, owner_id)}[
            "CO2E_G"
        ]


async def _credit(pool: Any, year: int) -> list[accounting.Credited]:
    async with transaction(pool) as tx:
        return await accounting.credit_reductions(tx, year, settings=SETTINGS, policy=POLICY)


class TestAccounts:
    async def test_registration_and_import_open_the_enterprise_account(self, pool: Any):
        [a] = await enterprises(pool, 1)
        async with transaction(pool) as tx:
            await service.import_csv(
                tx,
                "credit_code,name,industry,district,size_class\n"
                + "".join(
                    f"{e.credit_code},{e.name},{e.industry},{e.district},{e.size_class}\n"
                    for e in (enterprise(2), enterprise(3))
                ),
            )
            found = await service.enterprises_by_credit_code(tx.conn, [code(2), code(3)])
        ids = [str(a)] + [str(found[c].id) for c in (code(2), code(3))]
        async with pool.acquire() as conn:
            opened = await reads.posted_by_owner(conn, "enterprise", ids, "CO2E_G")
        assert opened == dict.fromkeys(ids, 0)

    async def test_the_seeder_opens_missing_accounts_and_the_issuance_account(self, pool: Any):
        [a] = await enterprises(pool, 1)
        async with pool.acquire() as conn:
            await ledger.open_missing_accounts(conn)
            await ledger.open_missing_accounts(conn)  # idempotent
            opened = await reads.posted_by_owner(conn, "enterprise", [str(a)], "CO2E_G")
            system = await reads.posted_by_owner(
                conn, "system", [ledger.ENTERPRISE_ISSUANCE.owner_id], "CO2E_G"
            )
        assert opened == {str(a): 0}
        assert system == {"enterprise_issuance": 0}


class TestVerifiedReductions:
    async def test_a_year_on_year_fall_of_intensity_is_credited_once(self, pool: Any):
        [down, up, partial] = await enterprises(pool, 3)
        activity = [
            # L 1.0 at 100 (10,000 yuan) a month in 2022, 0.8 at 120 a month in 2023:
            # (1.0 - 0.8) x 1,440 = 288 t CO2 = 288,000,000 g at the year's output.
            *year_rows(down, 2022, {"heat": _heat_for(1.0, 100), "added_value": 100.0}),
            *year_rows(down, 2023, {"heat": _heat_for(0.8, 120), "added_value": 120.0}),
            # intensity up: nothing to credit
            *year_rows(up, 2022, {"heat": _heat_for(0.5, 100), "added_value": 100.0}),
            *year_rows(up, 2023, {"heat": _heat_for(0.6, 100), "added_value": 100.0}),
            # 2023 complete but 2022 has six months only: not verified
            *year_rows(partial, 2023, {"heat": _heat_for(0.2, 100), "added_value": 100.0}),
        ]
        activity += [
            r
            for m in range(1, 7)
            for r in month_rows(
                partial, date(2022, m, 1), {"heat": _heat_for(2.0, 100), "added_value": 100.0}
            )
        ]
        await recorded(pool, activity, start=date(2022, 1, 1), end=date(2024, 1, 1))
        [credited] = await _credit(pool, 2023)
        r = credited.reduction
        assert credited.new and r.enterprise_id == down
        expected = math.floor((r.baseline_l - r.year_l) * 1440 * 1_000_000)
        assert r.reduction_g == expected and abs(expected - 288_000_000) <= 1
        assert (r.year, r.baseline_year, r.basis, r.added_value) == (
            2023,
            2022,
            "own/national/",
            1440.0,
        )
        assert r.transfer_key == f"enterprise:reduction:{down}:2023"
        assert await _grams(pool, "enterprise", str(down)) == expected
        assert await _grams(pool, "system", "enterprise_issuance") == -expected
        assert await _grams(pool, "enterprise", str(up)) == 0
        assert await _grams(pool, "enterprise", str(partial)) == 0
        # again: nothing new, the same figures answered, the balance unchanged
        [again] = await _credit(pool, 2023)
        assert not again.new and again.reduction == r
        assert await _grams(pool, "enterprise", str(down)) == expected
        async with pool.acquire() as conn:
            assert await accounting.credited(conn, down) == [r]
        # later data changing 2023 does not credit 2023 twice
        await recorded(
            pool,
            year_rows(down, 2023, {"heat": _heat_for(0.5, 120), "added_value": 120.0}),
            start=date(2023, 1, 1),
            end=date(2024, 1, 1),
            enterprise_ids=[down],
        )
        [late] = await _credit(pool, 2023)
        assert not late.new and late.reduction == r
        assert await _grams(pool, "enterprise", str(down)) == expected

    async def test_the_regions_totals_come_from_the_one_ledger(self, pool: Any):
        [a] = await enterprises(pool, 1)
        await recorded(
            pool,
            [
                *year_rows(a, 2022, {"heat": 1000.0, "added_value": 50.0}),
                *year_rows(a, 2023, {"heat": 900.0, "added_value": 50.0}),
            ],
            start=date(2022, 1, 1),
            end=date(2024, 1, 1),
        )
        [c] = await _credit(pool, 2023)
        # (12 x 1,000 - 12 x 900) GJ x 110 kg = 132,000 kg at constant output
        assert abs(c.reduction.reduction_g - 132_000_000) <= 1
        async with pool.acquire() as conn:
            flows = await reads.flows_by_period(
                conn, unit="year", timezone="Asia/Shanghai", until=datetime.now(UTC)
            )
        [flow] = [f for f in flows if f.kind == accounting.REDUCTION_KIND]
        # (periods are the ledger's recording time: this run's year)
        assert (flow.asset, flow.debit_type, flow.credit_type, flow.amount) == (
            "CO2E_G",
            "system",
            "enterprise",
            c.reduction.reduction_g,
        )
        assert flow.debit_system is not None and "enterprise_issuance" in flow.debit_system


def test_basis_of_the_reductions_is_the_programmes_default():
    assert Basis.of(SETTINGS).label == "own/national/"
