"""The energy-efficiency bill (Huzhou's 碳效码 bill: the period's use by energy kind and equipment
class, against its peers, with the savings an action would bring), per enterprise and period
(a month ``YYYY-MM`` or a year ``YYYY``), as JSON and as a CSV download.

- **Use by energy kind**: the enterprise's recorded emissions of the period under the
  programme's default basis (``enterprises.accounting.monthly_emissions``): quantity, energy
  (t ce), its share of the period's energy, t CO2 with the factors the rows used, and an
  estimated cost at the catalogue's prices (``enterprises/green_services.json``, ``prices``).
- **Metered use by site and equipment class** (meters carry an optional equipment class,
  migration 0048): the meters' monthly sums (flagged readings excluded). A report supersedes
  the meters for the kinds it reports, so these may differ from the totals: they say where
  the metered energy went, the totals say what was accounted.
- **Against peers**: the energy intensity (t ce per 10,000 yuan of added value) and the carbon
  intensity (t CO2 per 10,000 yuan) of the period, against the medians of the enterprises of
  the same industry (the GB/T 4754 code at ``grade_industry_digits`` digits, the enterprise
  included) that have energy data and added value in the same period; one statement
  (``efficiency_repository.peer_intensities``). Below ``bill_min_peers`` such enterprises no
  median is disclosed (the statement answers none) and the bill says so
  (``industry_too_few_peers``).
- **Recommended actions and their savings**: the green services the catalogue recommends for
  the period (``enterprises.green_services.match``) with, for an action, its savings a year
  computed on the period's annualised use, each term's formula and inputs written out.

No SQL here (``efficiency_repository``), no HTTP (``server.enterprise.green_routes``).

    async def bill(conn, enterprise_id: UUID, period: str, settings) -> Bill   # not_found: no data
    def to_csv(bill: Bill) -> bytes                                          # UTF-8 with BOM
"""

from __future__ import annotations

import csv
import io
import math
import uuid
from datetime import date
from typing import Any, Final

from msgspec import Struct

from enterprises import accounting, grades, green_services, users
from enterprises import efficiency_repository as repo
from enterprises.activity import CANONICAL_UNITS
from enterprises.factors import Basis
from enterprises.green_services import Recommendation, Text
from enterprises.report import period_bounds
from enterprises.settings import EnterprisesSettings
from kit.errors import NotFound

CSV_MEDIA_TYPE: Final = "text/csv"  # Litestar adds "; charset=utf-8"
UNCLASSIFIED: Final = "unclassified"
TOO_FEW_PEERS: Final = grades.TOO_FEW_PEERS
NO_ADDED_VALUE: Final = grades.NO_ADDED_VALUE


class KindUse(Struct, frozen=True, kw_only=True):
    kind: str
    quantity: float  # the period's, canonical unit
    unit: str
    sources: list[str]  # meter | report
    energy_tce: float
    energy_share: float | None  # of the period's energy (None: no energy at all)
    emissions_t: float  # t CO2 (negative for green electricity: the deduction)
    factor_refs: list[str]
    price_yuan_per_unit: float | None  # the catalogue's (None: none for this kind)
    cost_yuan: float | None  # estimated: quantity × price


class MeteredUse(Struct, frozen=True, kw_only=True):
    site_id: uuid.UUID
    site: str
    equipment_class: str  # a meter class, or "unclassified"
    kind: str
    quantity: float
    unit: str
    meters: int


class PeerComparison(Struct, frozen=True, kw_only=True):
    industry: str  # the code at the grade's level (C26)
    peers: int  # enterprises of the industry with an intensity in the period
    min_peers: int
    disclosed: bool  # False: fewer peers than min_peers, no median
    energy_intensity: float | None  # t ce / 10,000 yuan, this enterprise
    energy_median: float | None
    energy_ratio: float | None  # intensity / median
    carbon_intensity: float | None  # t CO2 / 10,000 yuan
    carbon_median: float | None
    carbon_ratio: float | None
    reason: str | None = None  # industry_too_few_peers | added_value_missing
    note: Text | None = None


class Bill(Struct, frozen=True, kw_only=True):
    enterprise_id: uuid.UUID
    credit_code: str
    name: str
    industry: str
    period: str
    start: date
    end: date  # the first day after the period
    basis: str
    months_with_data: int
    added_value: float  # 10,000 yuan, the period
    energy_tce: float
    emissions_t: float
    cost_yuan: float  # estimated at the catalogue's prices
    kinds: list[KindUse]
    metered: list[MeteredUse]
    metered_note: Text
    peers: PeerComparison
    recommendations: list[Recommendation]
    savings_yuan_per_year: float  # the recommended actions' together
    savings_t_co2_per_year: float
    catalogue_version: int
    prices_source: str


METERED_NOTE: Final = Text(
    zh="按计量表的月度合计（已剔除被标记的读数）；企业上报的数据优先于计量表，故可能与合计不同。",
    en=(
        "The meters' monthly sums (flagged readings excluded); an enterprise's report "
        "supersedes the meters for the kinds it reports, so these may differ from the totals."
    ),
)


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b <= 0 else a / b


