"""Value types of donation (msgspec Structs): projects, donations, certificates."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec
from msgspec import Meta, Struct

from points.certify import CertificateProof as CertificateProof  # shared by every certificate
from points.journal import PublishedBlock
from points.schemas import ResidentAsset, Transfer
from points.witness import Checkpoint

CERTIFICATE_FORMAT = "tanpuhui-certificate/1"
ProjectStatus = Literal["upcoming", "open", "closed"]
CertificateStatus = Literal["pending", "sealed"]
Text200 = Annotated[str, Meta(min_length=1, max_length=200, pattern=r"^[^\x00]*[^\s\x00][^\x00]*$")]


class ProjectInput(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A public-welfare project as a programme administrator registers it."""

    title: Text200
    beneficiary: Text200
    target_asset: ResidentAsset  # what the target counts: points donated or grams retired
    target_amount: Annotated[int, Meta(gt=0, le=2**62)]
    starts_at: datetime
    ends_at: datetime
    description: Annotated[str, Meta(max_length=4000, pattern=r"^[^\x00]*$")] = ""


class Project(Struct, frozen=True, kw_only=True):
    """A project with its public counter: what was given to it, and its progress."""

    id: str
    title: str
    beneficiary: str
    description: str
    target_asset: ResidentAsset
    target_amount: int
    starts_at: datetime
    ends_at: datetime
    status: ProjectStatus
    points_donated: int = 0
    grams_retired: int = 0
    donations: int = 0  # certificates issued (donations and retirements)
    donors: int = 0  # distinct residents
    progress_percent: Annotated[
        float, Meta(description="Given so far in the target's asset, % of the target (≤ 100).")
    ] = 0.0


class ProjectPage(Struct, frozen=True):
    items: list[Project]
    next_cursor: str | None


class Donation(Struct, frozen=True, kw_only=True):
    """A donation (points) or a retirement (grams), as its donor sees it."""

    serial: str
    kind: Literal["donation", "retirement"]
    asset: ResidentAsset
    amount: int
    project_id: str
    project_title: str
    donated_at: datetime
    certificate_url: Annotated[
        str, Meta(description="The public certificate (with its proof once sealed): no login.")
    ]


class DonationPage(Struct, frozen=True):
    items: list[Donation]
    next_cursor: str | None


class Certificate(Struct, frozen=True, kw_only=True):
    """A donation certificate, public: no personal data (the donor is a pseudonym).

    ``transfer`` is the certified ledger transfer (the donation pool to the project), whose
    ``source_ref`` binds the serial and the donor pseudonym; ``proof`` walks its leaf to the
    block's Merkle root; ``block`` is the sealed block's header and ``checkpoint`` the
    programme's witness signature over that block (``python -m points.verify`` checks all of it
    with the standard library alone). Until the block is sealed: ``status`` pending, no proof.
    """

    format: str = CERTIFICATE_FORMAT
    serial: str
    kind: Literal["donation", "retirement"]
    asset: ResidentAsset
    amount: int
    project_id: str
    project_title: str
    beneficiary: str
    donor: Annotated[str, Meta(description="A pseudonym of the donor, never an identity.")]
    donated_at: datetime
    status: CertificateStatus
    transfer: Transfer | None = None
    proof: CertificateProof | None = None
    block: PublishedBlock | None = None
    checkpoint: Checkpoint | None = None


def kind_of(asset: str) -> Literal["donation", "retirement"]:
    return "donation" if asset == "POINT" else "retirement"


certificate_encoder = msgspec.json.Encoder()


class DonationRequest(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What a resident gives: points (``POINT``, a donation) or verified grams (``CO2E_G``, a
    retirement: those grams can never be sold or offset again)."""

    asset: ResidentAsset
    amount: Annotated[int, Meta(ge=1, le=1_000_000_000_000)]
