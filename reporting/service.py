"""The reporting package's facade: what the surfaces, the CLI and the worker call.

Reads of the reports (``reports``), exports (``exports``), scenarios (``scenarios``), the
rollups' refresh (``rollups``) and the reconciliation (``reconcile``). See docs/reporting.md."""

from __future__ import annotations

from reporting.exports import AnnualSummary, annual_summary, datapackage, travel_csv
from reporting.reconcile import Reconciliation, last_reconciliation, reconcile
from reporting.reports import (
    by_district,
    by_mode,
    district_mode,
    dual_carbon_index,
    emissions_series,
    enterprise_series,
    enterprise_table,
    grade_distribution,
    liability,
    retrofit_list,
    series,
    totals,
)
from reporting.rollups import refresh_window
from reporting.scenarios import Path, decision, kaya, peak_test
from reporting.synergy import SynergyReport, synergy

__all__ = [
    "AnnualSummary",
    "Path",
    "Reconciliation",
    "SynergyReport",
    "annual_summary",
    "by_district",
    "by_mode",
    "datapackage",
    "decision",
    "district_mode",
    "dual_carbon_index",
    "emissions_series",
    "enterprise_series",
    "enterprise_table",
    "grade_distribution",
    "kaya",
    "last_reconciliation",
    "liability",
    "peak_test",
    "reconcile",
    "refresh_window",
    "retrofit_list",
    "series",
    "synergy",
    "totals",
    "travel_csv",
]
