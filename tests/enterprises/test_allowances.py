"""Targets and emission rights (enterprises.allowances, reporting.allowances_admin): allocation
by each method on worked numbers, the sum never above the target (also in the database), the
legality refusals each with its code at the offer and at the purchase, an offer bought twice
concurrently settled once, surrender final on the ledger, compliance; the government's approval
(a purchase pending until approved, the checks again at approval, a rejection reopening the
offer, two concurrent approvals settling once); the ledger audit (run after every test by the
fixtures) passes.

Emissions are recorded through the accounting (grid electricity under the programme's default
basis: each month's own year or the latest published before it, so 2024-2026 use the national
2023 factor, 0.5306 kg/kWh, enterprises/factors.json): 1,000 kWh a month for a year is
12,000 x 0.5306 = 6,367.2 kg = 6,367,200 g.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from enterprises import allowances
from enterprises.allowances_errors import (
    AllocationExceedsTarget,
    EnterpriseOutsideRegion,
    NothingToAllocate,
    NotPending,
    OfferNotFound,
    OfferNotOpen,
    OtherRegionThisYear,
    OwnOffer,
    PeriodClosed,
    PeriodNotFound,
    RegionMismatch,
    SurplusInsufficient,
    Surrendered,
    TargetBelowAllocated,
)
from enterprises.allowances_schemas import (
    AllocationIn,
    BenchmarkIn,
    ManualLine,
    OfferIn,
    PeriodRef,
    RejectIn,
    TargetIn,
)
from enterprises.settings import EnterprisesSettings
from kit.db import transaction
from points import service as points
from points.audit import audit, print_report
from points.errors import InvalidTransfer
from points.schemas import AccountKey, Owner, PointsPolicy, TransferRequest
from reporting import allowances_admin
from reporting import audit as gov_audit
from tests.enterprises.accounting_factories import recorded, year_rows
from tests.enterprises.factories import DISTRICT, OTHER_DISTRICT, districts, enterprise, registered

POLICY = PointsPolicy()
# Today's settlement at purchase (the tests of the market); GOVERNMENT: the approval mode (the
# default setting), tested below.
SETTINGS = EnterprisesSettings(allowance_approval="automatic")
GOVERNMENT = EnterprisesSettings(allowance_approval="government")
ACTOR = "cli:test"
CITY = "440300"  # Shenzhen: both test districts (440303 Luohu, 440304 Futian)
YEAR = 2026
NOW = datetime(2026, 12, 20, 4, tzinfo=UTC)
FACTOR = 0.5306  # kg CO2 per kWh, national 2023
G_PER_1000_KWH_MONTH = 6_367_200  # 12 x 1,000 kWh x 0.5306 kg x 1,000


async def _firms(pool: Any, *specs: tuple[str, str]) -> list[uuid.UUID]:
    """Registered enterprises, one per (industry, district)."""
    await districts(pool)
    return [
        (await registered(pool, enterprise(i, industry=ind, district=d))).enterprise.id
        for i, (ind, d) in enumerate(specs, start=1)
    ]


async def _emit(pool: Any, year: int, per_month: dict[uuid.UUID, dict[str, float]]) -> None:
    """Record a year of the same monthly quantities per enterprise (kWh, 10k CNY)."""
    rows = [r for e, q in per_month.items() for r in year_rows(e, year, q)]
    await recorded(
        pool, rows, start=date(year, 1, 1), end=date(year + 1, 1, 1), enterprise_ids=list(per_month)
    )


async def _target(pool: Any, target_g: int, region: str = CITY, year: int = YEAR) -> Any:
    async with transaction(pool) as tx:
        return await allowances_admin.set_target(
            tx, TargetIn(region_code=region, year=year, target_g=target_g), actor=ACTOR, now=NOW
        )


async def _allocate(pool: Any, **kw: Any) -> Any:
    data = AllocationIn(**{"region_code": CITY, "year": YEAR, **kw})
    async with transaction(pool) as tx:
        return await allowances_admin.allocate(tx, POLICY, SETTINGS, data, actor=ACTOR, now=NOW)


async def _manual(pool: Any, amounts: dict[uuid.UUID, int], region: str = CITY) -> Any:
    lines = [ManualLine(enterprise_id=e, amount_g=g) for e, g in amounts.items()]
    return await _allocate(pool, method="manual", lines=lines, region_code=region)


async def _held(pool: Any, e: uuid.UUID) -> int:
    async with pool.acquire() as conn:
        bals = await points.balances(conn, "enterprise", str(e))
    return next((b.posted for b in bals if b.asset == "ALLOWANCE_G"), 0)


async def _offer(
    pool: Any, seller: uuid.UUID, q: int, price: int = 5137, year: int = YEAR, at: int = 0
) -> Any:
    """An offer made ``at`` seconds after NOW."""
    data = OfferIn(year=year, quantity_g=q, price_fen_per_t=price)
    async with transaction(pool) as tx:
        return await allowances.make_offer(
            tx, SETTINGS, seller, data, now=NOW + timedelta(seconds=at)
        )


async def _buy(pool: Any, buyer: uuid.UUID, offer_id: uuid.UUID) -> Any:
    async with transaction(pool) as tx:
        return await allowances.buy(tx, POLICY, SETTINGS, buyer, offer_id, now=NOW)


async def _surrender(pool: Any, e: uuid.UUID) -> Any:
    async with transaction(pool) as tx:
        return await allowances.surrender(tx, POLICY, SETTINGS, e, YEAR, now=NOW)


# --- allocation --------------------------------------------------------------------------------


async def test_historical_share_on_worked_numbers(pool: Any):
    a, b, c = await _firms(
        pool, ("C2611", DISTRICT), ("C2612", OTHER_DISTRICT), ("D4411", DISTRICT)
    )
    # Base years 2024 and 2025: a emits 1,000 kWh a month in both, b 2,000 in 2024 only,
    # c 4,000 in 2025 only: weights 2 x 6,367,200 : 2 x 6,367,200 : 4 x 6,367,200 = 1 : 1 : 2.
    await _emit(pool, 2024, {a: {"electricity": 1000}, b: {"electricity": 2000}})
    await _emit(pool, 2025, {a: {"electricity": 1000}, c: {"electricity": 4000}})
    await _target(pool, 10_000_000)
    # 1,000,001 g shared 1:1:2 is 250,000.25 / 250,000.25 / 500,000.5: floors 250,000 /
    # 250,000 / 500,000 (1,000,000), the one gram left to the largest remainder (c, .5).
    done = await _allocate(
        pool, method="historical_share", base_years=[2024, 2025], amount_g=1_000_001
    )
    got = {x.enterprise_id: x.amount_g for x in done.lines}
    assert got == {a: 250_000, b: 250_000, c: 500_001}
    assert done.amount_g == sum(got.values()) == 1_000_001
    assert {x.enterprise_id: x.basis_value for x in done.lines}[a] == pytest.approx(
        2 * 12_000 * FACTOR
    )
    assert [(t.industry, t.enterprises, t.amount_g) for t in done.by_industry] == [
        ("C26", 2, 500_000),
        ("D44", 1, 500_001),
    ]
    assert done.parameters["base_years"] == [2024, 2025]
    for e, g in got.items():
        assert await _held(pool, e) == g  # issued on the ledger, one transfer each
    # The rest of the target by default (no amount): 8,999,999 shared 1:1:2 -> 2,249,999.75 x2,
    # 4,499,999.5: floors 2,249,999 / 2,249,999 / 4,499,999 (8,999,997), 2 grams left to the
    # largest remainders a and b (.75 each).
    rest = await _allocate(pool, method="historical_share", base_years=[2024, 2025])
    assert {x.enterprise_id: x.amount_g for x in rest.lines} == {
        a: 2_250_000,
        b: 2_250_000,
        c: 4_499_999,
    }
    async with pool.acquire() as conn:
        [period] = await allowances_admin.periods(conn, YEAR)
        rounds = await allowances_admin.allocations(conn, CITY, YEAR)
        log = await gov_audit.entries(conn, action="allowance")
    assert (period.allocated_g, period.unallocated_g) == (10_000_000, 0)  # never above
    assert [r.method for r in rounds] == ["historical_share", "historical_share"]
    assert [e.action for e in log] == [
        "allowance.allocate",
        "allowance.allocate",
        "allowance.target",
    ]
    with pytest.raises(AllocationExceedsTarget) as refused:
        await _manual(pool, {a: 1})
    assert refused.value.extra == {"remaining_g": 0, "requested_g": 1}


async def test_benchmark_times_output_on_worked_numbers(pool: Any):
    a, b, c = await _firms(
        pool, ("C2611", DISTRICT), ("C3011", OTHER_DISTRICT), ("C3012", DISTRICT)
    )
    # Added value of 2025 (the output year by default: the year before): 100, 50 and 0 (10,000
    # CNY) a month -> 1,200 and 600 a year; c has none and gets nothing.
    await _emit(
        pool,
        2025,
        {
            a: {"electricity": 1000, "added_value": 100},
            b: {"electricity": 1000, "added_value": 50},
            c: {"electricity": 1000},
        },
    )
    await _target(pool, 10**13)
    # a (C26): the data file's default, 0.6 t per 10,000 CNY x 1,200 = 720 t; b (C30): the
    # request's override 1.25 x 600 = 750 t.
    done = await _allocate(
        pool, method="benchmark", benchmarks=[BenchmarkIn(industry="C30", t_per_10k_cny=1.25)]
    )
    assert {x.enterprise_id: x.amount_g for x in done.lines} == {
        a: 720_000_000,
        b: 750_000_000,
    }
    assert done.parameters["output_year"] == 2025
    assert done.parameters["benchmarks_used"] == {"default": 0.6, "C30": 1.25}
    assert "0.6" in done.parameters["default_source"]
    assert await _held(pool, b) == 750_000_000
    with pytest.raises(NothingToAllocate):
        await _allocate(pool, method="benchmark", output_year=2024)


async def test_manual_sum_never_exceeds_the_target(pool: Any, owner_pool: Any):
    a, b = await _firms(pool, ("C2611", DISTRICT), ("C2611", OTHER_DISTRICT))
    with pytest.raises(PeriodNotFound):
        await _manual(pool, {a: 1})
    await _target(pool, 1_000)
    with pytest.raises(AllocationExceedsTarget):
        await _manual(pool, {a: 600, b: 401})
    done = await _manual(pool, {a: 600, b: 400})  # exactly the target
    assert done.amount_g == 1_000 and done.parameters == {"lines": 2}
    with pytest.raises(TargetBelowAllocated):
        await _target(pool, 999)
    await _target(pool, 1_500)  # revised up: 500 left
    with pytest.raises(EnterpriseOutsideRegion):
        await _manual(pool, {uuid.uuid4(): 1})
    # Whatever the service checked, the database holds the sum within the target.
    async with owner_pool.acquire() as conn:
        with pytest.raises(asyncpg.CheckViolationError, match="allowance_periods_within_target"):
            await conn.execute("UPDATE allowance_periods SET allocated_g = target_g + 1")


async def test_an_enterprise_holds_one_regions_allowance_a_year(pool: Any):
    [a] = await _firms(pool, ("C2611", DISTRICT))
    await _target(pool, 1_000)
    await _target(pool, 1_000, region=DISTRICT)
    await _manual(pool, {a: 10})
    with pytest.raises(OtherRegionThisYear) as refused:
        await _manual(pool, {a: 10}, region=DISTRICT)
    assert refused.value.extra == {"enterprise_ids": [str(a)]}


# --- offers, purchases and their legality -------------------------------------------------------


async def _market(pool: Any) -> tuple[uuid.UUID, uuid.UUID, uuid.UUID]:
    """seller (allocated 10,000,000 g, emits 6,367,200 g: surplus 3,632,800), buyer (allocated
    1,000,000, emits 12,734,400: short), outsider (Futian, 440304), in the city's period."""
    seller, buyer, outsider = await _firms(
        pool, ("C2611", DISTRICT), ("C2611", DISTRICT), ("C2611", OTHER_DISTRICT)
    )
    await _emit(pool, YEAR, {seller: {"electricity": 1000}, buyer: {"electricity": 2000}})
    await _target(pool, 20_000_000)
    await _manual(pool, {seller: 10_000_000, buyer: 1_000_000})
    return seller, buyer, outsider


