"""The carbon account report: a PDF of an enterprise's account for a month or a year (its
profile, activity, emissions with the factors they used, grade and alerts), issued once and
kept byte for byte with its SHA-256, so that a bank handed the file can ask the public API
(``/api/public/v1/enterprise-reports/{sha256}``) which enterprise and period it is and when the
programme issued it. Quzhou's banks price loans on such reports.

The PDF is drawn with reportlab's built-in CJK CID font ``STSong-Light`` (no font file ships
with the project; the reader's PDF viewer supplies the glyphs) in reportlab's ``invariant``
mode: no creation time or random document id inside, so the same content renders to the same
bytes and each report differs from another by what it says (its id and issue time are printed
on it). Rendering runs in a worker thread: it is CPU work that must not stall the event loop.

No SQL and no HTTP here: storage is ``users_repository``; callers own the transaction.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import re
import uuid
from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any, Final
from zoneinfo import ZoneInfo

from msgspec import Struct
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from enterprises import accounting, alerts, grades, pollutants
from enterprises import users_repository as repo
from enterprises.factors import Basis
from enterprises.schemas import Enterprise
from enterprises.settings import EnterprisesSettings
from kit.db import Tx
from kit.errors import FieldError, InvalidInput, NotFound

MEDIA_TYPE: Final = "application/pdf"
PERIOD_PATTERN: Final = r"^2[01][0-9]{2}(-(0[1-9]|1[0-2]))?$"
_PERIOD = re.compile(PERIOD_PATTERN, re.ASCII)
FIRST_YEAR: Final = 2000
FONT: Final = "STSong-Light"


class Section(Struct, frozen=True, kw_only=True):
    """One table of the report: a bilingual title, column heads, rows of text, a note."""

    title: str
    columns: list[str]
    rows: list[list[str]]
    note: str = ""


class ReportContent(Struct, frozen=True, kw_only=True):
    report_id: uuid.UUID
    issued_at: datetime
    enterprise: Enterprise
    period: str  # YYYY-MM or YYYY
    start: date  # first day of the period
    end: date  # first day after it
    sections: list[Section]


class CarbonReport(Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    sha256: str
    enterprise_id: uuid.UUID
    period: str
    issued_at: datetime
    media_type: str
    size_bytes: int


class ReportFile(Struct, frozen=True, kw_only=True):
    report: CarbonReport
    content: bytes


class Verification(Struct, frozen=True, kw_only=True):
    sha256: str
    credit_code: str
    enterprise_name: str
    period: str
    issued_at: datetime


def period_bounds(period: str) -> tuple[date, date]:
    """(first day, first day after) of ``YYYY-MM`` or ``YYYY``; ``validation_failed`` else."""
    if not _PERIOD.fullmatch(period) or not FIRST_YEAR <= int(period[:4]) <= 2100:
        raise InvalidInput(
            "A report's period is a month YYYY-MM or a year YYYY.",
            code="validation_failed",
            errors=[FieldError(path="period", message=f"YYYY-MM or YYYY, from {FIRST_YEAR} on.")],
        )
    year = int(period[:4])
    if len(period) == 4:
        return date(year, 1, 1), date(year + 1, 1, 1)
    month = int(period[5:])
    start = date(year, month, 1)
    return start, (date(year + 1, 1, 1) if month == 12 else date(year, month + 1, 1))


def _report(row: Any) -> CarbonReport:
    return CarbonReport(
        id=row["id"],
        sha256=row["sha256"],
        enterprise_id=row["enterprise_id"],
        period=row["period"],
        issued_at=row["issued_at"],
        media_type=row["media_type"],
        size_bytes=row["size"],
    )


# --- rendering ---------------------------------------------------------------------------------


def _register_font() -> None:
    if FONT not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(UnicodeCIDFont(FONT))


_SIZE_CLASS = {"above": "规模以上 · above designated size", "below": "规模以下 · below"}


def render_pdf(content: ReportContent, zone: ZoneInfo) -> bytes:
    """The report as PDF bytes (deterministic: the same content gives the same bytes)."""
    _register_font()
    e = content.enterprise
    title = ParagraphStyle("title", fontName=FONT, fontSize=16, leading=22)
    head = ParagraphStyle("head", fontName=FONT, fontSize=11, leading=16, spaceBefore=8)
    body = ParagraphStyle("body", fontName=FONT, fontSize=8.5, leading=12)
    issued = content.issued_at.astimezone(zone).isoformat(timespec="seconds")
    story: list[Any] = [
        Paragraph("碳账户报告 · Carbon account report", title),
        Paragraph(f"报告期 Period: {content.period}", body),
        Paragraph(f"报告编号 Report id: {content.report_id}", body),
        Paragraph(f"签发时间 Issued at: {issued}", body),
        Spacer(1, 4 * mm),
    ]
    profile = [
        ["企业名称 Name", e.name],
        ["统一社会信用代码 Credit code", e.credit_code],
        ["行业 Industry (GB/T 4754-2017)", e.industry],
        ["所在区 District (GB/T 2260)", e.district],
        ["规模 Size class", _SIZE_CLASS.get(e.size_class, e.size_class)],
    ]
    story.append(Paragraph("企业 · Enterprise", head))
    story.append(_table(profile, body, header=False))
    for section in content.sections:
        story.append(Paragraph(section.title, head))
        if section.rows:
            story.append(_table([section.columns, *section.rows], body, header=True))
        else:
            story.append(Paragraph("无 · none", body))
        if section.note:
            story.append(Paragraph(section.note, body))
    story += [
        Spacer(1, 6 * mm),
        Paragraph(
            "核验：计算本文件的 SHA-256，查询 /api/public/v1/enterprise-reports/{sha256}，"
            "可得签发本报告的企业、报告期和签发时间。 · Verification: the SHA-256 of this file, "
            "looked up at /api/public/v1/enterprise-reports/{sha256}, gives the enterprise, "
            "period and issue time of the report the programme issued.",
            body,
        ),
    ]
    out = io.BytesIO()
    doc = SimpleDocTemplate(
        out,
        pagesize=A4,
        invariant=1,
        title=f"Carbon account report {e.credit_code} {content.period}",
        author="tanpuhui",
        leftMargin=18 * mm,
        rightMargin=18 * mm,
        topMargin=18 * mm,
        bottomMargin=18 * mm,
    )
    doc.build(story)
    return out.getvalue()


def _table(rows: list[list[str]], style: Any, *, header: bool) -> Any:
    cells = [[Paragraph(_escape(c), style) for c in row] for row in rows]
    table = Table(cells, repeatRows=1 if header else 0, hAlign="LEFT")
    commands: list[Any] = [
        ("GRID", (0, 0), (-1, -1), 0.25, colors.grey),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
    ]
    if header:
        commands.append(("BACKGROUND", (0, 0), (-1, 0), colors.whitesmoke))
    table.setStyle(TableStyle(commands))
    return table


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --- issuing and reading -----------------------------------------------------------------------


async def issue(
    tx: Tx,
    enterprise_id: uuid.UUID,
    period: str,
    sections: Sequence[Section],
    *,
    issued_by: uuid.UUID | None,
    zone: ZoneInfo,
    now: datetime | None = None,
) -> CarbonReport:
    """Render, hash and keep a report of ``sections`` for the enterprise and period."""
    start, end = period_bounds(period)
    enterprise = await repo.enterprise(tx.conn, enterprise_id)
    if enterprise is None:
        raise NotFound("No such enterprise.")
    issued_at = (now or datetime.now(UTC)).replace(microsecond=0)
    content = ReportContent(
        report_id=uuid.uuid4(),
        issued_at=issued_at,
        enterprise=enterprise,
        period=period,
        start=start,
        end=end,
        sections=list(sections),
    )
    pdf = await asyncio.to_thread(render_pdf, content, zone)
    row = await repo.insert_report(
        tx,
        report_id=content.report_id,
        sha256=sha256_hex(pdf),
        enterprise_id=enterprise_id,
        period=period,
        issued_at=issued_at,
        issued_by=issued_by,
        media_type=MEDIA_TYPE,
        content=pdf,
    )
    return _report(row)


async def reports(conn: Any, enterprise_id: uuid.UUID, *, limit: int = 100) -> list[CarbonReport]:
    """The enterprise's reports, newest first."""
    return [_report(r) for r in await repo.reports_of(conn, enterprise_id, limit)]


