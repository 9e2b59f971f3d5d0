"""The government reports' synergy analyses (``GET /api/gov/v1/reports/enterprises/synergy``):
carbon and pollutant intensities by industry, their trend and correlation, and the industries
ranked by joint reduction potential, under the enterprise tables' disclosure rules
(reporting.synergy; docs/reporting.md, "Synergy analyses"). Listed in ``gov_reports_router``
(server/gov/reports_routes.py), whose ``GOV_READ`` guard it takes."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import get
from litestar.di import NamedDependency
from litestar.params import QueryParameter

from reporting import service
from server.settings import Settings


@get(
    "/enterprises/synergy",
    summary=(
        "减污降碳协同分析：各行业碳与污染物强度的分布、趋势、相关性及协同减排潜力排序 · "
        "Synergy analyses: carbon and pollutant intensity by industry (quartiles, trend, "
        "correlation) and the industries ranked by joint reduction potential"
    ),
    description=(
        "行业内企业数少于最小值的行业整体隐去（`status: suppressed`，数值为 null）。\n\n"
        "An industry of fewer analysed enterprises than the enterprise tables' minimum is "
        "suppressed whole (`status: suppressed`, figures null, no rank); an excess share "
        "dominated by its two largest enterprises is suppressed with the potential. "
        "Correlation: Pearson's r of the enterprises' carbon (t CO2 / 10k CNY) and pollutant "
        "(equivalents / 10k CNY) intensities in the year. Potential: max(r, 0) x (carbon excess "
        "share + pollutant excess share) / 2, an excess being what the enterprises above the "
        "industry's best quartile would cut by reaching it, as a share of all analysed "
        "enterprises' total."
    ),
)
async def enterprise_synergy(
    pool: NamedDependency[Any],
    settings: NamedDependency[Settings],
    year: Annotated[int, QueryParameter(ge=2001, le=2100)],
) -> service.SynergyReport:
    async with pool.acquire() as conn:
        return await service.synergy(conn, year, settings.reporting, settings.enterprises)