async def test_offer_then_purchase_moves_the_allowance_once(pool: Any):
    seller, buyer, _ = await _market(pool)
    async with pool.acquire() as conn:
        mine = await allowances.allowance(conn, SETTINGS, seller, YEAR)
    assert (mine.held_g, mine.emissions_g, mine.surplus_g) == (10_000_000, 6_367_200, 3_632_800)
    with pytest.raises(SurplusInsufficient) as refused:
        await _offer(pool, seller, 3_632_801)
    assert refused.value.extra == {"surplus_g": 3_632_800}
    offer = await _offer(pool, seller, 2_000_000, price=5137)  # ¥51.37/t
    assert offer.amount_fen == 10_274  # 2 t x 5,137 fen
    with pytest.raises(SurplusInsufficient):  # the open offer reserves its grams
        await _offer(pool, seller, 1_632_801)
    with pytest.raises(SurplusInsufficient):  # nothing held: nothing to offer
        await _offer(pool, buyer, 1)
    with pytest.raises(OwnOffer):
        await _buy(pool, seller, offer.id)
    sold = await _buy(pool, buyer, offer.id)
    assert (sold.status, sold.buyer_id) == ("sold", buyer)
    with pytest.raises(OfferNotOpen):
        await _buy(pool, buyer, offer.id)
    with pytest.raises(OfferNotFound):
        await _buy(pool, buyer, uuid.uuid4())
    assert await _held(pool, seller) == 8_000_000
    assert await _held(pool, buyer) == 3_000_000
    async with pool.acquire() as conn:
        t = await points.get_transfer(conn, sold.transfer_id or "")
        theirs = await allowances.transfers(conn, enterprise_id=buyer)
        mine_too = await allowances.transfers(conn, enterprise_id=seller)
        everyone = await allowances.transfers(conn, region_code=CITY, year=YEAR)
        after = await allowances.allowance(conn, SETTINGS, seller, YEAR)
    assert (t.asset, t.amount, t.kind, t.idempotency_key) == (
        "ALLOWANCE_G",
        2_000_000,
        "allowance_trade",
        f"allowance:trade:{offer.id}",
    )
    assert [o.id for o in theirs.items] == [o.id for o in mine_too.items] == [offer.id]
    assert [o.id for o in everyone.items] == [offer.id]
    assert (after.sold_g, after.offered_g, after.held_g, after.ledger_held_g) == (
        2_000_000,
        0,
        8_000_000,
        8_000_000,
    )


