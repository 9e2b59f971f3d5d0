"""The refusals of employee commuting programmes (enterprises.commuting), each with a stable code
(messages in enterprises/messages)."""

from __future__ import annotations

from kit.errors import Conflict, NotFound, Unprocessable

__all__ = [
    "AlreadyMember",
    "CodeInvalid",
    "ConsentRequired",
    "ProgrammeExists",
    "ProgrammeNotFound",
]


class ProgrammeNotFound(NotFound):
    code = "commuting_programme_not_found"
    title = "No such commuting programme"


class ProgrammeExists(Conflict):
    code = "commuting_programme_exists"
    title = "The enterprise has a commuting programme of that name"


class ConsentRequired(Unprocessable):
    code = "commuting_consent_required"
    title = "Consent to the current consent text is required"


class CodeInvalid(Unprocessable):
    code = "commuting_code_invalid"
    title = "Unknown or used employee code or invitation"


class AlreadyMember(Conflict):
    code = "commuting_already_member"
    title = "Already a member of another commuting programme"