def _peers(
    row: Any,
    industry: str,
    min_peers: int,
    energy_i: float | None,
    carbon_i: float | None,
) -> PeerComparison:
    n = int(row["peers"]) if row is not None else 0
    energy_m = None if row is None or row["energy_median"] is None else float(row["energy_median"])
    carbon_m = None if row is None or row["carbon_median"] is None else float(row["carbon_median"])
    disclosed = n >= min_peers and energy_m is not None
    reason: str | None = None
    note: Text | None = None
    if not disclosed:
        reason = TOO_FEW_PEERS
        energy_m = carbon_m = None
        note = Text(
            zh=(
                f"同行业（{industry}）本期有强度的企业为 {n} 家，少于 {min_peers} 家："
                "不公开中位数。"
            ),
            en=(
                f"{n} enterprise(s) of the industry ({industry}) have an intensity in the "
                f"period, fewer than {min_peers}: no median is disclosed."
            ),
        )
    elif energy_i is None:
        reason = NO_ADDED_VALUE
        note = Text(
            zh="本期没有工业增加值：无法计算本企业的强度。",
            en="No added value in the period: the enterprise's intensity cannot be computed.",
        )
    return PeerComparison(
        industry=industry,
        peers=n,
        min_peers=min_peers,
        disclosed=disclosed,
        energy_intensity=energy_i,
        energy_median=energy_m,
        energy_ratio=_ratio(energy_i, energy_m),
        carbon_intensity=carbon_i,
        carbon_median=carbon_m,
        carbon_ratio=_ratio(carbon_i, carbon_m),
        reason=reason,
        note=note,
    )


async def bill(
    conn: Any, enterprise_id: uuid.UUID, period: str, settings: EnterprisesSettings
) -> Bill:
    """The enterprise's energy-efficiency bill of ``period`` (``YYYY-MM`` or ``YYYY``;
    ``validation_failed`` otherwise); ``not_found`` when no energy was recorded in it."""
    start, end = period_bounds(period)
    basis = Basis.of(settings)
    months = await accounting.monthly_emissions(
        conn, enterprise_id, start=start, end=end, basis=basis
    )
    f = await green_services.facts(conn, enterprise_id, start, end, settings, months=months)
    if f.months == 0:
        raise NotFound(f"The enterprise has no recorded energy data in {period}.")
    profile = await users.enterprise_profile(conn, enterprise_id)
    cat = green_services.catalogue(settings.green_services_file)
    prices: dict[str, float] = {str(k): v for k, v in cat.prices.energy_yuan_per_unit.items()}
    total_tce = math.fsum(u.energy_kgce for u in f.uses.values()) / 1000
    total_t = math.fsum(u.emissions_kg for u in f.uses.values()) / 1000
    kinds = []
    for u in f.uses.values():
        price = prices.get(u.kind)
        kinds.append(
            KindUse(
                kind=u.kind,
                quantity=u.quantity,
                unit=u.unit,
                sources=u.sources,
                energy_tce=u.energy_kgce / 1000,
                energy_share=u.energy_kgce / 1000 / total_tce if total_tce > 0 else None,
                emissions_t=u.emissions_kg / 1000,
                factor_refs=u.factor_refs,
                price_yuan_per_unit=price,
                cost_yuan=None if price is None else u.quantity * price,
            )
        )
    added_value = math.fsum(k.quantity for m in months for k in m.kinds if k.kind == "added_value")
    industry = grades.industry_group(profile.industry, settings.grade_industry_digits)
    row = await repo.peer_intensities(
        conn, basis.label, start, end, industry, settings.bill_min_peers
    )
    energy_i = total_tce / added_value if added_value > 0 else None
    carbon_i = total_t / added_value if added_value > 0 else None
    metered = [
        MeteredUse(
            site_id=r["site_id"],
            site=r["site"],
            equipment_class=r["equipment_class"] or UNCLASSIFIED,
            kind=r["kind"],
            quantity=float(r["quantity"]),
            unit=CANONICAL_UNITS.get(r["kind"], ""),
            meters=r["meters"],
        )
        for r in await repo.metered_use(conn, enterprise_id, start, end)
    ]
    recommended = green_services.match(cat, f)
    return Bill(
        enterprise_id=enterprise_id,
        credit_code=profile.credit_code,
        name=profile.name,
        industry=profile.industry,
        period=period,
        start=start,
        end=end,
        basis=basis.label,
        months_with_data=f.months,
        added_value=added_value,
        energy_tce=total_tce,
        emissions_t=total_t,
        cost_yuan=math.fsum(k.cost_yuan for k in kinds if k.cost_yuan is not None),
        kinds=kinds,
        metered=metered,
        metered_note=METERED_NOTE,
        peers=_peers(row, industry, settings.bill_min_peers, energy_i, carbon_i),
        recommendations=recommended,
        savings_yuan_per_year=math.fsum(
            r.savings.yuan_per_year for r in recommended if r.savings is not None
        ),
        savings_t_co2_per_year=math.fsum(
            r.savings.t_co2_per_year for r in recommended if r.savings is not None
        ),
        catalogue_version=cat.version,
        prices_source=cat.prices.source,
    )


