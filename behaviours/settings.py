"""Ingestion's settings section (``TANPUHUI_INGEST_*``)."""

from __future__ import annotations

from typing import Annotated

from msgspec import Meta, Struct

from kit.settings import doc


class IngestSettings(Struct, frozen=True, kw_only=True):
    max_batch_records: Annotated[
        int, Meta(ge=1, le=50_000), doc("Most events in one operator batch request.")
    ] = 5000
    max_batch_bytes: Annotated[
        int, Meta(ge=1024), doc("Largest operator batch body, in bytes (checked before decoding).")
    ] = 8 * 1024 * 1024
    max_file_bytes: Annotated[
        int,
        Meta(ge=1024),
        doc("Largest daily file (NDJSON or CSV) an operator may upload, in bytes."),
    ] = 256 * 1024 * 1024
    file_chunk_records: Annotated[
        int,
        Meta(ge=1, le=50_000),
        doc("Records per chunk an uploaded file is cut into (one transaction each)."),
    ] = 5000
    file_streams: Annotated[
        int,
        Meta(ge=1, le=3),
        doc(
            "Chunks of one file a worker processes at once, each in its own transaction (one "
            "chunk's database work overlaps another's Python; at most 3: the worker's pool "
            "holds 4 connections)."
        ),
    ] = 2
    file_workers: Annotated[
        int,
        Meta(ge=1, le=16),
        doc(
            "Worker processes an uploaded file is dispatched to (each takes the chunks the "
            "others do not hold; the worker runs 2 processes by default)."
        ),
    ] = 2
    claim_window_days: Annotated[
        int, Meta(ge=1, le=366), doc("Events older than this many days are rejected (`too_old`).")
    ] = 7
    future_skew_s: Annotated[
        int,
        Meta(ge=0, le=86400),
        doc("Events later than now plus this many seconds are rejected (`in_future`)."),
    ] = 300
    baseline_kwh_per_person_day: Annotated[
        float,
        Meta(ge=0),
        doc("Per-capita household electricity baseline (kWh/day) when a meter has no history."),
    ] = 2.5
    baseline_gas_m3_per_person_day: Annotated[
        float,
        Meta(ge=0),
        doc("Per-capita household gas baseline (m³/day) when a meter has no history."),
    ] = 0.3
    baseline_water_m3_per_person_day: Annotated[
        float,
        Meta(ge=0),
        doc("Per-capita household water baseline (m³/day) when a meter has no history."),
    ] = 0.15
    distance_tolerance: Annotated[
        float,
        Meta(ge=0, le=10),
        doc(
            "How far a transit trip's claimed distance may exceed the in-vehicle distance along "
            "the GTFS shape between its stops (0.2 = 20 %); beyond it the claim is clipped to "
            "the shape's distance."
        ),
    ] = 0.2
    source_ranking: Annotated[
        str,
        Meta(min_length=1, max_length=200),
        doc(
            "Which source's claim is credited when two trips of one resident overlap: operator "
            "kinds (transit, bike_share, utility, vehicle, platform, app), most trusted first, "
            "`>` between tiers and `,` within one (equals: the smaller reduction wins, then the "
            "smaller content digest). An unlisted kind ranks below every listed one."
        ),
    ] = "transit, bike_share > platform > app"

    def __post_init__(self) -> None:
        source_tiers(self.source_ranking)  # a ValueError here is the setting's SettingsError


OPERATOR_KINDS = frozenset({"transit", "bike_share", "utility", "vehicle", "app", "platform"})
"""The operators table's kinds (migration 0020; ``behaviours.service.OperatorKind``)."""


def source_tiers(ranking: str) -> dict[str, int]:
    """``"transit, bike_share > platform > app"`` -> ``{"transit": 0, "bike_share": 0,
    "platform": 1, "app": 2}`` (0 is the most trusted tier)."""
    tiers: dict[str, int] = {}
    for n, tier in enumerate(ranking.split(">")):
        for name in (k.strip() for k in tier.split(",")):
            if name not in OPERATOR_KINDS:
                raise ValueError(
                    f"unknown operator kind {name!r} in the source ranking (known: "
                    f"{', '.join(sorted(OPERATOR_KINDS))})"
                )
            if name in tiers:
                raise ValueError(f"operator kind {name!r} is ranked twice")
            tiers[name] = n
    return tiers
