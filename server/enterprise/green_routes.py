"""The enterprise API's green services and energy-efficiency bill: thin controllers over
``enterprises.green_services`` and ``enterprises.efficiency_bill`` (docs/green_services.md)."""

from __future__ import annotations

from typing import Annotated

from litestar import Response, get
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import PathParameter, QueryParameter

from enterprises import efficiency_bill, green_services, report
from enterprises.efficiency_bill import Bill
from enterprises.green_services import Recommendations
from server.enterprise.base import SCOPE, Caller, Guarded
from server.enterprise.errors import SCOPED, errors
from server.settings import Settings

# A month or a year the bill can cover (enterprises.report.period_bounds: 2000 to 2100).
BILL_PERIOD = r"^(20[0-9]{2}|2100)(-(0[1-9]|1[0-2]))?$"
PeriodPath = Annotated[
    str,
    PathParameter(
        pattern=BILL_PERIOD,
        description="A calendar month `YYYY-MM` or a calendar year `YYYY`.",
    ),
]


class GreenController(Guarded):
    """Recommended green services and the energy-efficiency bill."""

    path = SCOPE
    tags = ["green services"]  # noqa: RUF012 (Litestar's class attribute)

    @get(
        "/recommendations",
        summary=(
            "推荐的绿色服务及理由（等级、行业、预警、设备、用能），措施附每年节约 · "
            "Recommended green services with their reasons (grade, industry, alerts, equipment, "
            "use); actions with their savings a year"
        ),
        responses=errors(*SCOPED),
    )
    async def recommendations(
        self,
        caller: NamedDependency[Caller],
        settings: NamedDependency[Settings],
        year: Annotated[int, QueryParameter(ge=report.FIRST_YEAR, le=2100)],
    ) -> Recommendations:
        async with caller.pool.acquire() as conn:
            return await green_services.recommend(
                conn, caller.enterprise_id, year, settings.enterprises
            )

    @get(
        "/bills/{period:str}",
        summary=(
            "能效账单：按能源种类与设备类别的用能、同行中位数对比、推荐措施的节约 · "
            "Energy-efficiency bill: use by energy kind and equipment class, against the "
            "peers' median, the savings of the recommended actions"
        ),
        description=(
            "同行少于最少家数时不公开中位数（`peers.reason`）。下载：`/bills/{period}/csv`。\n\n"
            "Below the minimum of peers no median is disclosed (`peers.reason`). Download: "
            "`/bills/{period}/csv`."
        ),
        responses=errors(*SCOPED, "not_found"),
    )
    async def bill(
        self,
        caller: NamedDependency[Caller],
        settings: NamedDependency[Settings],
        period: PeriodPath,
    ) -> Bill:
        async with caller.pool.acquire() as conn:
            return await efficiency_bill.bill(
                conn, caller.enterprise_id, period, settings.enterprises
            )

    @get(
        "/bills/{period:str}/csv",
        summary=(
            "下载能效账单（CSV，UTF-8 带 BOM，可直接用 Excel 打开） · "
            "Download the energy-efficiency bill (CSV, UTF-8 with BOM for spreadsheets)"
        ),
        media_type=efficiency_bill.CSV_MEDIA_TYPE,
        responses={
            200: ResponseSpec(
                data_container=bytes,
                media_type=efficiency_bill.CSV_MEDIA_TYPE,
                description="The bill's sections, one after another (docs/green_services.md).",
                generate_examples=False,
            ),
            **errors(*SCOPED, "not_found"),
        },
    )
    async def bill_csv(
        self,
        caller: NamedDependency[Caller],
        settings: NamedDependency[Settings],
        period: PeriodPath,
    ) -> Response[bytes]:
        async with caller.pool.acquire() as conn:
            found = await efficiency_bill.bill(
                conn, caller.enterprise_id, period, settings.enterprises
            )
        return Response(
            content=efficiency_bill.to_csv(found),
            media_type=efficiency_bill.CSV_MEDIA_TYPE,
            headers={
                "Content-Disposition": (
                    f'attachment; filename="efficiency-bill-{found.credit_code}-{period}.csv"'
                )
            },
        )
