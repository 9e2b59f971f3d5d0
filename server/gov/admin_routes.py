"""The programme's administration API (``/api/gov/v1/admin/...``, GOV_ADMIN only): government
users, the audit log, operators and their signing keys, districts, GTFS feeds, methodologies
(draft, preview, publish), merchants and donation projects (approve), enterprises (register,
import). Thin routes: each calls one function of ``reporting.admin`` (or ``reporting.users``),
which makes the change through the owning domain and writes the audit entry in the same
transaction (the ``tx`` dependency: committed when the handler returns, rolled back when it
raises). Secrets (TOTP, signing keys, webhooks) are answered once and never stored in clear.
"""

from __future__ import annotations

import tempfile
import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
from litestar import Controller, Request, Response, Router, delete, get, patch, post, put
from litestar.di import NamedDependency
from litestar.handlers import HTTPRouteHandler
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter
from msgspec import Meta, Struct

from behaviours.errors import BodyTooLarge
from behaviours.service import OperatorView, SigningKeyView
from enterprises.schemas import EnterpriseIn, Imported, Registered
from kit.db import Tx, transaction
from kit.errors import InvalidInput
from reporting import admin, audit, users
from reporting.admin import (
    DistrictsImported,
    Draft,
    DraftIn,
    GtfsImported,
    IssuedKey,
    OperatorChange,
    OperatorDetail,
    OperatorIn,
    Preview,
    Published,
)
from reporting.audit import AuditEntry
from rewards.donation_schemas import Project, ProjectInput
from rewards.schemas import MerchantRegistration, RegisteredMerchant
from rewards.settings import config_of
from server.gov.errors import document
from server.gov.guards import GOV_ADMIN, GovCaller, provide_gov_caller
from server.gov.schemas import GovUserChange, GovUserCreated, GovUserIn, GovUserView, user_view
from server.keyed import IdempotencyKey, once
from server.settings import Settings
from server.wire import ACCEPTS

PREFIX = "/api/gov/v1/admin"