# --- the download ------------------------------------------------------------------------------


def _num(x: float | None, digits: int = 3) -> str:
    if x is None:
        return ""
    text = f"{x:.{digits}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def _cell(text: str) -> str:
    """A text cell a spreadsheet will not take for a formula (OWASP: CSV injection)."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def to_csv(b: Bill) -> bytes:
    """The bill as CSV for a spreadsheet: UTF-8 with a byte-order mark (Excel reads it as
    UTF-8), CRLF lines, one section after another, each with a bilingual title line and its
    own header, separated by an empty line. Text cells that a spreadsheet would evaluate are
    quoted with a leading apostrophe."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\r\n")
    w.writerow(["能效账单 · Energy-efficiency bill"])
    w.writerow(["项目 Item", "值 Value"])
    for item, value in (
        ("企业 Enterprise", _cell(b.name)),
        ("统一社会信用代码 Credit code", b.credit_code),
        ("行业 Industry (GB/T 4754)", b.industry),
        ("期间 Period", b.period),
        ("因子基准 Factor basis", b.basis),
        ("有数据的月份 Months with data", str(b.months_with_data)),
        ("工业增加值 Added value (万元 10k CNY)", _num(b.added_value)),
        ("综合能耗 Energy (t ce)", _num(b.energy_tce)),
        ("排放 Emissions (t CO2)", _num(b.emissions_t)),
        ("估算费用 Estimated cost (yuan)", _num(b.cost_yuan, 2)),
    ):
        w.writerow([item, value])
    w.writerow([])
    w.writerow(["按能源种类 · Use by energy kind"])
    w.writerow(
        [
            "种类 Kind",
            "数量 Quantity",
            "单位 Unit",
            "能耗 t ce",
            "占比 Share",
            "排放 t CO2",
            "单价 Price (yuan/unit)",
            "费用 Cost (yuan)",
            "因子 Factors",
            "来源 Source",
        ]
    )
    for k in b.kinds:
        w.writerow(
            [
                k.kind,
                _num(k.quantity),
                k.unit,
                _num(k.energy_tce),
                _num(k.energy_share, 4),
                _num(k.emissions_t),
                _num(k.price_yuan_per_unit, 4),
                _num(k.cost_yuan, 2),
                "; ".join(k.factor_refs),
                "/".join(k.sources),
            ]
        )
    w.writerow([])
    w.writerow(["按厂区与设备类别（计量） · Metered use by site and equipment class"])
    w.writerow(["厂区 Site", "设备类别 Equipment class", "种类 Kind", "数量 Quantity", "单位 Unit",
                "表数 Meters"])  # fmt: skip
    for m in b.metered:
        w.writerow(
            [_cell(m.site), m.equipment_class, m.kind, _num(m.quantity), m.unit, str(m.meters)]
        )
    w.writerow([f"{b.metered_note.zh} · {b.metered_note.en}"])
    w.writerow([])
    p = b.peers
    w.writerow([f"同行对比（{p.industry}） · Against peers ({p.industry})"])
    w.writerow(["指标 Indicator", "本企业 Enterprise", "同行中位数 Peers' median", "比值 Ratio"])
    w.writerow(
        [
            "能耗强度 Energy intensity (t ce / 万元)",
            _num(p.energy_intensity, 6),
            _num(p.energy_median, 6),
            _num(p.energy_ratio, 4),
        ]
    )
    w.writerow(
        [
            "碳排放强度 Carbon intensity (t CO2 / 万元)",
            _num(p.carbon_intensity, 6),
            _num(p.carbon_median, 6),
            _num(p.carbon_ratio, 4),
        ]
    )
    w.writerow(["同行企业数 Peers", str(p.peers), f"最少 min {p.min_peers}", ""])
    if p.note is not None:
        w.writerow([f"{p.note.zh} · {p.note.en}"])
    w.writerow([])
    w.writerow(["推荐的绿色服务与节约（每年） · Recommended services and savings (a year)"])
    w.writerow(
        [
            "服务 Service",
            "名称 Name",
            "理由 Reasons",
            "节约 Savings (yuan/yr)",
            "减排 t CO2/yr",
            "节能 t ce/yr",
            "计算 Formula",
        ]
    )
    for r in b.recommendations:
        s = r.savings
        w.writerow(
            [
                r.service,
                f"{r.name.zh} · {r.name.en}",
                " | ".join(f"{x.zh} · {x.en}" for x in r.reasons),
                "" if s is None else _num(s.yuan_per_year, 2),
                "" if s is None else _num(s.t_co2_per_year),
                "" if s is None else _num(s.tce_per_year),
                "" if s is None else " | ".join(t.expression for t in s.terms),
            ]
        )
    w.writerow(
        [
            "合计 Total",
            "",
            "",
            _num(b.savings_yuan_per_year, 2),
            _num(b.savings_t_co2_per_year),
            "",
            "",
        ]
    )
    w.writerow([])
    w.writerow([f"价格来源 Prices: {b.prices_source}"])
    return ("\ufeff" + out.getvalue()).encode("utf-8")