async def test_region_period_and_surrender_refusals_each_with_its_code(pool: Any):
    seller, buyer, outsider = await _market(pool)
    offer = await _offer(pool, seller, 1_000)
    # Futian (440304) is in the city (440300) but not in Luohu (440303): a period of Luohu
    # only, whose offers Futian's enterprise may not buy.
    [luohu] = await _firms_more(pool)
    await _target(pool, 1_000, region=DISTRICT, year=2027)
    await _manual_year(pool, {luohu: 1_000}, DISTRICT, 2027)
    local = await _offer(pool, luohu, 1_000, year=2027)
    with pytest.raises(RegionMismatch):
        await _buy(pool, outsider, local.id)
    # Surrender settles the buyer's year: it buys no more of it.
    done = await _surrender(pool, buyer)
    assert done.surrendered_g == 1_000_000  # all it held (it emits 12,734,400)
    with pytest.raises(Surrendered):
        await _buy(pool, buyer, offer.id)
    with pytest.raises(Surrendered):
        await _surrender(pool, buyer)
    # ... and the seller, once surrendered, offers no more and its offers are withdrawn.
    second = await _offer(pool, seller, 1_000)
    await _surrender(pool, seller)
    with pytest.raises(Surrendered):
        await _offer(pool, seller, 1)
    for withdrawn in (offer, second):
        with pytest.raises(OfferNotOpen):
            await _buy(pool, outsider, withdrawn.id)
    # The period closed: no offers, no purchases.
    async with transaction(pool) as tx:
        closed = await allowances_admin.close(
            tx, POLICY, SETTINGS, PeriodRef(region_code=CITY, year=YEAR), actor=ACTOR, now=NOW
        )
    assert closed.period.status == "closed"
    # Both enterprises had surrendered (the seller's surrender withdrew its open offers).
    assert (closed.offers_withdrawn, closed.surrenders) == (0, [])
    with pytest.raises(PeriodClosed):
        await _buy(pool, outsider, offer.id)
    with pytest.raises(PeriodClosed):
        await _offer(pool, seller, 1)
    with pytest.raises(PeriodClosed):
        await _manual(pool, {seller: 1})


