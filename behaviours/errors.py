"""Errors behaviours raises on purpose (problem+json through kit.errors' one handler)."""

from __future__ import annotations

from kit.errors import Conflict, InvalidInput, NotFound, PayloadTooLarge


class TooManyRecords(PayloadTooLarge):
    code = "too_many_records"
    title = "Too many records in one batch"


class BodyTooLarge(PayloadTooLarge):
    code = "body_too_large"
    title = "Request body too large"


class InvalidRecords(InvalidInput):
    code = "records_invalid"
    title = "Records do not match the event schema"


class InvalidFile(InvalidInput):
    """An uploaded file the programme cannot read as a whole (e.g. a CSV header naming unknown
    columns); a single bad line is that line's ``record_invalid`` verdict instead."""

    code = "file_invalid"
    title = "The file cannot be read"


class ConcurrentIngest(Conflict):
    """Another transaction credited an overlapping activity between our check and our insert;
    nothing of this batch was kept, and sending it again is safe."""

    code = "concurrent_ingest"
    title = "Concurrent ingestion of the same activity; retry the batch"


class UnknownOperator(NotFound):
    code = "unknown_operator"
    title = "Unknown operator"


class FileNotFound(NotFound):
    code = "file_not_found"
    title = "No such file"


class LinkNotFound(NotFound):
    code = "link_not_found"
    title = "No such link"


class InvalidScope(InvalidInput):
    code = "scope_invalid"
    title = "Invalid consent scope"


class ScopeNotOffered(InvalidInput):
    """A resident asked to grant an operator a behaviour it is not registered to report
    (operators.scopes)."""

    code = "scope_not_offered"
    title = "The operator does not report this behaviour"
