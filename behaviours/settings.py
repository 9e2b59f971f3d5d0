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
        doc("Records per transaction when the worker processes an uploaded file."),
    ] = 5000
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