KeyId = Annotated[str, Meta(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$", examples=["k2026"])]
MerchantKeyId = Annotated[str, Meta(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
FeedId = Annotated[str, Meta(pattern=r"^[a-z0-9][a-z0-9_.-]{1,62}$")]
OperatorId = Annotated[str, Meta(pattern=r"^[a-z0-9][a-z0-9_.-]{1,62}$")]
Code = Annotated[str, Meta(pattern=r"^[a-z0-9][a-z0-9-]{1,62}$")]
GEOJSON_TYPES = ("application/geo+json", "application/json")
ZIP_TYPES = ("application/zip", "application/x-zip-compressed", "application/octet-stream")
CSV_TYPES = ("text/csv",)


async def _spool(request: Request[Any, Any, Any], limit: int) -> Any:
    """The body in a temporary file (bounded memory), refused past ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared and declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(f"The upload is {declared} bytes; the limit is {limit} bytes.")
    out = tempfile.TemporaryFile()  # noqa: SIM115 (the caller closes it)
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise BodyTooLarge(f"The upload exceeds the limit of {limit} bytes.")
            out.write(chunk)
    except BaseException:
        out.close()
        raise
    out.seek(0)
    return out


class _Admin(Controller):
    guards = [GOV_ADMIN]  # noqa: RUF012 (Litestar's class attribute)
    dependencies = {"gov_caller": provide_gov_caller}  # noqa: RUF012
    security = [{"BearerToken": []}]  # noqa: RUF012


# --- government users and the audit log --------------------------------------------------------


class UsersController(_Admin):
    path = "/users"
    tags = ["gov admin: users"]  # noqa: RUF012

    @get("", summary="政府用户 · Government users")
    async def list_users(self, pool: NamedDependency[Any]) -> list[GovUserView]:
        async with pool.acquire() as conn:
            return [user_view(u) for u in await users.users(conn)]

    @post(
        "",
        status_code=201,
        summary="新增政府用户（口令密钥只显示一次） · Add a government user (TOTP secret once)",
    )
    async def add_user(
        self,
        gov_caller: NamedDependency[GovCaller],
        tx: NamedDependency[Tx],
        settings: NamedDependency[Settings],
        data: JSONBody[GovUserIn],
    ) -> GovUserCreated:
        made = await users.add_user(
            tx,
            settings.gov_users,
            settings.privacy,
            login=data.login,
            display_name=data.display_name,
            role=data.role,
            password=data.password,
            actor=gov_caller.actor,
        )
        return GovUserCreated(
            user=user_view(made.user), totp_uri=made.totp_uri, totp_secret=made.totp_secret
        )

    @patch(
        "/{user_id:uuid}",
        summary="停用/启用或改变角色（即刻生效） · Disable, enable or change the role (at once)",
    )
    async def change_user(
        self,
        gov_caller: NamedDependency[GovCaller],
        tx: NamedDependency[Tx],
        user_id: FromPath[uuid.UUID],
        data: JSONBody[GovUserChange],
    ) -> GovUserView:
        found = None
        if data.role is not None:
            found = await users.set_role(tx, user_id, data.role, actor=gov_caller.actor)
        if data.disabled is not None:
            found = await users.set_disabled(tx, user_id, data.disabled, actor=gov_caller.actor)
        if found is None:
            found = await users.user(tx.conn, user_id)
        return user_view(found)


class AuditController(_Admin):
    path = "/audit"
    tags = ["gov admin: audit"]  # noqa: RUF012

    @get("", summary="审计日志（新的在前） · The audit log, newest first")
    async def entries(
        self,
        pool: NamedDependency[Any],
        limit: Annotated[int, QueryParameter(ge=1, le=audit.PAGE_MAX)] = 100,
        before_id: Annotated[int | None, QueryParameter(ge=1, le=2**62)] = None,
        actor: Annotated[str | None, QueryParameter(max_length=80, pattern=r"^[!-~]+$")] = None,
        action: Annotated[
            str | None, QueryParameter(max_length=64, pattern=r"^[a-z0-9_.-]+$")
        ] = None,
        target: Annotated[str | None, QueryParameter(max_length=200, pattern=r"^[^\x00]+$")] = None,
        since: FromQuery[datetime | None] = None,
    ) -> list[AuditEntry]:
        async with pool.acquire() as conn:
            return await audit.entries(
                conn,
                limit=limit,
                before_id=before_id,
                actor=actor,
                action=action,
                target=target,
                since=since,
            )


# --- operators and signing keys ----------------------------------------------------------------


class KeyIn(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    key_id: KeyId


class RotateIn(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    new_key_id: KeyId
    overlap_s: Annotated[int, Meta(ge=0, le=admin.MAX_OVERLAP_S)] | None = None


class SuspendIn(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    suspended: bool


class OperatorsController(_Admin):
    path = "/operators"
    tags = ["gov admin: operators"]  # noqa: RUF012

    @get("", summary="运营方 · Operators (suspended ones included)")
    async def list_operators(self, pool: NamedDependency[Any]) -> list[OperatorView]:
        async with pool.acquire() as conn:
            return await admin.operators(conn)

    @post("", status_code=201, summary="登记运营方 · Register an operator")
    async def register(
        self,
        request: Request[Any, Any, Any],
        gov_caller: NamedDependency[GovCaller],
        tx: NamedDependency[Tx],
        settings: NamedDependency[Settings],
        data: JSONBody[OperatorIn],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[OperatorView]:
        async def run() -> OperatorView:
            return await admin.register_operator(
                tx, data, region_code=settings.region_code, actor=gov_caller.actor
            )

        return await once(
            request, tx, gov_caller.idempotency_scope, idempotency_key, data, run, OperatorView
        )

    @get("/{operator_id:str}", summary="运营方及其密钥 · An operator and its keys")
    async def detail(
        self, pool: NamedDependency[Any], operator_id: FromPath[OperatorId]
    ) -> OperatorDetail:
        async with pool.acquire() as conn:
            return await admin.operator(conn, operator_id)

    @patch(
        "/{operator_id:str}",
        summary="修改名称、类型、GTFS 或报送范围 · Change name, kind, GTFS feed or scopes",
    )
    async def change(
        self,
        gov_caller: NamedDependency[GovCaller],
        tx: NamedDependency[Tx],
        operator_id: FromPath[OperatorId],
        data: JSONBody[OperatorChange],
    ) -> OperatorView:
        return await admin.change_operator(tx, operator_id, data, actor=gov_caller.actor)

    @put(
        "/{operator_id:str}/suspension",
        summary="暂停或恢复运营方（即刻生效） · Suspend or resume an operator (at once)",
    )
    async def suspend(
        self,
        gov_caller: NamedDependency[GovCaller],
        tx: NamedDependency[Tx],
        operator_id: FromPath[OperatorId],
        data: JSONBody[SuspendIn],
    ) -> OperatorView:
        return await admin.suspend_operator(tx, operator_id, data.suspended, actor=gov_caller.actor)

    @post(
        "/{operator_id:str}/keys",
        status_code=201,
        summary="签发签名密钥（密钥只显示一次） · Issue a signing key (secret shown once)",
    )
    async def issue_key(
        self,
        gov_caller: NamedDependency[GovCaller],
        tx: NamedDependency[Tx],
        settings: NamedDependency[Settings],
        operator_id: FromPath[OperatorId],
        data: JSONBody[KeyIn],
    ) -> IssuedKey:
        return await admin.issue_key(
            tx, settings.privacy, operator_id, data.key_id, actor=gov_caller.actor
        )

    @post(
        "/{operator_id:str}/keys/{key_id:str}/rotate",
        status_code=201,
        summary=(
            "轮换密钥：新密钥即刻生效，旧密钥在重叠期内仍有效 · "
            "Rotate: the new key at once, the old one valid for the overlap"
        ),
    )
    async def rotate_key(
        self,
        gov_caller: NamedDependency[GovCaller],
        tx: NamedDependency[Tx],
        settings: NamedDependency[Settings],
        operator_id: FromPath[OperatorId],
        key_id: FromPath[KeyId],
        data: JSONBody[RotateIn],
    ) -> IssuedKey:
        overlap = data.overlap_s
        return await admin.rotate_key(
            tx,
            settings.privacy,
            operator_id,
            key_id,
            data.new_key_id,
            overlap_s=settings.gov_users.key_rotation_overlap_s if overlap is None else overlap,
            actor=gov_caller.actor,
        )

    @post(
        "/{operator_id:str}/keys/{key_id:str}/revoke",
        status_code=200,
        summary="吊销密钥（即刻生效） · Revoke a key (at once)",
    )
    async def revoke_key(
        self,
        gov_caller: NamedDependency[GovCaller],
        tx: NamedDependency[Tx],
        operator_id: FromPath[OperatorId],
        key_id: FromPath[KeyId],
    ) -> SigningKeyView:
        return await admin.revoke_key(tx, operator_id, key_id, actor=gov_caller.actor)


# --- districts and GTFS ------------------------------------------------------------------------


class ReferenceController(_Admin):
    path = ""
    tags = ["gov admin: reference data"]  # noqa: RUF012

    @post(
        "/districts",
        status_code=200,
        summary="上传区县边界（GeoJSON，全部或全不） · Upload districts (GeoJSON, all or none)",
        request_max_body_size=None,
        opt={ACCEPTS: GEOJSON_TYPES},
    )
    async def districts(
        self,
        request: Request[Any, Any, Any],
        gov_caller: NamedDependency[GovCaller],
        pool: NamedDependency[Any],
        settings: NamedDependency[Settings],
    ) -> DistrictsImported:
        # The upload arrives before a pooled connection is taken (no transaction held open
        # while a client sends slowly).
        with await _spool(request, settings.gov_users.admin_upload_max_bytes) as f:
            raw = f.read()
        async with transaction(pool) as tx:
            return await admin.import_districts(tx, raw, actor=gov_caller.actor)

    @put(
        "/gtfs/{feed_id:str}",
        status_code=200,
        summary=(
            "上传 GTFS zip：校验后整体替换 · Upload a GTFS zip: validated, replaced atomically"
        ),
        request_max_body_size=None,
        opt={ACCEPTS: ZIP_TYPES},
    )
    async def gtfs(
        self,
        request: Request[Any, Any, Any],
        gov_caller: NamedDependency[GovCaller],
        pool: NamedDependency[Any],
        settings: NamedDependency[Settings],
        feed_id: FromPath[FeedId],
        distance_unit: Annotated[
            Literal["m", "km", "mi", "ft"] | None, QueryParameter(name="distance_unit")
        ] = None,
    ) -> GtfsImported:
        with await _spool(request, settings.gov_users.admin_upload_max_bytes) as f:
            async with transaction(pool) as tx:
                return await admin.import_gtfs_bytes(
                    tx, feed_id, f, distance_unit=distance_unit, actor=gov_caller.actor
                )


# --- methodologies -----------------------------------------------------------------------------


class PublishIn(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    effective_from: datetime | None = None


class MethodologiesController(_Admin):
    path = ""
    tags = ["gov admin: methodologies"]  # noqa: RUF012

    @get("/methodologies", summary="已发布的方法学版本 · Published methodology versions")
    async def published(self, pool: NamedDependency[Any]) -> list[dict[str, Any]]:
        async with pool.acquire() as conn:
            return await admin.published_methodologies(conn)

    @get(
        "/methodologies/{code:str}/{version:int}",
        summary="一个已发布版本（因子与上限） · One published version (factors, caps)",
    )
    async def published_version(
        self,
        pool: NamedDependency[Any],
        code: FromPath[Code],
        version: FromPath[int],
    ) -> dict[str, Any]:
        async with pool.acquire() as conn:
            return await admin.published_methodology(conn, code, version)

    @get("/methodology-drafts", summary="方法学草稿 · Methodology drafts")
    async def drafts(self, pool: NamedDependency[Any]) -> list[Draft]:
        async with pool.acquire() as conn:
            return await admin.drafts(conn)

    @post(
        "/methodology-drafts",
        status_code=201,
        summary="起草新版本（发布前不生效） · Draft a new version (in force once published)",
    )
    async def create_draft(
        self,
        request: Request[Any, Any, Any],
        gov_caller: NamedDependency[GovCaller],
        tx: NamedDependency[Tx],
        data: JSONBody[DraftIn],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[Draft]:
        async def run() -> Draft:
            return await admin.create_draft(tx, data, actor=gov_caller.actor)

        return await once(
            request, tx, gov_caller.idempotency_scope, idempotency_key, data, run, Draft
        )

    @get("/methodology-drafts/{draft_id:uuid}", summary="一份草稿 · A draft")
    async def draft(self, pool: NamedDependency[Any], draft_id: FromPath[uuid.UUID]) -> Draft:
        async with pool.acquire() as conn:
            return await admin.draft(conn, draft_id)

    @put(
        "/methodology-drafts/{draft_id:uuid}",
        summary="修改草稿（已发布的不可修改） · Edit a draft (a published one never changes)",
    )
    async def edit_draft(
        self,
        gov_caller: NamedDependency[GovCaller],
        tx: NamedDependency[Tx],
        draft_id: FromPath[uuid.UUID],
        data: JSONBody[DraftIn],
    ) -> Draft:
        return await admin.update_draft(tx, draft_id, data, actor=gov_caller.actor)

    @delete("/methodology-drafts/{draft_id:uuid}", summary="放弃草稿 · Discard a draft")
    async def discard_draft(
        self,
        gov_caller: NamedDependency[GovCaller],
        tx: NamedDependency[Tx],
        draft_id: FromPath[uuid.UUID],
    ) -> None:
        await admin.delete_draft(tx, draft_id, actor=gov_caller.actor)

    @get(
        "/methodology-drafts/{draft_id:uuid}/preview",
        summary=(
            "预览：最近 N 天的事件按方式与区县的变化（只读） · "
            "Preview: the effect on the last N days by mode and district (read-only)"
        ),
    )
    async def preview(
        self,
        pool: NamedDependency[Any],
        draft_id: FromPath[uuid.UUID],
        days: Annotated[int, QueryParameter(ge=1, le=admin.PREVIEW_DAYS_MAX)] = 30,
    ) -> Preview:
        async with pool.acquire() as conn:
            return await admin.preview(conn, draft_id, days=days)

    @post(
        "/methodology-drafts/{draft_id:uuid}/publish",
        status_code=201,
        summary="发布为下一版本，自生效日起适用 · Publish as the next version, from its date",
    )
    async def publish(
        self,
        gov_caller: NamedDependency[GovCaller],
        tx: NamedDependency[Tx],
        draft_id: FromPath[uuid.UUID],
        data: JSONBody[PublishIn],
    ) -> Published:
        return await admin.publish(
            tx, draft_id, effective_from=data.effective_from, actor=gov_caller.actor
        )


# --- merchants, projects, enterprises ----------------------------------------------------------


class MerchantKeyIn(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    key_id: MerchantKeyId


class MerchantKey(Struct, frozen=True, kw_only=True):
    merchant_id: str
    key_id: str
    secret: str  # shown once


class ProgrammeController(_Admin):
    path = ""
    tags = ["gov admin: merchants, projects, enterprises"]  # noqa: RUF012

    @post(
        "/merchants",
        status_code=201,
        summary="批准商户（开立积分账户） · Approve a merchant (its points account opened)",
    )
    async def approve_merchant(
        self,
        gov_caller: NamedDependency[GovCaller],
        tx: NamedDependency[Tx],
        settings: NamedDependency[Settings],
        data: JSONBody[MerchantRegistration],
    ) -> RegisteredMerchant:
        return await admin.approve_merchant(tx, config_of(settings), data, actor=gov_caller.actor)

    @post(
        "/merchants/{merchant_id:str}/keys",
        status_code=201,
        summary="为商户签发密钥（只显示一次） · Issue a merchant API key (shown once)",
    )
    async def merchant_key(
        self,
        gov_caller: NamedDependency[GovCaller],
        tx: NamedDependency[Tx],
        settings: NamedDependency[Settings],
        merchant_id: FromPath[OperatorId],
        data: JSONBody[MerchantKeyIn],
    ) -> MerchantKey:
        done = await admin.issue_merchant_key(
            tx, config_of(settings), merchant_id, data.key_id, actor=gov_caller.actor
        )
        return msgspec.convert(done, MerchantKey)

    @post("/projects", status_code=201, summary="批准公益项目 · Approve a public-welfare project")
    async def approve_project(
        self,
        request: Request[Any, Any, Any],
        gov_caller: NamedDependency[GovCaller],
        tx: NamedDependency[Tx],
        data: JSONBody[ProjectInput],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[Project]:
        async def run() -> Project:
            return await admin.approve_project(tx, data, actor=gov_caller.actor)

        return await once(
            request, tx, gov_caller.idempotency_scope, idempotency_key, data, run, Project
        )

    @post("/enterprises", status_code=201, summary="登记企业 · Register an enterprise")
    async def register_enterprise(
        self,
        request: Request[Any, Any, Any],
        gov_caller: NamedDependency[GovCaller],
        tx: NamedDependency[Tx],
        data: JSONBody[EnterpriseIn],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[Registered]:
        async def run() -> Registered:
            return await admin.register_enterprise(tx, data, actor=gov_caller.actor)

        return await once(
            request, tx, gov_caller.idempotency_scope, idempotency_key, data, run, Registered
        )

    @post(
        "/enterprises/import",
        status_code=200,
        summary="从 CSV 批量登记企业（全部或全不） · Import enterprises from CSV (all or none)",
        opt={ACCEPTS: CSV_TYPES},
    )
    async def import_enterprises(
        self,
        request: Request[Any, Any, Any],
        gov_caller: NamedDependency[GovCaller],
        pool: NamedDependency[Any],
    ) -> Imported:
        raw = await request.body()  # (bounded by the app's body limit, before a connection)
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise InvalidInput("The CSV is not UTF-8.", code="validation_failed") from None
        async with transaction(pool) as tx:
            return await admin.import_enterprises(tx, text, actor=gov_caller.actor)


_UPLOAD = ("payload_too_large", "unsupported_media_type", "bad_request")
_KEYED = ("idempotency_key_reused",)
# Each operation's own codes in the served OpenAPI, beside the guard's and validation's.
document(
    [
        h
        for c in (
            UsersController,
            AuditController,
            OperatorsController,
            ReferenceController,
            MethodologiesController,
            ProgrammeController,
        )
        for h in vars(c).values()
        if isinstance(h, HTTPRouteHandler)
    ],
    {
        "add_user": ("gov_login_taken", *_KEYED),
        "change_user": ("gov_user_not_found", "gov_last_admin"),
        "register": ("operator_exists", "scope_not_offered", *_KEYED),
        "detail": ("unknown_operator",),
        "change": ("unknown_operator", "scope_not_offered"),
        "suspend": ("unknown_operator",),
        "issue_key": ("unknown_operator", "signing_key_exists"),
        "rotate_key": ("unknown_operator", "signing_key_not_found", "signing_key_exists"),
        "revoke_key": ("unknown_operator", "signing_key_not_found"),
        "districts": ("districts_invalid", *_UPLOAD),
        "gtfs": ("gtfs_invalid", *_UPLOAD),
        "published_version": ("methodology_not_found",),
        "create_draft": ("methodology_not_found", *_KEYED),
        "draft": ("methodology_draft_not_found",),
        "edit_draft": ("methodology_draft_not_found", "methodology_published"),
        "discard_draft": ("methodology_draft_not_found", "methodology_published"),
        "preview": ("methodology_draft_not_found",),
        "publish": ("methodology_draft_not_found", "methodology_published"),
        "approve_merchant": ("merchant_exists",),
        "merchant_key": ("merchant_not_found", "merchant_key_exists"),
        "approve_project": _KEYED,
        "register_enterprise": ("credit_code_taken", *_KEYED),
        "import_enterprises": ("credit_code_taken", *_UPLOAD),
    },
)

gov_admin_router = Router(
    path=PREFIX,
    route_handlers=[
        UsersController,
        AuditController,
        OperatorsController,
        ReferenceController,
        MethodologiesController,
        ProgrammeController,
    ],
)
