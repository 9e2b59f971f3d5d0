"""`tanpuhui admin ...`: the programme's administration from the server's shell, the same acts
as the admin API (``/api/gov/v1/admin``), through the same functions (``reporting.admin`` and
``reporting.users``), each written to the audit log with the actor ``cli:<os user>``.

Every command reads the running configuration: ``DATABASE_URL``, or when it is unset the
embedded PostgreSQL of TANPUHUI_EMBEDDED_DATA_DIR, as `make run` uses it (server/cli.py's
``with_database``; no URL to copy). Each prints what it changed as JSON on stdout (secrets,
when one is made, appear there once and nowhere else) and a one-line summary on stderr; a
refusal is one line on stderr and exit status 1.

The first administrator is made here: `tanpuhui admin add-user LOGIN --role gov_admin --name
NAME` (the password asked twice, or the first line of stdin with --password-stdin); it prints
the TOTP provisioning URI once, for the administrator's authenticator app.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import msgspec

from enterprises.schemas import EnterpriseIn
from kit.db import Tx, connect, transaction_on
from kit.errors import DomainError
from reporting import admin, audit, users
from reporting.admin import DraftIn, OperatorChange, OperatorIn
from rewards.donation_schemas import ProjectInput
from rewards.schemas import MerchantRegistration
from rewards.settings import config_of
from server.settings import Settings

PROG = "tanpuhui admin"
KINDS = ("transit", "bike_share", "utility", "vehicle", "platform")
SCOPES_HELP = (
    "what it may report, comma-separated: some of transit, cycling, walking, household, "
    "vehicle; '' for none (an enterprise's meter gateway: residents cannot link it)"
)


def _scopes(value: str | None) -> list[str] | None:
    return None if value is None else [s.strip() for s in value.split(",") if s.strip()]


def _print(value: Any, summary: str) -> None:
    sys.stdout.write(msgspec.json.format(msgspec.json.encode(value), indent=2).decode() + "\n")
    sys.stderr.write(f"{PROG}: {summary}\n")


def _fail(message: str) -> int:
    sys.stderr.write(f"{PROG}: {message}\n")
    return 1


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("password: ")
    if getpass.getpass("again: ") != first:
        raise ValueError("the two passwords differ")
    return first


async def _in_tx(url: str, work: Callable[[Tx], Awaitable[Any]]) -> Any:
    conn = await connect(url)
    try:
        async with transaction_on(conn) as tx:
            return await work(tx)
    finally:
        await conn.close()


async def _read(url: str, work: Callable[[Any], Awaitable[Any]]) -> Any:
    conn = await connect(url)
    try:
        return await work(conn)
    finally:
        await conn.close()


def _user_id(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a user id: {value!r}") from None


def _when(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {value!r}") from None
    if parsed.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{value!r} needs a time zone offset (+08:00)")
    return parsed


# --- the commands ------------------------------------------------------------------------------


def _run(settings: Settings, args: argparse.Namespace) -> tuple[Any, str]:
    """(what changed, a summary line) of one command."""
    assert settings.database.url
    url = settings.database.url
    actor = audit.cli_actor()
    privacy = settings.privacy
    group, action = args.group, getattr(args, "action", None)

    def tx(work: Callable[[Tx], Awaitable[Any]]) -> Any:
        return asyncio.run(_in_tx(url, work))

    def read(work: Callable[[Any], Awaitable[Any]]) -> Any:
        return asyncio.run(_read(url, work))

    if group == "add-user":
        password = _password(args.password_stdin)
        made = tx(
            lambda t: users.add_user(
                t,
                settings.gov_users,
                privacy,
                login=args.login,
                display_name=args.name,
                role=args.role,
                password=password,
                actor=actor,
            )
        )
        summary = (
            f"{made.user.role} {made.user.login} added; add this to the user's authenticator "
            f"app now (shown once): {made.totp_uri}"
        )
        return made, summary
    if group == "users":
        listed = read(users.users)
        return listed, f"{len(listed)} government users"
    if group in ("disable-user", "enable-user"):
        disabled = group == "disable-user"
        done = tx(lambda t: users.set_disabled(t, args.user_id, disabled, actor=actor))
        return done, f"{done.login} {'disabled' if disabled else 'enabled'}"
    if group == "set-role":
        done = tx(lambda t: users.set_role(t, args.user_id, args.role, actor=actor))
        return done, f"{done.login} is now {done.role}"
    if group == "audit":
        found = read(
            lambda c: audit.entries(
                c, limit=args.limit, action=args.action_filter, target=args.target
            )
        )
        return found, f"{len(found)} audit entries, newest first"
    if group == "operator":
        if action == "list":
            listed = read(admin.operators)
            return listed, f"{len(listed)} operators"
        if action == "show":
            return read(lambda c: admin.operator(c, args.id)), f"operator {args.id}"
        if action == "register":
            op = msgspec.convert(
                {
                    "id": args.id,
                    "name": args.name,
                    "kind": args.kind,
                    "region_code": args.region,
                    "gtfs_feed": args.gtfs_feed,
                    "scopes": _scopes(args.scopes),
                },
                OperatorIn,
            )
            done = tx(
                lambda t: admin.register_operator(
                    t, op, region_code=settings.region_code, actor=actor
                )
            )
            return done, f"operator {done.id} registered ({done.kind}, {done.region_code})"
        if action == "change":
            change = msgspec.convert(
                {
                    "name": args.name,
                    "kind": args.kind,
                    "gtfs_feed": args.gtfs_feed,
                    "scopes": _scopes(args.scopes),
                },
                OperatorChange,
            )
            done = tx(lambda t: admin.change_operator(t, args.id, change, actor=actor))
            return done, f"operator {done.id} changed"
        suspended = action == "suspend"
        done = tx(lambda t: admin.suspend_operator(t, args.id, suspended, actor=actor))
        return done, f"operator {done.id} {'suspended' if suspended else 'resumed'}"
    if group == "key":
        if action == "issue":
            done = tx(
                lambda t: admin.issue_key(t, privacy, args.operator, args.key_id, actor=actor)
            )
            return done, f"key {done.key_id} issued to {done.operator_id}; its secret is shown once"
        if action == "rotate":
            overlap = (
                settings.gov_users.key_rotation_overlap_s
                if args.overlap_s is None
                else args.overlap_s
            )
            done = tx(
                lambda t: admin.rotate_key(
                    t, privacy, args.operator, args.old_key_id, args.new_key_id,
                    overlap_s=overlap, actor=actor,
                )
            )  # fmt: skip
            until = done.retiring.revoked_at if done.retiring else None
            return done, (
                f"key {done.key_id} issued to {done.operator_id}; {args.old_key_id} verifies "
                f"until {until}"
            )
        done = tx(lambda t: admin.revoke_key(t, args.operator, args.key_id, actor=actor))
        return done, f"key {args.operator}/{args.key_id} revoked"
    if group == "districts":
        raw = Path(args.file).read_bytes()
        done = tx(lambda t: admin.import_districts(t, raw, actor=actor))
        return done, f"{done.imported} districts imported (inserted or replaced): {args.file}"
    if group == "gtfs":
        path = Path(args.path)
        if not path.exists():
            raise FileNotFoundError(f"{path}: no such file or directory")
        done = tx(
            lambda t: admin.import_gtfs(
                t, args.feed, path, distance_unit=args.distance_unit, actor=actor
            )
        )
        c = done.counts
        return done, (
            f"GTFS feed {args.feed!r} replaced from {path}: {c.get('stops', 0)} stops, "
            f"{c.get('trips', 0)} trips, {c.get('stop_times', 0)} stop times"
        )
    if group == "methodology":
        if action == "list":
            return read(admin.published_methodologies), "published methodology versions"
        if action == "show":
            found = read(lambda c: admin.published_methodology(c, args.code, args.version))
            return found, f"{args.code} version {args.version}"
        if action == "drafts":
            listed = read(admin.drafts)
            return listed, f"{len(listed)} drafts"
        if action in ("draft", "edit"):
            body = msgspec.json.decode(Path(args.file).read_bytes(), type=DraftIn)
            if action == "draft":
                done = tx(lambda t: admin.create_draft(t, body, actor=actor))
                return done, f"draft {done.id} of {done.code} made (nothing in force yet)"
            done = tx(lambda t: admin.update_draft(t, args.draft_id, body, actor=actor))
            return done, f"draft {done.id} replaced"
        if action == "discard":
            tx(lambda t: admin.delete_draft(t, args.draft_id, actor=actor))
            return {"discarded": str(args.draft_id)}, f"draft {args.draft_id} discarded"
        if action == "preview":
            done = read(lambda c: admin.preview(c, args.draft_id, days=args.days))
            return done, (
                f"over the last {args.days} days: {done.total_current_g} g credited, "
                f"{done.total_draft_g} g with the draft (nothing changed)"
            )
        done = tx(
            lambda t: admin.publish(
                t, args.draft_id, effective_from=args.effective_from, actor=actor
            )
        )
        return (
            done,
            f"{done.code} version {done.version} published, in force from {done.effective_from}",
        )
    if group == "merchant":
        if action == "approve":
            reg = msgspec.convert(
                {
                    "id": args.id,
                    "name": args.name,
                    "settlement_contact": args.contact,
                    "webhook_url": args.webhook_url,
                },
                MerchantRegistration,
            )
            done = tx(lambda t: admin.approve_merchant(t, config_of(settings), reg, actor=actor))
            return done, f"merchant {reg.id} approved (its points account opened)"
        done = tx(
            lambda t: admin.issue_merchant_key(
                t, config_of(settings), args.merchant, args.key_id, actor=actor
            )
        )
        return done, f"key {args.key_id} issued to merchant {args.merchant}; shown once"
    if group == "project":
        project = msgspec.convert(
            {
                "title": args.title,
                "beneficiary": args.beneficiary,
                "target_asset": args.target_asset,
                "target_amount": args.target,
                "starts_at": args.starts,
                "ends_at": args.ends,
                "description": args.description,
            },
            ProjectInput,
            strict=False,
        )
        done = tx(lambda t: admin.approve_project(t, project, actor=actor))
        return done, f"project {done.id} approved"
    if group == "enterprise":
        if action == "register":
            e = EnterpriseIn(
                credit_code=args.credit_code,
                name=args.name,
                industry=args.industry,
                district=args.district,
                size_class=args.size_class,
            )
            done = tx(lambda t: admin.register_enterprise(t, e, actor=actor))
            what = "registered" if done.created else "unchanged (registered before)"
            return done, f"enterprise {done.enterprise.credit_code} {what}"
        text = Path(args.file).read_text(encoding="utf-8-sig")
        done = tx(lambda t: admin.import_enterprises(t, text, actor=actor))
        return done, f"{done.created} enterprises registered, {done.unchanged} unchanged"
    raise AssertionError(group)


def cmd_admin(settings: Settings, args: argparse.Namespace) -> int:
    """Administer the programme (the admin API's acts, written to the audit log as
    cli:<os user>): government users (add-user, users, disable-user, enable-user, set-role),
    operators and their signing keys, districts (GeoJSON), GTFS feeds (zip or directory),
    methodologies (draft, preview, publish), merchants and projects (approve), enterprises
    (register, import), and the audit log. Uses DATABASE_URL (unset: the embedded PostgreSQL
    of TANPUHUI_EMBEDDED_DATA_DIR, as `make run` uses it); prints what changed as JSON."""
    try:
        value, summary = _run(settings, args)
    except DomainError as exc:
        fields = "; ".join(f"{e.path}: {e.message}" for e in exc.errors or [])
        issues = (exc.extra or {}).get("issues") or []
        lines = "".join(f"\n  {i['file']} line {i['line']}: {i['message']}" for i in issues)
        return _fail(f"{exc.detail}{' (' + fields + ')' if fields else ''}{lines}")
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        return _fail(f"refused: {exc}")
    except (ValueError, EOFError, OSError) as exc:
        return _fail(str(exc) or type(exc).__name__)
    _print(value, summary)
    return 0


# --- the parser --------------------------------------------------------------------------------


def configure(parser: argparse.ArgumentParser) -> None:
    """The sub-commands of `tanpuhui admin` (server/cli.py calls this for its parser)."""
    groups = parser.add_subparsers(dest="group", required=True, metavar="COMMAND")

    p = groups.add_parser(
        "add-user",
        help="add a government user (the first administrator: --role gov_admin)",
        description="Add a government user and print its TOTP provisioning URI (once). The "
        "password is asked twice, or read from the first line of stdin (--password-stdin).",
    )
    p.add_argument("login", help="the user's login (lower case)")
    p.add_argument("--role", choices=["gov_analyst", "gov_admin"], required=True)
    p.add_argument("--name", required=True, help="the user's display name")
    p.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    groups.add_parser("users", help="list the government users", description="List them.")
    for name, text in (("disable-user", "disable"), ("enable-user", "enable")):
        p = groups.add_parser(name, help=f"{text} a government user (its tokens: at once)")
        p.add_argument("user_id", type=_user_id)
    p = groups.add_parser("set-role", help="change a government user's role")
    p.add_argument("user_id", type=_user_id)
    p.add_argument("role", choices=["gov_analyst", "gov_admin"])
    p = groups.add_parser("audit", help="the audit log, newest first")
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--action", dest="action_filter", help="an action or family, e.g. operator")
    p.add_argument("--target", help="the id acted on")

    op = groups.add_parser("operator", help="operators: list, show, register, change, suspend")
    acts = op.add_subparsers(dest="action", required=True)
    acts.add_parser("list", help="every operator, suspended ones included")
    p = acts.add_parser("show", help="an operator and its keys (never their secrets)")
    p.add_argument("id")
    p = acts.add_parser("register", help="register an operator")
    p.add_argument("id", help="the operator's id (a-z, 0-9, . _ -)")
    p.add_argument("--name", required=True)
    p.add_argument("--kind", choices=KINDS, required=True, help="what it sends")
    p.add_argument("--region", help="its GB/T 2260 region (default: the programme's)")
    p.add_argument("--gtfs-feed", help="the GTFS feed its stop ids refer to")
    p.add_argument("--scopes", help=SCOPES_HELP + " (default: its kind's)")
    p = acts.add_parser("change", help="change an operator's name, kind, GTFS feed or scopes")
    p.add_argument("id")
    p.add_argument("--name")
    p.add_argument("--kind", choices=KINDS)
    p.add_argument("--gtfs-feed")
    p.add_argument("--scopes", help=SCOPES_HELP + " (default: unchanged)")
    for name in ("suspend", "resume"):
        p = acts.add_parser(name, help=f"{name} an operator (its signed requests: at once)")
        p.add_argument("id")

    key = groups.add_parser("key", help="operators' signing keys: issue, rotate, revoke")
    acts = key.add_subparsers(dest="action", required=True)
    p = acts.add_parser("issue", help="a new key; its secret printed once")
    p.add_argument("operator")
    p.add_argument("key_id")
    p = acts.add_parser(
        "rotate", help="a new key; the old one verifies for --overlap-s more seconds"
    )
    p.add_argument("operator")
    p.add_argument("old_key_id")
    p.add_argument("new_key_id")
    p.add_argument(
        "--overlap-s",
        type=int,
        help="seconds the old key still verifies (default: "
        "TANPUHUI_GOV_USERS_KEY_ROTATION_OVERLAP_S)",
    )
    p = acts.add_parser("revoke", help="revoke a key at once")
    p.add_argument("operator")
    p.add_argument("key_id")

    p = groups.add_parser(
        "districts",
        help="import districts from GeoJSON (all or none)",
        description="Insert or replace the districts of a GeoJSON FeatureCollection (code, "
        "name, parent per feature), all or none; prints each district and whether it replaced "
        "one.",
    )
    p.add_argument("file", type=Path, help="the .geojson file")
    p = groups.add_parser(
        "gtfs",
        help="validate and replace a GTFS feed (zip or directory)",
        description="Validate a GTFS static feed and replace the feed of that id with it in one "
        "transaction: errors (file and line) refuse it whole and the previous feed stays.",
    )
    p.add_argument("feed", help="the feed's id, e.g. shenzhen-metro")
    p.add_argument("path", help="the GTFS .zip or directory")
    p.add_argument("--distance-unit", choices=["m", "km", "mi", "ft"])

    m = groups.add_parser(
        "methodology", help="methodologies: list, show, draft, edit, preview, publish"
    )
    acts = m.add_subparsers(dest="action", required=True)
    acts.add_parser("list", help="the published versions")
    p = acts.add_parser("show", help="one published version with its factors and caps")
    p.add_argument("code")
    p.add_argument("version", type=int)
    acts.add_parser("drafts", help="the drafts, published ones included")
    p = acts.add_parser("draft", help="draft a new version from a JSON file (see docs)")
    p.add_argument("file", type=Path)
    p = acts.add_parser("edit", help="replace an unpublished draft from a JSON file")
    p.add_argument("draft_id", type=_user_id)
    p.add_argument("file", type=Path)
    p = acts.add_parser("discard", help="discard an unpublished draft")
    p.add_argument("draft_id", type=_user_id)
    p = acts.add_parser("preview", help="the draft's effect on the last N days (read-only)")
    p.add_argument("draft_id", type=_user_id)
    p.add_argument("--days", type=int, default=30)
    p = acts.add_parser("publish", help="publish the draft as the next version")
    p.add_argument("draft_id", type=_user_id)
    p.add_argument("--effective-from", type=_when, help="ISO 8601 with offset (default: draft's)")

    mer = groups.add_parser("merchant", help="merchants: approve, key")
    acts = mer.add_subparsers(dest="action", required=True)
    p = acts.add_parser("approve", help="approve a merchant (its points account opened)")
    p.add_argument("--id", required=True)
    p.add_argument("--name", required=True)
    p.add_argument("--contact", required=True, help="settlement contact")
    p.add_argument("--webhook-url")
    p = acts.add_parser("key", help="issue a merchant API key (printed once)")
    p.add_argument("merchant")
    p.add_argument("key_id")

    p = groups.add_parser("project", help="approve a public-welfare project")
    p.add_argument("--title", required=True)
    p.add_argument("--beneficiary", required=True)
    p.add_argument("--target-asset", choices=["POINT", "CO2E_G"], required=True)
    p.add_argument("--target", type=int, required=True, help="points, or grams")
    p.add_argument("--starts", required=True, help="ISO 8601 with offset")
    p.add_argument("--ends", required=True, help="ISO 8601 with offset")
    p.add_argument("--description", default="")

    ent = groups.add_parser("enterprise", help="enterprises: register, import")
    acts = ent.add_subparsers(dest="action", required=True)
    p = acts.add_parser("register", help="register one enterprise")
    p.add_argument("--credit-code", required=True, help="unified social credit code")
    p.add_argument("--name", required=True)
    p.add_argument("--industry", required=True, help="GB/T 4754-2017, e.g. C2611")
    p.add_argument("--district", required=True, help="an imported district's code")
    p.add_argument("--size-class", choices=["above", "below"], required=True)
    p = acts.add_parser(
        "import",
        help="register the enterprises of a CSV (all or none)",
        description="Columns: credit_code, name, industry, district, size_class.",
    )
    p.add_argument("file", type=Path)