async def report_file(conn: Any, enterprise_id: uuid.UUID, report_id: uuid.UUID) -> ReportFile:
    row = await repo.report_content(conn, enterprise_id, report_id)
    if row is None:
        raise NotFound("No such report in this enterprise.")
    return ReportFile(report=_report(row), content=bytes(row["content"]))


_HEX64 = re.compile(r"[0-9a-f]{64}", re.ASCII)


async def verify(conn: Any, sha256: str) -> Verification:
    """Whose report has this hash (``not_found``: the programme issued no such file)."""
    digest = sha256.lower()
    row = await repo.report_by_hash(conn, digest) if _HEX64.fullmatch(digest) else None
    if row is None:
        raise NotFound("The programme issued no report with this SHA-256.")
    return Verification(
        sha256=row["sha256"],
        credit_code=row["credit_code"],
        enterprise_name=row["name"],
        period=row["period"],
        issued_at=row["issued_at"],
    )


# --- what a report says ------------------------------------------------------------------------


def _t(kg: float) -> str:
    return f"{kg / 1000:,.3f}"


def _q(x: float) -> str:
    return f"{x:,.3f}".rstrip("0").rstrip(".")


async def sections(
    conn: Any, enterprise_id: uuid.UUID, start: date, end: date, settings: EnterprisesSettings
) -> list[Section]:
    """The report's tables for the months [start, end): emissions by energy kind with the
    factor each used, totals by scope, the grade of the period's year with its benchmark, the
    pollutants of the period, and the budget alerts of the period."""
    basis = Basis.of(settings)
    months = await accounting.monthly_emissions(
        conn, enterprise_id, start=start, end=end, basis=basis
    )
    by_kind: dict[str, dict[str, Any]] = {}
    for m in months:
        for k in m.kinds:
            entry = by_kind.setdefault(
                k.kind,
                {"quantity": 0.0, "kg": 0.0, "unit": k.unit, "sources": set(), "factors": set()},
            )
            entry["quantity"] += k.quantity
            entry["kg"] += k.emissions_kg
            entry["sources"].add(k.source)
            if k.factor_ref is not None:
                entry["factors"].add(f"{k.factor_ref} v{k.factor_version} ({k.factor_kg} kg/unit)")
    kinds = [
        [
            kind,
            _q(e["quantity"]),
            e["unit"],
            "/".join(sorted(e["sources"])),
            "; ".join(sorted(e["factors"])) or "—",
            _t(e["kg"]) if e["factors"] else "—",
        ]
        for kind, e in sorted(by_kind.items())
    ]
    scope1 = sum(m.scope1_kg for m in months)
    scope2 = sum(m.scope2_kg for m in months)
    energy_kgce = sum(m.energy_kgce for m in months)
    return [
        *_emission_sections(basis, months, kinds, scope1, scope2, energy_kgce),
        await _grade_section(conn, enterprise_id, start.year, settings),
        await _pollutant_section(conn, enterprise_id, start, end, settings),
        await _alert_section(conn, enterprise_id, start, end),
    ]


