"""The account kinds' shapes: a kind as loaded from ``account_kinds.json``, the factors a
method accounts with, what a method answers (:class:`Emissions`), and the account as stored and
served (:class:`KindAccount`)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Literal

from msgspec import Meta, Struct

from enterprises.factors import FuelFactor, GridFactor

# An activity as validated: field -> number (in the field's unit) or an enum's value.
Activity = Mapping[str, float | str]
FieldName = Annotated[str, Meta(min_length=1, max_length=64)]
KindName = Annotated[str, Meta(pattern=r"^[a-z][a-z0-9_]{0,39}$")]


class FieldSpec(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One activity field of a kind (``account_kinds.json``)."""

    type: Literal["number", "enum"] = "number"
    unit: str = ""
    required: bool = False
    min: float | None = None
    exclusive_min: bool = False  # the value must exceed ``min``
    max: float | None = None
    integer: bool = False
    values: tuple[str, ...] = ()  # an enum's values
    description: str = ""


class Param(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A kind's own constant (beside the factor library), with its source."""

    value: float
    unit: str = ""
    source: str


class Denominator(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The intensity's denominator: ``constant`` + Σ weight × field."""

    unit: str
    fields: dict[str, float] = {}
    constant: float = 0.0


class IntensitySpec(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """intensity = emissions (kg) × ``per_kg`` / denominator, in ``unit``."""

    unit: str
    per_kg: float = 1.0


class Grading(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``thresholds``: the first label whose bound the intensity (rounded to ``precision``
    decimals) does not exceed, the last above every bound; ``bounds`` may be per value of an
    enum field (``by_field``). ``industry_benchmark``: enterprises/grades.py (K against the
    industry's peers)."""

    rule: Literal["thresholds", "industry_benchmark"]
    labels: tuple[str, ...] = ()
    bounds: tuple[float, ...] | dict[str, tuple[float, ...]] = ()
    by_field: str | None = None
    precision: int = 4
    source: str


class KindSpec(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One kind as ``account_kinds.json`` writes it."""

    title: dict[str, str]
    source: str
    method: str
    self_reported: bool = True  # False: accounted from elsewhere (industry: activity reports)
    fields: dict[str, FieldSpec]
    require_one_of: tuple[str, ...] = ()
    denominator: Denominator
    intensity: IntensitySpec
    params: dict[str, Param] = {}
    grading: Grading


class KindsFile(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    about: str
    kinds: dict[str, KindSpec]


class Factors(Struct, frozen=True, kw_only=True):
    """What a method accounts with: the year's grid factor under the programme's basis, the
    fuels of the factor library (highest versions) and the kind's own params."""

    grid: GridFactor
    fuels: Mapping[str, FuelFactor]
    params: Mapping[str, float] = {}


class Line(Struct, frozen=True, kw_only=True):
    """One source of a kind's emissions: a quantity × a factor."""

    field: str  # the activity field (or a derived quantity's name)
    quantity: float
    unit: str
    factor_ref: str  # grid:<year>:<scope>:<area> | fuel:<kind> | param:<name> | zero
    factor_version: int | None
    factor_kg: float  # kg CO2(e) per unit
    emissions_kg: float


class Emissions(Struct, frozen=True, kw_only=True):
    """What a method answers: its lines (their sum is ``emissions_kg``) and second figures
    (e.g. g per vehicle-km, kg per person)."""

    emissions_kg: float
    lines: list[Line]
    figures: dict[str, float] = {}


class Grade(Struct, frozen=True, kw_only=True):
    rule: str
    label: str | None  # None: no grade (``reason``)
    value: float | None  # the intensity as compared (rounded), or K for industry
    bounds: list[float]
    labels: list[str]
    colour: str | None = None  # dark_green, light_green, yellow, orange, red
    reason: str | None = None


class Result(Struct, frozen=True, kw_only=True):
    """A kind's account of one activity: emissions, the denominator, the intensity, the grade."""

    kind: str
    method: str
    emissions_kg: float
    lines: list[Line]
    figures: dict[str, float]
    denominator: float
    denominator_unit: str
    intensity: float | None
    intensity_unit: str
    grade: Grade


class KindAccountIn(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A year's activity of an enterprise's kind (validated by the kind's schema)."""

    year: Annotated[int, Meta(ge=2000, le=2100, examples=[2025])]
    activity: Annotated[
        dict[FieldName, float | str],
        Meta(max_length=64, examples=[{"building_type": "office", "floor_area_m2": 20000}]),
    ]


class KindAccount(Struct, frozen=True, kw_only=True):
    enterprise_id: uuid.UUID
    year: int
    kind: str
    basis: str  # the factor basis the grid factor came from
    activity: dict[str, float | str]
    result: Result
    recorded_at: datetime


class FieldView(Struct, frozen=True, kw_only=True):
    name: str
    type: str
    unit: str
    required: bool
    min: float | None
    exclusive_min: bool
    max: float | None
    integer: bool
    values: list[str]
    description: str


class KindView(Struct, frozen=True, kw_only=True):
    """A kind as the API lists it: its schema, denominator, intensity and grading rule."""

    name: str
    title: dict[str, str]
    source: str
    method: str
    self_reported: bool
    fields: list[FieldView]
    require_one_of: list[str]
    denominator_unit: str
    intensity_unit: str
    grading: Grading
    params: dict[str, Param]


class KindCatalogue(Struct, frozen=True, kw_only=True):
    own: str  # the enterprise's kind
    kinds: list[KindView]
