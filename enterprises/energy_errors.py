"""The errors of enterprises' energy and activity data (enterprises.energy).

A field that breaks a rule (a unit that is not one of the kind's, a pusher that is not an
operator, a report line's quantity) is ``validation_failed`` with one ``FieldError`` per
field, as the registry's; a reading that breaks one is that reading's ``rejected`` verdict."""

from __future__ import annotations

from kit.errors import Conflict, NotFound

__all__ = [
    "ActivityReportNotFound",
    "EnterpriseNotFound",
    "GreenCertificateClaimed",
    "MeterRefTaken",
    "SiteNameTaken",
    "SiteNotFound",
]


class EnterpriseNotFound(NotFound):
    code = "enterprise_not_found"
    title = "No such enterprise"


class SiteNotFound(NotFound):
    code = "site_not_found"
    title = "No such site"


class SiteNameTaken(Conflict):
    code = "site_name_taken"
    title = "The enterprise has another site of that name"


class MeterRefTaken(Conflict):
    code = "meter_ref_taken"
    title = "The pusher already has a meter of that reference"


class ActivityReportNotFound(NotFound):
    code = "activity_report_not_found"
    title = "No such activity report"


class GreenCertificateClaimed(Conflict):
    """A green-electricity certificate serial was claimed by another enterprise (or by another
    report of this one): a serial counts once in the whole region."""

    code = "green_certificate_claimed"
    title = "Green certificate already claimed"