def _emission_sections(
    basis: Basis,
    months: list[accounting.MonthEmissions],
    kinds: list[list[str]],
    scope1: float,
    scope2: float,
    energy_kgce: float,
) -> list[Section]:
    return [
        Section(
            title="排放与活动数据（按能源种类） · Emissions and activity by energy kind",
            columns=[
                "种类 Kind",
                "数量 Quantity",
                "单位 Unit",
                "来源 Source",
                "排放因子 Factor (ref, version, value)",
                "排放 t CO2",
            ],
            rows=kinds,
            note=(
                f"因子基准 Factor basis: {basis.label}; {len(months)} 个月有数据 months with data."
            ),
        ),
        Section(
            title="合计 · Totals",
            columns=["项目 Item", "值 Value"],
            rows=[
                ["范围一 Scope 1 (t CO2)", _t(scope1)],
                ["范围二 Scope 2 (t CO2, 绿电已扣除 green electricity deducted)", _t(scope2)],
                ["合计 Total (t CO2)", _t(scope1 + scope2)],
                ["综合能耗 Energy (t ce)", _t(energy_kgce)],
            ],
        ),
    ]


def _opt(value: float | int | None, digits: int = 4) -> str:
    return (
        "—" if value is None else (str(value) if isinstance(value, int) else f"{value:.{digits}f}")
    )