async def _firms_more(pool: Any) -> list[uuid.UUID]:
    e = await registered(pool, enterprise(9, district=DISTRICT))
    return [e.enterprise.id]


async def _manual_year(pool: Any, amounts: dict[uuid.UUID, int], region: str, year: int) -> Any:
    lines = [ManualLine(enterprise_id=e, amount_g=g) for e, g in amounts.items()]
    data = AllocationIn(region_code=region, year=year, method="manual", lines=lines)
    async with transaction(pool) as tx:
        return await allowances_admin.allocate(tx, POLICY, SETTINGS, data, actor=ACTOR, now=NOW)


async def test_the_sellers_surplus_is_checked_again_at_purchase(pool: Any):
    seller, buyer, _ = await _market(pool)
    offer = await _offer(pool, seller, 3_000_000)
    # The seller's emissions of the year are recorded higher after it offered: 1,500 kWh a
    # month is 9,550,800 g, leaving 449,200 of surplus for a 3,000,000 g offer.
    await _emit(pool, YEAR, {seller: {"electricity": 1500}})
    with pytest.raises(SurplusInsufficient) as refused:
        await _buy(pool, buyer, offer.id)
    assert refused.value.extra == {"surplus_g": 10_000_000 - 9_550_800}
    assert await _held(pool, buyer) == 1_000_000  # nothing moved


async def test_an_offer_bought_twice_concurrently_settles_once(pool: Any):
    seller, buyer, _ = await _market(pool)
    [second] = await _firms_more(pool)
    # Two buyers on two connections at once, offer after offer: exactly one wins each.
    offers = [await _offer(pool, seller, 100_000, at=i) for i in range(5)]
    for offer in offers:
        results = await asyncio.gather(
            _buy(pool, buyer, offer.id), _buy(pool, second, offer.id), return_exceptions=True
        )
        won = [r for r in results if not isinstance(r, BaseException)]
        lost = [r for r in results if isinstance(r, BaseException)]
        assert len(won) == 1 and len(lost) == 1 and isinstance(lost[0], OfferNotOpen), results
    # The loser waits on the offer's row lock, then finds it sold (not a lucky interleaving).
    last = await _offer(pool, seller, 100_000, at=10)
    async with transaction(pool) as tx:
        await allowances.buy(tx, POLICY, SETTINGS, buyer, last.id, now=NOW)
        late = asyncio.create_task(_buy(pool, second, last.id))
        await asyncio.sleep(0.5)
        assert not late.done()
    with pytest.raises(OfferNotOpen):
        await late
    assert await _held(pool, buyer) + await _held(pool, second) == 1_000_000 + 600_000
    assert await _held(pool, seller) == 10_000_000 - 600_000
    async with pool.acquire() as conn:
        page = await allowances.transfers(conn, enterprise_id=seller)
    assert len(page.items) == 6


