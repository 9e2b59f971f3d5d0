"""The shapes of the enterprises' pollutant data (enterprises.pollutants)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Literal

from msgspec import Meta, Struct

Pollutant = Literal["so2", "nox", "pm", "vocs"]
PollutantSource = Literal["permit", "online_monitoring", "report"]
POLLUTANTS: tuple[Pollutant, ...] = ("so2", "nox", "pm", "vocs")


class PollutantLineIn(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    pollutant: Pollutant
    amount: Annotated[float, Meta(ge=0, le=1e12)]  # in ``unit``
    unit: Annotated[str, Meta(min_length=1, max_length=16)]  # t | kg | g
    source: PollutantSource


class PollutantsIn(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A month's pollutant lines: they replace whatever the month had (all or nothing)."""

    month: date  # the month's first day
    lines: Annotated[list[PollutantLineIn], Meta(min_length=1, max_length=12)]


class PollutantLine(Struct, frozen=True, kw_only=True):
    pollutant: Pollutant
    source: PollutantSource
    amount_kg: float
    given_amount: float
    given_unit: str
    recorded_at: datetime


class PollutantsRecorded(Struct, frozen=True, kw_only=True):
    enterprise_id: uuid.UUID
    month: date
    replaced: int  # lines the month had before
    lines: list[PollutantLine]


class PollutantFigures(Struct, frozen=True, kw_only=True):
    """What a month (or a period) accounts: per pollutant the kg of its most trusted source,
    their pollutant equivalents, and per 10,000 yuan of added value (None without it)."""

    amounts_kg: dict[str, float]
    sources: dict[str, str]  # the source each pollutant's amount was taken from
    equivalents: float
    added_value: float | None  # 10,000 yuan, of the months with pollutant data
    intensity_kg_per_10k: dict[str, float] | None
    equivalents_per_10k: float | None


class PollutantMonth(Struct, frozen=True, kw_only=True):
    month: date
    lines: list[PollutantLine]
    figures: PollutantFigures


class PollutantPeriod(Struct, frozen=True, kw_only=True):
    period: str  # YYYY-MM or YYYY
    start: date
    end: date  # the first day after the period
    basis: str  # the accounting basis the added value was read under
    months: list[PollutantMonth]
    figures: PollutantFigures  # the period's months together
