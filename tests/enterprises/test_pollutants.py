"""Pollutants in the enterprise account (enterprises/pollutants.py): units converted and kept,
validation with stable codes, a month replaced all or nothing, the most trusted source
counted, equivalents and intensity per added value, and the API round trip with its
Idempotency-Key."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

import msgspec
import pytest

from enterprises import grades, pollutants, report
from enterprises.grades import GradeInput, GradePolicy
from enterprises.pollutants_errors import (
    PollutantLinesDuplicate,
    PollutantMonthInvalid,
    PollutantUnitUnknown,
)
from enterprises.pollutants_schemas import PollutantLineIn, PollutantsIn
from enterprises.settings import EnterprisesSettings
from kit.db import transaction
from tests.enterprises.accounting_factories import enterprises, month_rows, recorded, year_rows
from tests.enterprises.api import admin, signed_in

MARCH = date(2025, 3, 1)


def _in(month: date, *lines: tuple[str, float, str, str]) -> PollutantsIn:
    return PollutantsIn(
        month=month,
        lines=[
            PollutantLineIn(pollutant=p, amount=a, unit=u, source=s)  # type: ignore[arg-type]
            for p, a, u, s in lines
        ],
    )


class TestData:
    def test_units_convert_to_kg_and_equivalents_weigh_by_harm(self):
        assert pollutants.to_kg(1.5, "t") == 1500.0
        assert pollutants.to_kg(250.0, "kg") == 250.0
        assert pollutants.to_kg(500.0, "g") == 0.5
        assert pollutants.to_kg(1.0, "lb") is None
        # SO2 and NOx: 0.95 kg an equivalent; soot 2.18 kg; VOCs 0.95 kg.
        assert pollutants.equivalents({"so2": 95.0, "pm": 218.0}) == pytest.approx(200.0)
        assert pollutants.equivalents({"nox": 9.5, "vocs": 19.0}) == pytest.approx(30.0)

    def test_the_index_scale_is_linear_between_its_two_points_and_clamped(self):
        assert pollutants.index_score(-0.2) == 100.0
        assert pollutants.index_score(-0.5) == 100.0
        assert pollutants.index_score(0.0) == 60.0
        assert pollutants.index_score(0.1) == 40.0
        assert pollutants.index_score(0.2) == pollutants.index_score(3.0) == 20.0
        assert pollutants.index_score(None) is None

    def test_refusals_name_their_fields(self):
        eid = uuid.uuid4()
        with pytest.raises(PollutantUnitUnknown) as unit:
            pollutants._rows(
                eid, _in(MARCH, ("so2", 1, "kg", "report"), ("nox", 1, "lb", "report")), None
            )
        assert [e.path for e in unit.value.errors or []] == ["lines[1].unit"]
        with pytest.raises(PollutantMonthInvalid):
            pollutants._rows(eid, _in(date(2025, 3, 2), ("so2", 1, "kg", "report")), None)
        with pytest.raises(PollutantMonthInvalid):
            pollutants._rows(eid, _in(date(1969, 1, 1), ("so2", 1, "kg", "report")), None)
        with pytest.raises(PollutantLinesDuplicate) as twice:
            pollutants._rows(
                eid,
                _in(MARCH, ("so2", 1, "kg", "report"), ("so2", 2, "t", "report")),
                None,
            )
        assert [e.path for e in twice.value.errors or []] == ["lines[1]"]
        # The same pollutant from two sources is two lines, not a duplicate.
        rows = pollutants._rows(
            eid,
            _in(MARCH, ("so2", 1, "t", "permit"), ("so2", 900, "kg", "online_monitoring")),
            None,
        )
        assert [(r[2], r[3], r[4], r[5], r[6]) for r in rows] == [
            ("so2", "permit", 1000.0, 1.0, "t"),
            ("so2", "online_monitoring", 900.0, 900.0, "kg"),
        ]

    def test_an_unknown_pollutant_or_source_does_not_decode(self):
        for bad in ({"pollutant": "co", "source": "report"}, {"pollutant": "so2", "source": "x"}):
            body = {"month": "2025-03-01", "lines": [{**bad, "amount": 1, "unit": "kg"}]}
            with pytest.raises(msgspec.ValidationError):
                msgspec.convert(body, PollutantsIn)


class TestStore:
    async def test_a_month_replaced_whole_and_the_most_trusted_source_counted(self, pool: Any):
        [eid] = await enterprises(pool, 1)
        s = EnterprisesSettings()
        # 200 (10,000 yuan) of added value in March, none recorded in April.
        await recorded(
            pool,
            month_rows(eid, MARCH, {"added_value": 200.0, "electricity": 1000.0}),
            start=MARCH,
            end=date(2025, 5, 1),
        )
        async with transaction(pool) as tx:
            first = await pollutants.submit(
                tx, eid, _in(MARCH, ("so2", 5, "t", "report")), recorded_by=None
            )
        assert first.replaced == 0 and [x.amount_kg for x in first.lines] == [5000.0]
        async with transaction(pool) as tx:
            again = await pollutants.submit(
                tx,
                eid,
                _in(
                    MARCH,
                    ("so2", 2, "t", "permit"),
                    ("so2", 1900, "kg", "online_monitoring"),
                    ("nox", 950_000, "g", "report"),
                    ("pm", 436, "kg", "report"),
                ),
                recorded_by=None,
            )
            await pollutants.submit(
                tx, eid, _in(date(2025, 4, 1), ("vocs", 95, "kg", "report")), recorded_by=None
            )
        assert again.replaced == 1 and len(again.lines) == 4
        # A refused month leaves the month as it was (all or nothing).
        with pytest.raises(PollutantUnitUnknown):
            async with transaction(pool) as tx:
                await pollutants.submit(
                    tx,
                    eid,
                    _in(MARCH, ("so2", 1, "kg", "report"), ("pm", 1, "mg", "report")),
                    recorded_by=None,
                )
        async with pool.acquire() as conn:
            year = await pollutants.period(conn, eid, date(2025, 1, 1), date(2026, 1, 1), "2025", s)
        march, april = year.months
        assert len(march.lines) == 4
        # Online monitoring wins over the permit for SO2: 1,900 kg = 2,000 equivalents; NOx 950
        # kg = 1,000; PM 436 kg = 200. Per 10,000 yuan: 3,200 / 200 = 16.
        assert march.figures.amounts_kg == {"so2": 1900.0, "nox": 950.0, "pm": 436.0}
        assert march.figures.sources["so2"] == "online_monitoring"
        assert march.figures.equivalents == pytest.approx(3200.0)
        assert march.figures.equivalents_per_10k == pytest.approx(16.0)
        assert march.figures.intensity_kg_per_10k == pytest.approx(
            {"so2": 9.5, "nox": 4.75, "pm": 2.18}
        )
        # April has no added value: amounts, but no intensity.
        assert april.figures.amounts_kg == {"vocs": 95.0}
        assert april.figures.added_value is None and april.figures.equivalents_per_10k is None
        # The year: every month's amounts; the intensity over the months with added value.
        assert year.figures.amounts_kg["vocs"] == 95.0
        assert year.figures.equivalents == pytest.approx(3300.0)
        assert year.figures.equivalents_per_10k == pytest.approx(16.0)
        async with pool.acquire() as conn:
            [ey] = await pollutants.enterprise_years(conn, s, 2025, 2025)
        assert ey.enterprise_id == eid and ey.year == 2025
        assert ey.carbon_intensity == pytest.approx(1000 * 0.5306 / 1000 / 200, rel=0.2)
        assert ey.pollutants.equivalents_per_10k == pytest.approx(16.0)


class TestApi:
    async def test_round_trip_with_idempotency_and_codes(self, client: Any, pool: Any):
        a = await signed_in(client, await admin(pool))
        url = f"{a.base}/pollutants"
        body: dict[str, Any] = {
            "month": "2025-03-01",
            "lines": [
                {"pollutant": "so2", "amount": 1.25, "unit": "t", "source": "online_monitoring"},
                {"pollutant": "vocs", "amount": 300, "unit": "kg", "source": "report"},
            ],
        }
        key = {**a.headers, "Idempotency-Key": "pollutants-2025-03"}
        first = await client.post(url, json=body, headers=key)
        again = await client.post(url, json=body, headers=key)
        assert first.status_code == again.status_code == 200, first.text
        assert first.json() == again.json() and first.json()["replaced"] == 0
        other = await client.post(url, json={**body, "lines": body["lines"][:1]}, headers=key)
        assert other.status_code == 409 and other.json()["code"] == "idempotency_key_reused"
        got = await client.get(url, params={"period": "2025-03"}, headers=a.headers)
        assert got.status_code == 200, got.text
        [march] = got.json()["months"]
        assert march["figures"]["amounts_kg"] == {"so2": 1250.0, "vocs": 300.0}
        assert [(x["given_amount"], x["given_unit"]) for x in march["lines"]] == [
            (1.25, "t"),
            (300.0, "kg"),
        ]
        for bad, status, code in (
            ({**body["lines"][0], "unit": "lb"}, 400, "pollutant_unit_unknown"),
            ({**body["lines"][0], "pollutant": "co2"}, 400, "validation_failed"),
            ({**body["lines"][0], "source": "guess"}, 400, "validation_failed"),
            ({**body["lines"][0], "amount": -1}, 400, "validation_failed"),
            ({**body["lines"][0], "amount": 1e10, "unit": "t"}, 400, "validation_failed"),
        ):
            r = await client.post(url, json={**body, "lines": [bad]}, headers=a.headers)
            assert (r.status_code, r.json()["code"]) == (status, code), r.text
        for month in ("9999-12-01", "0001-01-01", "1969-12-01", "2025-03-15"):
            r = await client.post(url, json={**body, "month": month}, headers=a.headers)
            assert r.status_code == 400 and r.json()["code"] == "pollutant_month_invalid", r.text
        r = await client.post(
            url, json={**body, "lines": [body["lines"][0]] * 2}, headers=a.headers
        )
        assert (r.status_code, r.json()["code"]) == (422, "pollutant_lines_duplicate")
        # Nothing of the refused posts was kept.
        got = await client.get(url, params={"period": "2025"}, headers=a.headers)
        assert got.json()["figures"]["amounts_kg"] == {"so2": 1250.0, "vocs": 300.0}

    async def test_the_operations_are_in_the_served_document(self, client: Any):
        doc = (await client.get("/schema/openapi.json")).json()
        item = doc["paths"]["/api/enterprise/v1/enterprises/{enterprise_id}/pollutants"]
        examples = item["post"]["responses"]["400"]["content"]["application/problem+json"]
        assert {"pollutant_unit_unknown", "pollutant_month_invalid"} <= set(examples["examples"])
        assert "422" in item["post"]["responses"] and "get" in item


class TestIndexDimension:
    def test_the_pollutant_dimension_beside_the_others(self):
        s = EnterprisesSettings()
        inputs = [
            GradeInput(
                enterprise_id=uuid.UUID(int=i),
                industry="C2611",
                emissions_kg=l_value * 100_000,
                added_value=100.0,
            )
            for i, l_value in enumerate([0.6, 0.8, 1.2, 2.0, 0.4])
        ]
        g1 = next(g for g in grades.grade(inputs, GradePolicy()) if g.enterprise_id.int == 0)
        before = grades.three_colour(g1, zero_carbon_share=0.15, intensity_change=-0.1, settings=s)
        # Without pollutant data: exactly the index of the three other dimensions.
        assert before.indicators == {"carbon": 100.0, "structure": 50.0, "efficiency": 80.0}
        assert (before.score, before.missing) == (82.5, ["pollutants", "management"])
        # Equivalents per 10,000 yuan down 10 %: 100 + (−0.1 + 0.2) / 0.4 x (20 − 100) = 80;
        # (100 x 0.5 + 50 x 0.25 + 80 x 0.25 + 80 x 0.25) / 1.25 = 82.
        after = grades.three_colour(
            g1, zero_carbon_share=0.15, intensity_change=-0.1, settings=s, pollutant_change=-0.1
        )
        assert after.indicators == {**before.indicators, "pollutants": 80.0}
        assert (after.score, after.colour, after.missing) == (82.0, "green", ["management"])
        # The other dimensions' scores are the same with or without it.
        assert {k: after.indicators[k] for k in before.indicators} == before.indicators

    async def test_graded_from_the_store(self, pool: Any):
        s = EnterprisesSettings()
        ids = await enterprises(pool, 5)
        activity = []
        for eid, l_value in zip(ids, [0.6, 0.8, 1.2, 2.0, 0.4], strict=True):
            kwh = l_value * 1000 * 10 / 0.5306
            for year in (2022, 2023):
                activity += year_rows(eid, year, {"electricity": kwh, "added_value": 10.0})
        await recorded(pool, activity, start=date(2022, 1, 1), end=date(2024, 1, 1))
        async with transaction(pool) as tx:
            # ids[0]: 100 kg SO2 a month in 2022, 80 in 2023 (-20 %: scores 100).
            await pollutants.load(
                tx,
                [
                    (ids[0], _in(date(y, m, 1), ("so2", kg, "kg", "report")))
                    for y, kg in ((2022, 100.0), (2023, 80.0))
                    for m in range(1, 13)
                ],
            )
        async with pool.acquire() as conn:
            graded = {a.grade.enterprise_id: a for a in await grades.grade_year(conn, 2023, s)}
            why = await grades.explain(conn, ids[0], 2023, s)
        assert graded[ids[0]].index.indicators["pollutants"] == 100.0
        assert why is not None and why.assessment.index == graded[ids[0]].index
        assert "pollutants" not in graded[ids[1]].index.indicators
        assert graded[ids[1]].index.missing == ["pollutants", "management"]
        # ids[0]: grade 1 (K 0.6: 100), no renewables (0), L down by the grid factors' ratio
        # (0.5306 / 0.5366 - 1: efficiency 60 - 200 x change), pollutants 100:
        # (100 x 0.5 + 0 + efficiency x 0.25 + 100 x 0.25) / 1.25.
        efficiency = 60 - 200 * (0.5306 / 0.5366 - 1)
        assert graded[ids[0]].index.score == pytest.approx(
            (50 + efficiency * 0.25 + 25) / 1.25, abs=0.01
        )


class TestReport:
    async def test_the_account_report_lists_the_pollutants(self, pool: Any):
        [eid] = await enterprises(pool, 1)
        s = EnterprisesSettings()
        await recorded(
            pool, month_rows(eid, MARCH, {"added_value": 100.0}), start=MARCH, end=date(2025, 4, 1)
        )
        async with transaction(pool) as tx:
            await pollutants.submit(
                tx,
                eid,
                _in(MARCH, ("so2", 0.95, "t", "online_monitoring"), ("pm", 218, "kg", "report")),
                recorded_by=None,
            )
        async with pool.acquire() as conn:
            found = await report.sections(conn, eid, MARCH, date(2025, 4, 1), s)
        [section] = [x for x in found if x.title.startswith("污染物排放")]
        assert section.rows == [
            ["二氧化硫 Sulphur dioxide", "950", "online_monitoring", "1,000", "9.5000"],
            ["颗粒物（烟尘） Particulate matter (soot)", "218", "report", "100", "2.1800"],
            ["合计 Total", "1,168", "", "1,100", "11.0000"],
        ]