async def test_withdrawn_offer_frees_its_grams(pool: Any):
    seller, buyer, _ = await _market(pool)
    offer = await _offer(pool, seller, 3_632_800)
    async with transaction(pool) as tx:
        back = await allowances.withdraw_offer(tx, seller, offer.id, now=NOW)
    assert back.status == "withdrawn"
    with pytest.raises(OfferNotOpen):
        await _buy(pool, buyer, offer.id)
    with pytest.raises(OfferNotFound):  # only its seller withdraws it
        async with transaction(pool) as tx:
            await allowances.withdraw_offer(tx, buyer, offer.id, now=NOW)
    assert (await _offer(pool, seller, 3_632_800)).status == "open"


async def test_open_offers_of_the_region_page_by_cursor(pool: Any):
    seller, buyer, outsider = await _market(pool)
    made = [(await _offer(pool, seller, 1_000 + i, at=i)).id for i in range(3)]
    async with pool.acquire() as conn:
        first = await allowances.open_offers(conn, buyer, limit=2)
        rest = await allowances.open_offers(conn, buyer, limit=2, cursor=first.next_cursor)
        futian = await allowances.open_offers(conn, outsider, year=YEAR)
        other_year = await allowances.open_offers(conn, buyer, year=2030)
    assert [o.id for o in first.items + rest.items] == made
    assert rest.next_cursor is None
    assert [o.id for o in futian.items] == made  # Futian is in the city too
    assert other_year.items == []


# --- surrender, compliance, the ledger ---------------------------------------------------------


async def test_compliance_and_final_surrender(pool: Any, owner_pool: Any):
    seller, buyer, outsider = await _market(pool)
    async with pool.acquire() as conn:
        s = await allowances.compliance(conn, SETTINGS, seller, YEAR)
        b = await allowances.compliance(conn, SETTINGS, buyer, YEAR)
        o = await allowances.compliance(conn, SETTINGS, outsider, YEAR)
    assert (s.status, s.covered_g, s.shortfall_g) == ("compliant", 10_000_000, 0)
    assert (b.status, b.emissions_g, b.shortfall_g) == ("short", 12_734_400, 11_734_400)
    assert (o.status, o.offsets_retired_g) == ("no_allowance", 0)
    # The buyer covers its shortfall by buying: 11,734,400 of the seller's surplus is too much
    # (3,632,800), so it buys that much and stays short by the rest.
    offer = await _offer(pool, seller, 3_632_800)
    await _buy(pool, buyer, offer.id)
    done = await _surrender(pool, seller)
    assert done.surrendered_g == 6_367_200  # its emissions, nothing more
    async with pool.acquire() as conn:
        s = await allowances.compliance(conn, SETTINGS, seller, YEAR)
        b = await allowances.compliance(conn, SETTINGS, buyer, YEAR)
        held = await points.balances(conn, "system", allowances.SURRENDERED.owner_id)
    assert (s.held_g, s.surrendered_g, s.status) == (0, 6_367_200, "compliant")
    assert (b.held_g, b.shortfall_g, b.status) == (4_632_800, 8_101_600, "short")
    assert [x.posted for x in held if x.asset == "ALLOWANCE_G"] == [6_367_200]
    # Surrendered allowance never leaves its account, whoever writes the ledger.
    with pytest.raises(asyncpg.CheckViolationError, match="surrendered"):
        async with transaction(pool) as tx:
            await points.transfer(
                tx,
                [
                    TransferRequest(
                        idempotency_key="steal-surrendered",
                        debit=allowances.SURRENDERED,
                        credit=Owner("enterprise", str(outsider)),
                        asset="ALLOWANCE_G",
                        amount=1,
                        kind="allowance_trade",
                        reason_code="test",
                        region_code=CITY,
                        occurred_at=NOW,
                    )
                ],
                POLICY,
            )


async def test_allowance_is_held_by_enterprises_and_system_accounts_only(pool: Any):
    with pytest.raises((asyncpg.CheckViolationError, InvalidTransfer)):
        async with pool.acquire() as conn:
            await points.open_accounts(conn, [AccountKey("resident", "r1", "ALLOWANCE_G")])


async def test_the_audit_counts_allowance_transfers(pool: Any):
    seller, buyer, _ = await _market(pool)
    await _buy(pool, buyer, (await _offer(pool, seller, 1)).id)
    async with pool.acquire() as conn:
        report = await audit(conn)
    assert report.ok, report.problems
    assert report.by_asset == {"ALLOWANCE_G": 3}  # two allocation lines and the trade

    class Out:
        text = ""

        def write(self, s: str) -> None:
            self.text += s

    out = Out()
    print_report(report, out)  # type: ignore[arg-type]
    assert "CO2E_G 0, POINT 0, ALLOWANCE_G 3" in out.text


