"""Donation's refusals, each with a stable code (subject first; messages in rewards/messages)."""

from __future__ import annotations

from kit.errors import NotFound, Unprocessable


class ProjectNotFound(NotFound):
    code = "project_not_found"
    title = "No such public-welfare project"


class ProjectClosed(Unprocessable):
    code = "project_closed"
    title = "The project is not taking donations"


class CertificateNotFound(NotFound):
    code = "certificate_not_found"
    title = "No such certificate"
