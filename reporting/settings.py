"""The government reports' settings section (``TANPUHUI_REPORTING_*``): disclosure control,
the rollups' refresh, the reports' range limits and the dual-carbon index's weights."""

from __future__ import annotations

from typing import Annotated

from msgspec import Meta, Struct

from kit.settings import doc


class ReportingSettings(Struct, frozen=True, kw_only=True):
    min_contributors: Annotated[
        int,
        Meta(ge=1, le=1000),
        doc(
            "Frequency rule: a residents' cell (trips, grams, points, participants) with fewer "
            "distinct residents than this is suppressed in every government answer and export "
            "(value null, status `suppressed`), with complementary suppression so totals do not "
            "reveal it. Precedents: 3, 5, 10, 11, 20."
        ),
    ] = 10
    enterprise_min_contributors: Annotated[
        int,
        Meta(ge=1, le=1000),
        doc(
            "Frequency rule of the enterprise tables (emissions, grade counts): a cell of fewer "
            "enterprises than this is suppressed (sdcTable's default is 3)."
        ),
    ] = 3
    dominance_n: Annotated[
        int,
        Meta(ge=1, le=10),
        doc("Dominance rule (n, k) of the enterprise magnitude tables: n, the largest counted."),
    ] = 2
    dominance_k: Annotated[
        float,
        Meta(gt=0, le=1),
        doc(
            "Dominance rule (n, k): a cell whose n largest enterprises make this share or more "
            "of its emissions is suppressed (0.85: 85 %)."
        ),
    ] = 0.85
    refresh_days: Annotated[
        int,
        Meta(ge=1, le=400),
        doc(
            "Days (ending today, in TANPUHUI_TIMEZONE) the periodic rollup job recomputes on "
            "each run, with their months; later changes to older days are found by the "
            "reconciliation and fixed by `tanpuhui reporting refresh`."
        ),
    ] = 3
    refresh_interval_s: Annotated[
        int,
        Meta(ge=10, le=86400),
        doc("Seconds between runs of the rollup job (the reports' lag behind the ledger)."),
    ] = 300
    max_days: Annotated[
        int,
        Meta(ge=1, le=3660),
        doc("Longest range of a daily series or export, in days (longer: 400 problem+json)."),
    ] = 366
    index_weights: Annotated[
        str | None,
        doc(
            'Weights of the dual-carbon index as JSON ({"indicator": weight, ...}); unset: '
            "the defaults in reporting/index.json. Weights are renormalised over the indicators "
            "that have data."
        ),
    ] = None