async def test_compliance_counts_the_offsets_retired_and_surrender_needs_the_rest(pool: Any):
    from tests.enterprises import offsets_factories as off

    seller, buyer, _ = await _market(pool)
    # Residents' 2,000,000 verified grams pooled; the buyer buys 1,000,000 of them and retires
    # them against 2026, within the cap (a share of its 12,734,400 g of emissions).
    await off.events(pool, [2_000_000])
    await off.issue(pool, "pool-1", None)
    await off.buy(pool, buyer, 1_000_000)
    await off.retire(pool, buyer, 1_000_000)
    async with pool.acquire() as conn:
        b = await allowances.compliance(conn, SETTINGS, buyer, YEAR)
    # covered = held 1,000,000 + offsets 1,000,000; short by 12,734,400 - 2,000,000.
    assert (b.offsets_retired_g, b.covered_g, b.shortfall_g, b.status) == (
        1_000_000,
        2_000_000,
        10_734_400,
        "short",
    )
    # Surrender takes what the emissions need less the offsets (11,734,400), capped at what it
    # holds: all of its 1,000,000.
    assert (await _surrender(pool, buyer)).surrendered_g == 1_000_000
    # The seller needs its 6,367,200 g; it offsets nothing, so it surrenders exactly that.
    assert (await _surrender(pool, seller)).surrendered_g == 6_367_200
    async with pool.acquire() as conn:
        s = await allowances.compliance(conn, SETTINGS, seller, YEAR)
    assert (s.held_g, s.surrendered_g, s.covered_g, s.status) == (
        10_000_000 - 6_367_200,
        6_367_200,
        10_000_000,
        "compliant",
    )


async def test_positions_and_the_ledger_agree_after_a_random_market(pool: Any):
    """A seeded random run of offers, purchases, withdrawals and surrenders among four
    enterprises: every refusal leaves nothing behind, and at the end each enterprise's ledger
    balance is its held allowance, the issuance account is minus the allocated sum, the
    surrender account holds what was surrendered, and the allocated sum is within the target."""
    import random

    rng = random.Random(13)
    firms = await _firms(pool, *[("C2611", DISTRICT)] * 4)
    await _emit(pool, YEAR, {e: {"electricity": 100 * (i + 1)} for i, e in enumerate(firms)})
    await _target(pool, 50_000_000)
    await _manual(pool, {e: 5_000_000 + 1_000_000 * i for i, e in enumerate(firms)})
    offers: list[uuid.UUID] = []
    for step in range(60):
        e = rng.choice(firms)
        move = rng.random()
        try:
            if move < 0.45:
                offers.append((await _offer(pool, e, rng.randint(1, 2_000_000), at=step)).id)
            elif move < 0.85 and offers:
                await _buy(pool, e, rng.choice(offers))
            elif move < 0.95 and offers:
                async with transaction(pool) as tx:
                    await allowances.withdraw_offer(tx, e, rng.choice(offers), now=NOW)
            else:
                await _surrender(pool, e)
        except (SurplusInsufficient, OfferNotOpen, OfferNotFound, OwnOffer, Surrendered):
            pass
    async with pool.acquire() as conn:
        views = [await allowances.allowance(conn, SETTINGS, e, YEAR) for e in firms]
        sold = await allowances.transfers(conn, year=YEAR, limit=200)
        issuance = await points.balances(conn, "system", allowances.ALLOWANCE_ISSUANCE.owner_id)
        surrendered = await points.balances(conn, "system", allowances.SURRENDERED.owner_id)
        [period] = await allowances.periods(conn, YEAR)
    for v in views:
        assert v.ledger_held_g == v.held_g >= v.offered_g
    assert sum(v.bought_g for v in views) == sum(v.sold_g for v in views)
    assert sum(v.bought_g for v in views) == sum(o.quantity_g for o in sold.items)
    assert sold.items  # the run did trade
    allocated = sum(v.allocated_g for v in views)
    assert [b.posted for b in issuance if b.asset == "ALLOWANCE_G"] == [-allocated]
    assert sum(b.posted for b in surrendered if b.asset == "ALLOWANCE_G") == sum(
        v.surrendered_g for v in views
    )
    assert allocated == period.allocated_g <= period.target_g


# --- government approval (TANPUHUI_ENTERPRISES_ALLOWANCE_APPROVAL=government) -----------------


async def _request(pool: Any, buyer: uuid.UUID, offer_id: uuid.UUID) -> Any:
    async with transaction(pool) as tx:
        return await allowances.buy(tx, POLICY, GOVERNMENT, buyer, offer_id, now=NOW)


