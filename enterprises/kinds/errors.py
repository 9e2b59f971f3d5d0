"""The kind accounts' errors. A field of an activity that breaks its kind's schema is
``validation_failed`` naming the field (``activity.<field>``), as every other refusal of a
field."""

from __future__ import annotations

from kit.errors import Unprocessable

__all__ = ["KindNotSelfReported"]


class KindNotSelfReported(Unprocessable):
    """The enterprise's kind is not accounted from a declared activity: industry is accounted
    from its activity reports and graded against its industry (``/emissions``, ``/grade``)."""

    code = "kind_not_self_reported"
    title = "This kind is not accounted from a declared activity"
