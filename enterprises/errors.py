"""The enterprises' errors.

A field that breaks a rule (a credit code whose check character is wrong, an industry code of
the wrong shape, a district that is not imported) is ``validation_failed`` with one
``FieldError`` per field (and, for an import, per line): the same code the surfaces give a body
that does not decode, so a client reads one shape for "fix these fields"."""

from __future__ import annotations

from kit.errors import Conflict, Unprocessable

__all__ = ["CreditCodeTaken", "FactorMissing"]


class CreditCodeTaken(Conflict):
    code = "credit_code_taken"
    title = "Credit code already registered"


class FactorMissing(Unprocessable):
    """The factor library has no factor for what a computation asks (a basis's year, scope or
    area that is not published, a kind without a factor)."""

    code = "factor_missing"
    title = "No such emission factor"
