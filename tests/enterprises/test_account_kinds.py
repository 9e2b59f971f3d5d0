"""Account kinds as data (enterprises/kinds; docs/account_kinds.md), pure: for each of the six
kinds its schema validation (a bad field refused, named), its accounting on a worked example
with the numbers written out, and its grade boundaries (just below / at / above each bound);
then the file's loader: a kind of a test fixture with an existing method is accepted, an unknown
method (or a schema that lacks a field its method reads, or bounds that do not fit) is refused
at load.

The factors are the factor library's file (enterprises/factors.json), as seeded: the 2023
national grid factor 0.5306 kg/kWh; natural gas 2.162189 kg/m3, raw coal 1,900.298849 kg/t,
petrol 2,925.05598 kg/t, diesel 3,095.909637 kg/t (the national guidelines' NCV × carbon
content × oxidation × 44/12)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

import pytest

from enterprises.factors import Basis, Library, file_entries
from enterprises.grades import GradePolicy
from enterprises.kinds import registry
from enterprises.kinds.registry import KindsFileError
from enterprises.kinds.schemas import Factors
from kit.errors import InvalidInput

HERE = Path(__file__).resolve().parent
KINDS = registry.load()


def _factors(kind: str) -> Factors:
    grid, fuels = file_entries()
    lib = Library(grid=tuple(grid), fuels={f.kind: f for f in fuels})
    return Factors(grid=lib.grid_for(Basis(), 2023), fuels=lib.fuels, params=KINDS[kind].params)


def _account(kind: str, activity: dict[str, Any], **kw: Any) -> Any:
    k = KINDS[kind]
    return registry.account(k, registry.validate(k, activity), _factors(kind), **kw)


def _refused(kind: str, activity: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(InvalidInput) as caught:
        registry.validate(KINDS[kind], activity)
    assert caught.value.code == "validation_failed"
    return {e.path: e.message for e in caught.value.errors or []}


def _label(kind: str, intensity: float, activity: dict[str, Any] | None = None) -> str | None:
    return registry.grade(KINDS[kind], intensity, activity or {}).label


def test_the_programme_has_the_six_kinds_of_quzhou():
    assert list(KINDS) == [
        "industry",
        "energy_producer",
        "building",
        "road_transport",
        "agriculture",
        "resident",
    ]
    assert [KINDS[k].spec.self_reported for k in KINDS] == [False, True, True, True, True, True]
    assert KINDS["building"].spec.intensity.unit == "kgCO2/m2/yr"
    assert KINDS["road_transport"].spec.intensity.unit == "gCO2/t-km"
    assert KINDS["energy_producer"].spec.intensity.unit == "gCO2/kWh"


class TestBuilding:
    OFFICE: ClassVar[dict[str, Any]] = {
        "building_type": "office",
        "floor_area_m2": 10_000,
        "electricity_kwh": 800_000,
        "natural_gas_m3": 20_000,
    }

    def test_schema(self):
        assert _refused("building", {**self.OFFICE, "floor_area_m2": 0}) == {
            "activity.floor_area_m2": "Above 0 m2."
        }
        found = _refused(
            "building",
            {"building_type": "castle", "electricity_kwh": "many", "heat_gj": -1, "pool_m3": 5},
        )
        assert sorted(found) == [
            "activity.building_type",
            "activity.electricity_kwh",
            "activity.floor_area_m2",
            "activity.heat_gj",
            "activity.pool_m3",
        ]
        assert found["activity.floor_area_m2"] == "Required."
        assert found["activity.building_type"] == "One of office, hotel, commercial."
        assert found["activity.electricity_kwh"] == "A number (kWh)."
        assert found["activity.heat_gj"] == "At least 0 GJ."
        assert _refused("building", {**self.OFFICE, "electricity_kwh": 2e11}) == {
            "activity.electricity_kwh": "At most 1e+11 kWh."
        }

    def test_worked_example(self):
        r = _account("building", self.OFFICE)
        # 800,000 kWh × 0.5306 = 424,480 kg; 20,000 m3 × 2.162189 = 43,243.78 kg.
        lines = {line.field: line.emissions_kg for line in r.lines}
        assert lines == pytest.approx({"electricity_kwh": 424_480.0, "natural_gas_m3": 43_243.78})
        assert r.emissions_kg == pytest.approx(467_723.78)
        assert (r.denominator, r.denominator_unit) == (10_000.0, "m2")
        assert r.intensity == pytest.approx(46.772378)  # kg CO2 / m2 / yr
        # 46.8 is above the office's B (42) and at most its C (58).
        assert (r.grade.label, r.grade.value, r.grade.colour) == ("C", 46.8, "yellow")
        assert r.lines[0].factor_ref == "grid:2023:national:"

    def test_grade_boundaries_per_building_type(self):
        office = {"building_type": "office"}
        for bound, at, above in [(34, "A", "B"), (42, "B", "C"), (58, "C", "D"), (73, "D", "E")]:
            assert _label("building", bound - 0.1, office) == at
            assert _label("building", bound, office) == at
            assert _label("building", bound + 0.04, office) == at  # rounds to the bound
            assert _label("building", bound + 0.1, office) == above
        hotel = {"building_type": "hotel"}
        assert [_label("building", x, hotel) for x in (42, 42.1, 53, 53.1, 90, 90.1)] == [
            "A",
            "B",
            "B",
            "C",
            "D",
            "E",
        ]
        assert registry.grade(KINDS["building"], 40.0, {}).reason == "building_type_missing"
        commercial = {"building_type": "commercial"}
        assert [_label("building", x, commercial) for x in (51, 51.1, 99, 99.1)] == [
            "A",
            "B",
            "D",
            "E",
        ]


class TestRoadTransport:
    FLEET: ClassVar[dict[str, Any]] = {
        "diesel_t": 1_000,
        "electricity_kwh": 100_000,
        "tonne_km": 50_000_000,
        "vehicle_km": 4_000_000,
    }

    def test_schema(self):
        assert _refused("road_transport", {"diesel_t": 10}) == {"activity.tonne_km": "Required."}
        assert _refused("road_transport", {**self.FLEET, "vehicle_km": 0}) == {
            "activity.vehicle_km": "Above 0 vehicle-km."
        }

    def test_worked_example(self):
        r = _account("road_transport", self.FLEET)
        # 1,000 t × 3,095.909637 = 3,095,909.637 kg; 100,000 kWh × 0.5306 = 53,060 kg.
        assert r.emissions_kg == pytest.approx(3_148_969.637)
        # 3,148,969,637 g / 50,000,000 t-km = 62.979 g/t-km: C (above 60, at most 80).
        assert r.intensity == pytest.approx(62.97939274)
        assert (r.grade.label, r.grade.value) == ("C", 63.0)
        # 3,148,969,637 g / 4,000,000 vehicle-km, beside it.
        assert r.figures == pytest.approx({"g_per_vehicle_km": 787.24240925})

    def test_grade_boundaries(self):
        for bound, at, above in [(40, "A", "B"), (60, "B", "C"), (80, "C", "D"), (110, "D", "E")]:
            assert _label("road_transport", bound - 0.1) == at
            assert _label("road_transport", bound) == at
            assert _label("road_transport", bound + 0.1) == above


class TestEnergyProducer:
    PLANT: ClassVar[dict[str, Any]] = {
        "coal_t": 400_000,
        "supplied_electricity_kwh": 1_000_000_000,
        "supplied_heat_gj": 500_000,
    }

    def test_schema(self):
        # Neither electricity nor heat supplied: nothing to divide by.
        assert _refused("energy_producer", {"coal_t": 5, "supplied_heat_gj": 0}) == {
            "activity.supplied_electricity_kwh": (
                "At least one of supplied_electricity_kwh, supplied_heat_gj above zero."
            )
        }
        assert _refused("energy_producer", {**self.PLANT, "coal_t": 1e10}) == {
            "activity.coal_t": "At most 1e+09 t."
        }

    def test_worked_example(self):
        r = _account("energy_producer", self.PLANT)
        # 400,000 t × 1,900.298849 = 760,119,539.6 kg.
        assert r.emissions_kg == pytest.approx(760_119_539.6)
        # 1,000,000,000 kWh + 500,000 GJ × 277.7778 = 1,138,888,900 kWh supplied.
        assert r.denominator == pytest.approx(1_138_888_900)
        # 760,119,539,600 g / 1,138,888,900 kWh = 667.42 g/kWh: B (above 392, at most 877).
        assert r.intensity == pytest.approx(667.4220282593)
        assert (r.grade.label, r.grade.value) == ("B", 667.0)

    def test_grade_boundaries(self):
        for bound, at, above in [
            (392, "A", "B"),
            (877, "B", "C"),
            (979, "C", "D"),
            (1146, "D", "E"),
        ]:
            assert _label("energy_producer", bound - 1) == at
            assert _label("energy_producer", bound) == at
            assert _label("energy_producer", bound + 1) == above


class TestAgriculture:
    FARM: ClassVar[dict[str, Any]] = {
        "diesel_t": 20,
        "electricity_kwh": 50_000,
        "nitrogen_kg": 10_000,
        "output_value_10k_cny": 500,
    }

    def test_schema(self):
        assert _refused("agriculture", {**self.FARM, "output_value_10k_cny": -5}) == {
            "activity.output_value_10k_cny": "Above 0 10k_CNY."
        }
        assert _refused("agriculture", {**self.FARM, "nitrogen_kg": True}) == {
            "activity.nitrogen_kg": "A number (kg N)."
        }

    def test_worked_example(self):
        r = _account("agriculture", self.FARM)
        lines = {line.field: line.emissions_kg for line in r.lines}
        # 20 t × 3,095.909637 = 61,918.19274 kg; 50,000 kWh × 0.5306 = 26,530 kg;
        # 10,000 kg N × 0.01 × 1.5714286 (44/28) × 265 = 41,642.8579 kg CO2e.
        assert lines == pytest.approx(
            {"diesel_t": 61_918.19274, "electricity_kwh": 26_530.0, "nitrogen_kg": 41_642.8579}
        )
        assert r.emissions_kg == pytest.approx(130_091.05064)
        # 130.09105064 t / 500 (10k yuan) = 0.2602 t CO2e per 10k yuan: B.
        assert r.intensity == pytest.approx(0.26018210128)
        assert (r.grade.label, r.grade.value) == ("B", 0.2602)

    def test_grade_boundaries(self):
        for bound, at, above in [
            (0.2, "A", "B"),
            (0.4, "B", "C"),
            (0.8, "C", "D"),
            (1.5, "D", "E"),
        ]:
            assert _label("agriculture", bound - 0.0001) == at
            assert _label("agriculture", bound) == at
            assert _label("agriculture", bound + 0.0001) == above


class TestResident:
    HOUSEHOLD: ClassVar[dict[str, Any]] = {
        "electricity_kwh": 2_700,
        "natural_gas_m3": 200,
        "car_km": 10_000,
        "household_size": 3,
    }

    def test_schema(self):
        assert _refused("resident", {**self.HOUSEHOLD, "household_size": 2.5}) == {
            "activity.household_size": "A whole number."
        }
        assert _refused("resident", {"car_km": 100}) == {"activity.electricity_kwh": "Required."}

    def test_worked_example(self):
        r = _account("resident", self.HOUSEHOLD)
        lines = {line.field: line.emissions_kg for line in r.lines}
        # 2,700 kWh × 0.5306 = 1,432.62 kg; 200 m3 × 2.162189 = 432.4378 kg;
        # 10,000 km × 7 L/100 km × 0.74 kg/L = 518 kg = 0.518 t petrol × 2,925.05598
        # = 1,515.1789976 kg.
        assert lines == pytest.approx(
            {"electricity_kwh": 1_432.62, "natural_gas_m3": 432.4378, "car_km": 1_515.1789976}
        )
        assert {line.field: line.quantity for line in r.lines}["car_km"] == pytest.approx(0.518)
        assert r.emissions_kg == pytest.approx(3_380.2367976)
        assert (r.denominator, r.denominator_unit) == (1.0, "household")
        assert (r.grade.label, r.grade.value) == ("C", 3380.0)  # above 2,000, at most 3,500
        assert r.figures == pytest.approx({"kg_per_person": 1_126.7455992})

    def test_grade_boundaries(self):
        for bound, at, above in [
            (1000, "A", "B"),
            (2000, "B", "C"),
            (3500, "C", "D"),
            (5000, "D", "E"),
        ]:
            assert _label("resident", bound - 1) == at
            assert _label("resident", bound) == at
            assert _label("resident", bound + 1) == above


class TestIndustry:
    PLANT: ClassVar[dict[str, Any]] = {
        "electricity_kwh": 1_000_000,
        "green_electricity_kwh": 200_000,
        "natural_gas_m3": 100_000,
        "added_value_10k_cny": 1_000,
    }

    def test_schema(self):
        assert _refused("industry", {"electricity_kwh": 5}) == {
            "activity.added_value_10k_cny": "Required."
        }
        assert _refused("industry", {**self.PLANT, "coal_t": float("inf")}) == {
            "activity.coal_t": "A finite number."
        }

    def test_worked_example(self):
        r = _account("industry", self.PLANT, benchmark=0.8)
        lines = {line.field: line.emissions_kg for line in r.lines}
        # 1,000,000 kWh × 0.5306 = 530,600 kg, less the green 200,000 kWh × 0.5306 =
        # 106,120 kg; 100,000 m3 × 2.162189 = 216,218.9 kg.
        assert lines == pytest.approx(
            {
                "electricity_kwh": 530_600.0,
                "green_electricity_kwh": -106_120.0,
                "natural_gas_m3": 216_218.9,
            }
        )
        assert r.emissions_kg == pytest.approx(640_698.9)
        # L = 640.6989 t / 1,000 (10k yuan) = 0.6407; K = 0.6407 / 0.8 = 0.8009: grade 3.
        assert r.intensity == pytest.approx(0.6406989)
        assert (r.grade.label, r.grade.value) == ("3", 0.8009)
        # Without the industry's benchmark: no grade, the intensity band instead (medium).
        alone = _account("industry", self.PLANT)
        assert (alone.grade.label, alone.grade.reason) == (None, "industry_benchmark_needed:medium")

    def test_green_electricity_is_taken_out_at_most_to_the_grid_kwh(self):
        r = _account("industry", {**self.PLANT, "green_electricity_kwh": 5_000_000})
        assert r.emissions_kg == pytest.approx(216_218.9)

    def test_grade_boundaries_are_grades_py_k_bounds(self):
        k = KINDS["industry"]

        def label(intensity: float) -> str | None:
            return registry.grade(k, intensity, {}, benchmark=1.0).label

        for bound, at, above in [
            (0.6, "1", "2"),
            (0.8, "2", "3"),
            (1.2, "3", "4"),
            (2.0, "4", "5"),
        ]:
            assert label(bound - 0.0001) == at
            assert label(bound) == at
            assert label(bound + 0.0001) == above
        # The settings' policy decides, as for the programme's grades.
        strict = GradePolicy(k_bounds=(0.5, 0.7, 1.0, 1.5))
        assert registry.grade(k, 0.6, {}, benchmark=1.0, policy=strict).label == "2"


# --- the file -----------------------------------------------------------------------------------


def _fixture(tmp_path: Path, change: Any) -> Path:
    data = json.loads((HERE / "kinds_fixture.json").read_text(encoding="utf-8"))
    change(data["kinds"]["warehouse"])
    path = tmp_path / "kinds.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_a_kind_of_a_fixture_file_with_an_existing_method_is_accepted():
    kinds = registry.load(HERE / "kinds_fixture.json")
    k = kinds["warehouse"]
    activity = registry.validate(
        k, {"floor_area_m2": 2_000, "electricity_kwh": 50_000, "diesel_t": 1}
    )
    r = registry.account(k, activity, _factors("building"))
    # 50,000 kWh × 0.5306 = 26,530 kg; 1 t × 3,095.909637 kg: 29,625.909637 kg over 2,000 m2
    # = 14,812.95 g/m2: "fair" (above 10,000, at most 20,000).
    assert r.emissions_kg == pytest.approx(29_625.909637)
    assert r.intensity == pytest.approx(14_812.9548185)
    assert (r.grade.label, r.intensity_unit) == ("fair", "gCO2/m2/yr")
    with pytest.raises(InvalidInput):
        registry.validate(k, {"floor_area_m2": 2_000, "electricity_kwh": 1, "building_type": "x"})


@pytest.mark.parametrize(
    ("change", "why"),
    [
        (lambda k: k.update(method="teleport"), "no method 'teleport'"),
        (lambda k: k.update(method="common"), "has no account() function"),
        (lambda k: k.update(method="../registry"), "is not a method's name"),
        (lambda k: k["fields"].pop("electricity_kwh"), "reads fields the schema lacks"),
        (lambda k: k["grading"].update(bounds=[20000, 10000]), "increase strictly"),
        (lambda k: k["grading"].update(labels=["good", "poor"]), "one label more than bounds"),
        (lambda k: k["denominator"].update(fields={"volume_m3": 1}), "not a number field"),
        (lambda k: k.update(colour="blue"), "Object contains unknown field"),
    ],
)
def test_a_kind_that_cannot_work_is_refused_at_load(tmp_path, change, why):
    with pytest.raises(KindsFileError, match=r"warehouse|kinds\.json") as caught:
        registry.load(_fixture(tmp_path, change))
    assert why in str(caught.value)
