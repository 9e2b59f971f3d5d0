"""Refusals of the reporting package, each with a stable code (problem+json via kit.errors)."""

from __future__ import annotations

from kit.errors import InvalidInput, NotFound


class ReportRangeInvalid(InvalidInput):
    """A period that is not a period of the grain, an end before the start, a range too long."""

    code = "report_range_invalid"
    title = "Invalid report period"


class ScenarioInvalid(InvalidInput):
    """A Kaya scenario or peak-test series that cannot be computed."""

    code = "scenario_invalid"
    title = "Invalid scenario"


class IndexWeightsInvalid(InvalidInput):
    code = "index_weights_invalid"
    title = "Invalid index weights"


class ReportNotFound(NotFound):
    code = "report_not_found"
    title = "No such report"
