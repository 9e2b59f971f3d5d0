"""Donation's refusals, each with a stable code (subject first; messages in rewards/messages)."""

from __future__ import annotations

from kit.errors import Conflict, NotFound, Unprocessable


class ProjectNotFound(NotFound):
    code = "project_not_found"
    title = "No such public-welfare project"


class ProjectClosed(Unprocessable):
    code = "project_closed"
    title = "The project is not taking donations"


class CertificateNotFound(NotFound):
    code = "certificate_not_found"
    title = "No such certificate"


class GramsPooled(Conflict):
    code = "grams_pooled"
    title = "The vintage's reductions are pooled"
