"""The public offset certificates (``/api/public/v1/offsets/certificates/{serial}``): an
enterprise's retirement of pooled residents' reductions, with the Merkle proof, block header and
witness signature of its ledger transfer, checkable offline with ``python -m points.verify``
(docs/offsets.md). No sign-in."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Router, get
from litestar.di import NamedDependency
from litestar.params import PathParameter

from enterprises import offsets
from enterprises.offsets_schemas import OffsetCertificate
from points import witness
from server.settings import Settings


@get(
    "/offsets/certificates/{serial:str}",
    summary=(
        "企业抵消证书（注销的序列号、数量、企业、年份）及其默克尔包含证明、区块头和见证签名 · "
        "An enterprise's offset certificate (serials retired, amount, enterprise, year) with "
        "its Merkle proof, block header and witness signature"
    ),
)
async def offset_certificate(
    pool: NamedDependency[Any],
    settings: NamedDependency[Settings],
    serial: Annotated[
        str, PathParameter(min_length=1, max_length=40, pattern=offsets.SERIAL_PATTERN)
    ],
) -> OffsetCertificate:
    """Save the answer as a file and check it offline with ``python -m points.verify
    certificate.json`` (standard library only). While the transfer's block is not sealed yet (a
    few seconds), ``status`` is ``pending`` and the proof absent: ask again."""
    async with pool.acquire() as conn:
        return await offsets.certificate(
            conn,
            serial,
            key=witness.settings_key(settings),
            origin=witness.origin_of(settings.region_code),
        )


public_offsets_router = Router(
    path="/api/public/v1", route_handlers=[offset_certificate], tags=["public"]
)
