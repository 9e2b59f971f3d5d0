"""The programme's administrative audit log: who did what to which thing, when, and the thing's
state before and after. Every administrative action, through the API or the CLI, records one
entry in the transaction that makes the change, so an action and its entry commit or roll back
together.

The log is append-only in the database itself (migration 0060): the application role has only
SELECT and INSERT on ``gov_audit_log`` and a trigger refuses UPDATE and DELETE to every role.

``actor`` is a government user's id (canonical UUID text) or ``cli:<os user>`` for a command
run on the server (:func:`cli_actor`). ``before`` and ``after`` are anything msgspec can
encode (Structs, dicts, lists, dates, UUIDs), stored as JSON; secrets never go in (callers pass
the public view of what changed).
"""

from __future__ import annotations

import getpass
import re
import uuid
from datetime import datetime
from typing import Any, Final

import msgspec
from msgspec import Struct

from kit.db import Tx
from kit.errors import InvalidInput
from reporting import audit_repository as repo

__all__ = ["AuditEntry", "cli_actor", "entries", "record"]

ACTION: Final = re.compile(r"[a-z][a-z0-9_.-]{1,63}", re.ASCII)
TARGET_MAX: Final = 200
PAGE_MAX: Final = 500


class AuditEntry(Struct, frozen=True, kw_only=True):
    id: int
    at: datetime
    actor: str  # a gov user's id, or "cli:<os user>"
    action: str  # e.g. "operator.register", "methodology.publish"
    target: str  # the id of what was acted on
    before: Any  # JSON: the state before (None: there was none)
    after: Any  # JSON: the state after (None: there is none)


def _json(value: object | None) -> Any:
    return None if value is None else msgspec.to_builtins(value)


def _actor_ok(actor: str) -> bool:
    if actor.startswith("cli:"):
        return 1 <= len(actor) - 4 <= 64
    try:
        return str(uuid.UUID(actor)) == actor
    except ValueError:
        return False


def cli_actor() -> str:
    """The actor of a command run on the server: ``cli:`` and the operating-system user."""
    try:
        name = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry for the uid (a container)
        name = "unknown"
    return "cli:" + (name[:64] or "unknown")


async def record(
    tx: Tx,
    *,
    actor: str,
    action: str,
    target: str,
    before: object | None = None,
    after: object | None = None,
) -> None:
    """Append one entry, in the caller's transaction."""
    if not _actor_ok(actor) or not ACTION.fullmatch(action) or not 1 <= len(target) <= TARGET_MAX:
        # A programming error (callers pass their own constants and ids), never a user's.
        raise ValueError(f"audit entry refused: actor={actor!r} action={action!r}")
    await repo.insert(
        tx, actor=actor, action=action, target=target, before=_json(before), after=_json(after)
    )


async def entries(
    conn: Any,
    *,
    limit: int = 100,
    before_id: int | None = None,
    actor: str | None = None,
    action: str | None = None,
    target: str | None = None,
    since: datetime | None = None,
) -> list[AuditEntry]:
    """The log, newest first: at most ``limit`` entries with an id below ``before_id`` (the
    next page), optionally of one actor, one action (or action family: ``operator`` matches
    ``operator.register``), one target, or since a time."""
    if not 1 <= limit <= PAGE_MAX:
        raise InvalidInput(f"limit: 1 to {PAGE_MAX}.", code="validation_failed")
    rows = await repo.entries(
        conn,
        limit=limit,
        before_id=before_id,
        actor=actor,
        action=action,
        target=target,
        since=since,
    )
    return [
        AuditEntry(
            id=r["id"],
            at=r["at"],
            actor=r["actor"],
            action=r["action"],
            target=r["target"],
            before=r["before"],
            after=r["after"],
        )
        for r in rows
    ]
