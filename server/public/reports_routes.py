"""The public check of an enterprise's carbon account report (``/api/public/v1``): anyone
holding a report file (a bank pricing a loan on it) hashes it and asks whose it is. The answer
is the enterprise, the period and the time the programme issued it: no more (the figures are in
the file the holder already has; the hash proves the file is the one issued)."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Router, get
from litestar.di import NamedDependency
from litestar.params import PathParameter

from enterprises import report
from server.enterprise.errors import errors
from server.enterprise.schemas import PublicReport


@get(
    "/enterprise-reports/{sha256:str}",
    summary=(
        "按 SHA-256 核验企业碳账户报告：哪家企业、哪个报告期、何时签发 · "
        "Check a carbon account report by its SHA-256: which enterprise, period, issued when"
    ),
    responses=errors("validation_failed", "not_found"),
)
async def enterprise_report(
    pool: NamedDependency[Any],
    sha256: Annotated[
        str, PathParameter(min_length=64, max_length=64, pattern=r"^[0-9a-fA-F]{64}$")
    ],
) -> PublicReport:
    async with pool.acquire() as conn:
        found = await report.verify(conn, sha256)
    return PublicReport(
        sha256=found.sha256,
        credit_code=found.credit_code,
        enterprise_name=found.enterprise_name,
        period=found.period,
        issued_at=found.issued_at,
    )


# Its own Router on the public prefix, so that the public surface's module stays its owner's.
public_reports_router = Router(
    path="/api/public/v1", route_handlers=[enterprise_report], tags=["public"]
)