async def _approve(pool: Any, offer_id: uuid.UUID, actor: str = ACTOR) -> Any:
    async with transaction(pool) as tx:
        return await allowances_admin.approve(
            tx, POLICY, GOVERNMENT, offer_id, actor=actor, now=NOW + timedelta(hours=1)
        )


async def _reject(pool: Any, offer_id: uuid.UUID, reason: str) -> Any:
    async with transaction(pool) as tx:
        return await allowances_admin.reject(
            tx, offer_id, RejectIn(reason=reason), actor=ACTOR, now=NOW + timedelta(hours=1)
        )


async def test_default_mode_is_government_approval():
    assert EnterprisesSettings().allowance_approval == "government"


async def test_a_purchase_waits_for_approval_then_settles_once(pool: Any):
    seller, buyer, _ = await _market(pool)
    [second] = await _firms_more(pool)
    offer = await _offer(pool, seller, 2_000_000)
    with pytest.raises(OwnOffer):  # the same legality checks at the request
        await _request(pool, seller, offer.id)
    asked = await _request(pool, buyer, offer.id)
    assert (asked.status, asked.buyer_id, asked.transfer_id) == ("pending_approval", buyer, None)
    assert asked.approval is not None and asked.approval.status == "pending"
    # Nothing moved; the offer still reserves its grams, is out of the open list, cannot be
    # withdrawn nor bought by another.
    assert await _held(pool, buyer) == 1_000_000
    assert await _held(pool, seller) == 10_000_000
    async with pool.acquire() as conn:
        mine = await allowances.allowance(conn, SETTINGS, seller, YEAR)
        listed = await allowances.open_offers(conn, second)
        queue = await allowances_admin.pending(conn, year=YEAR)
        theirs = await allowances.transfers(conn, enterprise_id=buyer)
        sellers = await allowances.transfers(conn, enterprise_id=seller)
        settled = await allowances.transfers(conn, region_code=CITY, year=YEAR)
    assert (mine.offered_g, mine.bought_g, mine.sold_g) == (2_000_000, 0, 0)
    assert listed.items == []
    assert [o.id for o in queue] == [offer.id]
    assert [(o.id, o.status) for o in theirs.items] == [(offer.id, "pending_approval")]
    assert [(o.id, o.status) for o in sellers.items] == [(offer.id, "pending_approval")]
    assert settled.items == []  # the government's list of settled transfers: none yet
    with pytest.raises(OfferNotOpen):
        await _request(pool, second, offer.id)
    with pytest.raises(OfferNotOpen):
        async with transaction(pool) as tx:
            await allowances.withdraw_offer(tx, seller, offer.id, now=NOW)
    # Approved: the ledger transfer as in automatic mode, audited.
    done = await _approve(pool, offer.id)
    assert (done.status, done.buyer_id) == ("sold", buyer)
    assert done.approval is not None and done.approval.status == "approved"
    assert await _held(pool, buyer) == 3_000_000
    assert await _held(pool, seller) == 8_000_000
    with pytest.raises(NotPending):
        await _approve(pool, offer.id)
    with pytest.raises(NotPending):
        await _reject(pool, offer.id, "too late")
    with pytest.raises(OfferNotFound):
        await _approve(pool, uuid.uuid4())
    async with pool.acquire() as conn:
        t = await points.get_transfer(conn, done.transfer_id or "")
        log = await gov_audit.entries(conn, action="allowance.approve")
        queue = await allowances_admin.pending(conn)
        after = await allowances.allowance(conn, SETTINGS, seller, YEAR)
    assert (t.amount, t.idempotency_key) == (2_000_000, f"allowance:trade:{offer.id}")
    assert [e.target for e in log] == [f"allowance-offer:{offer.id}"]
    assert queue == []
    assert (after.offered_g, after.sold_g, after.ledger_held_g) == (0, 2_000_000, 8_000_000)


