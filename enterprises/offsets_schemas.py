"""Value types of offsets (msgspec Structs): what an enterprise sends to buy and retire pooled
reductions, and what it and the public read back (enterprises.offsets; docs/offsets.md)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from msgspec import Meta, Struct

from points.certify import CertificateProof, EvidenceStatus
from points.journal import PublishedBlock
from points.schemas import Transfer
from points.witness import Checkpoint

OFFSET_CERTIFICATE_FORMAT = "tanpuhui-offset-certificate/1"
HoldingState = Literal["held", "retired"]
Grams = Annotated[int, Meta(ge=1, le=10**15, description="Grams of CO2e (one serial a gram).")]
Year = Annotated[int, Meta(ge=2000, le=2100)]
Methodology = Annotated[
    str, Meta(min_length=1, max_length=100, pattern=r"^[^\x00]*[^\s\x00][^\x00]*$")
]


class IssuanceIn(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Pool residents' verified grams of a vintage and methodology into a new serial block."""

    methodology: Methodology
    vintage: Year
    amount: Annotated[
        Grams | None, Meta(description="Grams to pool; absent: all that may still be pooled.")
    ] = None


class PurchaseIn(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Buy ``quantity_g`` grams of pooled reductions: the programme's lowest free serials."""

    quantity_g: Grams
    price_yuan_per_t: Annotated[
        float,
        Meta(
            ge=0,
            le=1_000_000,
            description="Price per tonne in yuan, recorded for the statement (no payment).",
        ),
    ]


class RetirementIn(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Retire ``quantity_g`` grams of the enterprise's held offsets (its lowest serials) against
    its emissions of the year ``period``."""

    quantity_g: Grams
    period: Year


class SerialRange(Struct, frozen=True, kw_only=True):
    """Serials ``start`` to ``end`` (both included) of one issued block."""

    issuance_id: int
    start: int
    end: int
    methodology: str
    vintage: int


class Purchase(Struct, frozen=True, kw_only=True):
    id: int
    enterprise_id: uuid.UUID
    quantity_g: int
    price_yuan_per_t: float
    amount_yuan: float  # quantity in tonnes × price, rounded to the fen
    serials: list[SerialRange]
    transfer_id: str | None
    purchased_at: datetime


class Retirement(Struct, frozen=True, kw_only=True):
    serial: str  # the certificate's serial
    enterprise_id: uuid.UUID
    period: int
    quantity_g: int
    serials: list[SerialRange]
    transfer_id: str | None
    retired_at: datetime
    certificate_url: str


class Holding(Struct, frozen=True, kw_only=True):
    issuance_id: int
    serial_start: int
    serial_end: int
    amount: int
    state: HoldingState
    methodology: str
    vintage: int
    purchase_id: int
    retirement_id: int | None


class Holdings(Struct, frozen=True, kw_only=True):
    held_g: int  # bought, not retired: may still be retired
    retired_g: int
    holdings: list[Holding]  # live rows, lowest serials first


class Cap(Struct, frozen=True, kw_only=True):
    """How much the enterprise may retire against ``period``: ``share`` of its emissions."""

    period: int
    emissions_g: int  # gross emissions of the year (the enterprise's accounting, default basis)
    share: float
    cap_g: int
    used_g: int  # retired against the period already
    remaining_g: int


class NetEmissions(Struct, frozen=True, kw_only=True):
    year: int
    basis: str  # the factor basis of the emissions (enterprises.factors)
    gross_emissions_kg: float
    offsets_retired_g: int
    offsets_retired_kg: float
    net_emissions_kg: float  # gross less offsets retired against the year
    cap: Cap


class OffsetCertificate(Struct, frozen=True, kw_only=True):
    """An offset retirement's public certificate: the serials retired, how many grams, by which
    enterprise, against which year, and the evidence that its ledger transfer (the enterprise's
    offsets account to its retired offsets account, whose ``source_ref`` names the certificate,
    the enterprise, the period and the serials) is in the journal: Merkle ``proof``, sealed
    ``block`` header and the witness ``checkpoint`` (``python -m points.verify`` checks it all
    with the standard library). Until the block is sealed: ``status`` pending, no proof."""

    format: str = OFFSET_CERTIFICATE_FORMAT
    serial: str
    enterprise_id: uuid.UUID
    enterprise_name: str
    period: int
    asset: Literal["CO2E_G"] = "CO2E_G"
    amount: int
    serials: list[SerialRange]
    retired_at: datetime
    status: EvidenceStatus
    transfer: Transfer | None = None
    proof: CertificateProof | None = None
    block: PublishedBlock | None = None
    checkpoint: Checkpoint | None = None