async def _grade_section(
    conn: Any, enterprise_id: uuid.UUID, year: int, settings: EnterprisesSettings
) -> Section:
    found = await grades.explain(conn, enterprise_id, year, settings)
    title = f"{year} 年碳效等级 · Carbon-efficiency grade of {year}"
    columns = ["项目 Item", "值 Value"]
    if found is None:
        return Section(
            title=title, columns=columns, rows=[], note="该年无数据 · No data that year."
        )
    g = found.assessment.grade
    i = found.assessment.index
    rows = [
        ["等级 Grade (1-5)", _opt(g.grade)],
        ["颜色 Colour", g.colour or "—"],
        ["强度 L (t CO2 / 万元 10k CNY)", _opt(g.intensity)],
        ["强度档 Intensity band", g.band or "—"],
        [f"行业基准 Benchmark ({g.industry}, {found.benchmark_method})", _opt(g.benchmark)],
        ["K = L / benchmark", _opt(g.k)],
        ["行业内排名 Rank", f"{_opt(g.rank)} / {g.peers}"],
        [
            "三色指数 Three-colour index",
            f"{i.colour} ({i.score:.1f})" if i.score is not None else "—",
        ],
        ["排放 Emissions (t CO2)", _t(found.emissions_kg)],
        ["工业增加值 Added value (万元 10k CNY)", _q(found.added_value)],
        ["因子 Factors", "; ".join(found.factors) or "—"],
    ]
    note = f"未评级原因 No grade: {g.reason}" if g.reason else ""
    return Section(title=title, columns=columns, rows=rows, note=note)


async def _pollutant_section(
    conn: Any, enterprise_id: uuid.UUID, start: date, end: date, settings: EnterprisesSettings
) -> Section:
    """The period's pollutants (enterprises.pollutants): per pollutant the accounted kg, the
    sources it came from, its pollutant equivalents and its intensity per added value."""
    found = await pollutants.period(conn, enterprise_id, start, end, "", settings)
    f = found.figures
    table = pollutants.catalogue().pollutants
    rows = [
        [
            f"{table[p].name_zh} {table[p].name_en}",
            _q(kg),
            f.sources.get(p, "—"),
            _q(kg / table[p].equivalent_kg),
            "—" if f.intensity_kg_per_10k is None else _opt(f.intensity_kg_per_10k.get(p)),
        ]
        for p, kg in f.amounts_kg.items()
    ]
    if rows:
        rows.append(
            [
                "合计 Total",
                _q(sum(f.amounts_kg.values())),
                "",
                _q(f.equivalents),
                _opt(f.equivalents_per_10k),
            ]
        )
    return Section(
        title="污染物排放 · Pollutant emissions",
        columns=[
            "污染物 Pollutant",
            "排放量 kg",
            "来源 Source",
            "污染当量 Equivalents",
            "强度 kg / 万元 10k CNY",
        ],
        rows=rows,
        note=(
            f"{len(found.months)} 个月有数据 months with data; 同一污染物取最可信来源 "
            "(在线监测、许可、报告) · the most trusted source counts (online monitoring, "
            "permit, report); the total's intensity is in equivalents."
        ),
    )


async def _alert_section(conn: Any, enterprise_id: uuid.UUID, start: date, end: date) -> Section:
    found = [a for a in await alerts.alerts(conn, enterprise_id) if start <= a.period_start < end]
    return Section(
        title="预算预警 · Budget alerts",
        columns=[
            "指标 Metric",
            "期间 Period",
            "预警值 Threshold",
            "预算 Budget",
            "预测 Projected",
            "状态 State",
        ],
        rows=[
            [
                a.metric,
                f"{a.period_kind} {a.period_start.isoformat()}",
                f"{a.threshold:.0%}",
                _q(a.budget),
                _q(a.projected),
                a.state,
            ]
            for a in found
        ],
    )


async def issue_for(
    tx: Tx,
    enterprise_id: uuid.UUID,
    period: str,
    *,
    issued_by: uuid.UUID | None,
    zone: ZoneInfo,
    settings: EnterprisesSettings,
    now: datetime | None = None,
) -> CarbonReport:
    """Issue the enterprise's report of ``period`` from its account as it stands."""
    start, end = period_bounds(period)
    found = await sections(tx.conn, enterprise_id, start, end, settings)
    return await issue(tx, enterprise_id, period, found, issued_by=issued_by, zone=zone, now=now)