async def test_a_rejection_reopens_the_offer_and_tells_the_buyer(pool: Any, owner_pool: Any):
    seller, buyer, _ = await _market(pool)
    [second] = await _firms_more(pool)
    offer = await _offer(pool, seller, 1_000_000)
    await _request(pool, buyer, offer.id)
    # The database holds the states whatever writes them: one pending request per offer, and a
    # pending offer has its buyer.
    async with owner_pool.acquire() as conn:
        with pytest.raises(asyncpg.UniqueViolationError, match="allowance_approvals_one_pending"):
            await conn.execute(
                "INSERT INTO allowance_approvals (offer_id, buyer_id, requested_at) "
                "VALUES ($1, $2, now())",
                offer.id,
                second,
            )
        with pytest.raises(asyncpg.CheckViolationError, match="allowance_offers_buyer"):
            await conn.execute(
                "UPDATE allowance_offers SET buyer_id = NULL WHERE id = $1", offer.id
            )
    back = await _reject(pool, offer.id, "卖方排放数据待核实")
    assert (back.status, back.buyer_id) == ("open", None)
    assert back.approval is not None
    assert (back.approval.status, back.approval.buyer_id, back.approval.reason) == (
        "rejected",
        buyer,
        "卖方排放数据待核实",
    )
    async with pool.acquire() as conn:
        told = await allowances.transfers(conn, enterprise_id=buyer)
        log = await gov_audit.entries(conn, action="allowance.reject")
    [row] = told.items
    assert row.id == offer.id and row.approval is not None
    assert (row.approval.status, row.approval.reason) == ("rejected", "卖方排放数据待核实")
    assert len(log) == 1
    # Open again: another buyer asks, and is approved; the first still sees its rejection.
    await _request(pool, second, offer.id)
    await _approve(pool, offer.id)
    assert await _held(pool, second) == 1_000_000
    assert await _held(pool, buyer) == 1_000_000
    async with pool.acquire() as conn:
        first = await allowances.transfers(conn, enterprise_id=buyer)
        page1 = await allowances.transfers(conn, enterprise_id=seller, limit=1)
        page2 = await allowances.transfers(
            conn, enterprise_id=seller, limit=1, cursor=page1.next_cursor
        )
    assert [(r.approval.status if r.approval else None) for r in first.items] == ["rejected"]
    # The seller sees both requests of its offer, newest first, one page each.
    got = [r.approval.status if r.approval else None for r in page1.items + page2.items]
    assert got == ["approved", "rejected"]
    assert page2.next_cursor is None


async def test_legality_is_checked_again_at_approval_and_the_transfer_stays_pending(pool: Any):
    seller, buyer, _ = await _market(pool)
    offer = await _offer(pool, seller, 3_000_000)
    await _request(pool, buyer, offer.id)
    # The seller's emissions recorded higher meanwhile: its surplus no longer covers the offer.
    await _emit(pool, YEAR, {seller: {"electricity": 1500}})
    with pytest.raises(SurplusInsufficient) as refused:
        await _approve(pool, offer.id)
    assert refused.value.extra == {"surplus_g": 10_000_000 - 9_550_800}
    async with pool.acquire() as conn:
        queue = await allowances_admin.pending(conn)
        log = await gov_audit.entries(conn, action="allowance.approve")
    assert [o.id for o in queue] == [offer.id] and log == []  # nothing changed
    assert await _held(pool, buyer) == 1_000_000
    await _reject(pool, offer.id, "surplus_insufficient")
    async with transaction(pool) as tx:  # open again: its seller may withdraw it now
        assert (await allowances.withdraw_offer(tx, seller, offer.id, now=NOW)).status == (
            "withdrawn"
        )
    # Closing the period withdraws a pending offer and rejects its request.
    await _request(pool, buyer, (second := await _offer(pool, seller, 1, at=5)).id)
    async with transaction(pool) as tx:
        closed = await allowances_admin.close(
            tx, POLICY, GOVERNMENT, PeriodRef(region_code=CITY, year=YEAR), actor=ACTOR, now=NOW
        )
    assert closed.offers_withdrawn == 1
    async with pool.acquire() as conn:
        told = (await allowances.transfers(conn, enterprise_id=buyer)).items
    [row] = [r for r in told if r.id == second.id]
    assert row.status == "withdrawn" and row.buyer_id is None
    assert row.approval is not None and row.approval.reason == "period_closed"
    with pytest.raises(NotPending):
        await _approve(pool, second.id)


async def test_two_admins_approving_at_once_settle_once(pool: Any):
    seller, buyer, _ = await _market(pool)
    offers = [await _offer(pool, seller, 100_000, at=i) for i in range(4)]
    for offer in offers:
        await _request(pool, buyer, offer.id)
        results = await asyncio.gather(
            _approve(pool, offer.id, "cli:a"),
            _approve(pool, offer.id, "cli:b"),
            return_exceptions=True,
        )
        won = [r for r in results if not isinstance(r, BaseException)]
        lost = [r for r in results if isinstance(r, BaseException)]
        assert len(won) == 1 and len(lost) == 1 and isinstance(lost[0], NotPending), results
    # The second waits on the offer's row lock, then finds it sold (not a lucky interleaving).
    last = await _offer(pool, seller, 100_000, at=10)
    await _request(pool, buyer, last.id)
    async with transaction(pool) as tx:
        await allowances.approve(tx, POLICY, GOVERNMENT, last.id, actor="cli:a", now=NOW)
        late = asyncio.create_task(_approve(pool, last.id, "cli:b"))
        await asyncio.sleep(0.5)
        assert not late.done()
    with pytest.raises(NotPending):
        await late
    assert await _held(pool, buyer) == 1_000_000 + 500_000
    assert await _held(pool, seller) == 10_000_000 - 500_000
    async with pool.acquire() as conn:
        sold = await allowances.transfers(conn, region_code=CITY, year=YEAR)
    assert len(sold.items) == 5
