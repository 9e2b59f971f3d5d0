"""The ledger's settings section (``TANPUHUI_POINTS_*``)."""

from __future__ import annotations

from typing import Annotated

from msgspec import Meta, Struct

from kit.settings import doc


class PointsSettings(Struct, frozen=True, kw_only=True):
    grams_per_point: Annotated[
        int,
        Meta(ge=1, le=1_000_000),
        doc("Grams of verified CO2e that earn one carbon point (remainders carry over)."),
    ] = 10
    expiry_years: Annotated[
        int,
        Meta(ge=1, le=10),
        doc("Points expire at the end of the year this many years after they were earned."),
    ] = 2
    hold_timeout_s: Annotated[
        int, Meta(ge=10, le=30 * 86400), doc("Seconds before an unsettled hold is voided.")
    ] = 900
    witness_key: Annotated[
        str | None,
        doc(
            "Ed25519 private key (base64 of its 32 raw bytes) that signs the journal's "
            "checkpoints (`/api/public/v1/journal/checkpoint`, `tanpuhui audit --witness`); "
            "never stored in the database. Required in prod; unset in dev/test: a key generated "
            "once under the embedded data directory."
        ),
    ] = None
