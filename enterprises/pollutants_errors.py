"""The refusals of the enterprises' pollutant data (enterprises.pollutants), each with a stable
code (messages in enterprises/messages). A pollutant or a source that is not one of the
accepted ones is refused at the edge (``validation_failed``: the body's types are closed
literals); what the types cannot say is refused here, naming each field."""

from __future__ import annotations

from kit.errors import InvalidInput, Unprocessable

__all__ = ["PollutantLinesDuplicate", "PollutantMonthInvalid", "PollutantUnitUnknown"]


class PollutantUnitUnknown(InvalidInput):
    """A line's unit is not one of the accepted mass units (t, kg, g)."""

    code = "pollutant_unit_unknown"
    title = "Unknown unit of a pollutant amount"


class PollutantMonthInvalid(InvalidInput):
    """The month is not a month's first day between 2000 and 2100."""

    code = "pollutant_month_invalid"
    title = "Invalid month of pollutant data"


class PollutantLinesDuplicate(Unprocessable):
    """One pollutant from one source is listed twice in a month."""

    code = "pollutant_lines_duplicate"
    title = "A pollutant and source listed twice"
