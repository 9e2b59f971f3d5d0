"""The composition root: ``create_app(settings)`` wires stores, auth, errors and every surface.

Nothing is connected at import time; the lifespan opens the asyncpg pool and the Redis client
and closes them on shutdown.
"""

from __future__ import annotations

import gc
import re
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any, cast

from litestar import Litestar, Router
from litestar.config.compression import CompressionConfig
from litestar.datastructures import State
from litestar.di import Provide
from litestar.enums import ScopeType
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme
from litestar.types import (
    LifeSpanReceive,
    LifeSpanScope,
    LifeSpanSend,
    Message,
    Receive,
    Scope,
    Send,
)

from behaviours.pipeline import IngestPolicy
from kit.auth import JwtKeys
from kit.db import TRANSIENT_ERRORS, create_pool, transaction
from kit.logs import configure_logging, request_id_var
from kit.redis import create_redis
from server.enterprise.routes import enterprise_router
from server.errors import LANGUAGE_STATE, exception_handlers
from server.gov.admin_routes import gov_admin_router
from server.gov.allowances_routes import gov_allowances_router
from server.gov.commuting_routes import gov_commuting_router
from server.gov.dashboard_routes import dashboard_router
from server.gov.offsets_routes import gov_offsets_router
from server.gov.reports_routes import gov_reports_router
from server.gov.session_routes import gov_sessions_router
from server.health import HealthController
from server.merchants.routes import merchants_router
from server.meters.routes import meters_router
from server.mobile.commuting_routes import commuting_router
from server.mobile.donation_routes import donation_router
from server.mobile.rewards_routes import redemption_batcher, rewards_mobile_router
from server.mobile.routes import mobile_router
from server.operators.routes import operators_router
from server.public.offsets_routes import public_offsets_router
from server.public.reports_routes import public_reports_router
from server.public.routes import public_router
from server.settings import Settings
from server.wire import StrictRequest, check_request
from server.worker import create_celery

# Every surface's Router (thin routes under server/<surface>/routes.py): one import line each.
SURFACES: tuple[Router, ...] = (
    mobile_router,
    operators_router,
    public_router,
    meters_router,
    enterprise_router,
    public_reports_router,
    donation_router,
    rewards_mobile_router,
    merchants_router,
    gov_sessions_router,
    gov_admin_router,
    gov_allowances_router,
    gov_reports_router,
    dashboard_router,
    commuting_router,
    gov_commuting_router,
    gov_offsets_router,
    public_offsets_router,
)

_RID_OK = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


class App(Litestar):
    """Litestar, with every HTTP exchange tagged by a request id (the caller's ``X-Request-Id``
    when sane) before routing, so 404s and 405s carry it too, and the logs of the request."""

    async def __call__(
        self,
        scope: Scope | LifeSpanScope,
        receive: Receive | LifeSpanReceive,
        send: Send | LifeSpanSend,
    ) -> None:
        if scope["type"] != ScopeType.HTTP:
            await super().__call__(scope, receive, send)
            return
        http_send = cast(Send, send)
        http_scope = cast(Scope, scope)
        rid = None
        for name, value in http_scope["headers"]:
            if name == b"x-request-id":
                candidate = value.decode("latin-1")
                rid = candidate if _RID_OK.match(candidate) else None
                break
        rid = rid or uuid.uuid4().hex
        state = http_scope.setdefault("state", {})
        state["request_id"] = rid
        token = request_id_var.set(rid)
        header = (b"x-request-id", rid.encode())

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [*message.get("headers", []), header]
                # An answer localised by server.errors.language says its language.
                lang = state.get(LANGUAGE_STATE)
                if isinstance(lang, str):
                    headers.append((b"content-language", lang.encode()))
                message["headers"] = headers
            await http_send(message)

        try:
            await super().__call__(scope, receive, send_with_id)
        finally:
            request_id_var.reset(token)


def _lifespan(settings: Settings) -> Any:
    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        if not settings.database.url or not settings.redis.url:
            raise RuntimeError("create_app needs DATABASE_URL and REDIS_URL (see `tanpuhui dev`)")
        # The Celery app of the tasks this process sends (uploaded files), on the configured
        # broker; SettingsError (no start) when that broker cannot be the one in effect.
        app.state.celery = create_celery(settings)
        app.state.pool = await create_pool(
            settings.database.url,
            min_size=settings.database.pool_min,
            max_size=settings.database.pool_max,
            command_timeout=settings.database.command_timeout_s,
        )
        app.state.redis = create_redis(settings.redis.url, max_connections=settings.redis.pool_max)
        app.state.redemptions = redemption_batcher(app.state.pool, settings)  # micro-batches
        # Everything built so far lives as long as the process: move it out of the collector's
        # sight so full collections stay short (they showed as tail latency under load).
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            await app.state.redemptions.close()
            await app.state.redis.aclose()
            await app.state.pool.close()

    return lifespan


async def provide_tx(state: State) -> AsyncIterator[Any]:
    """The transaction owner: commits when the handler succeeds, rolls back when it raises."""
    async with transaction(state.pool) as tx:
        yield tx


def provide_pool(state: State) -> Any:
    return state.pool


def provide_redis(state: State) -> Any:
    return state.redis


def provide_settings(state: State) -> Settings:
    settings: Settings = state.settings
    return settings


def provide_ingest_policy(state: State) -> IngestPolicy:
    policy: IngestPolicy = state.ingest_policy
    return policy


def provide_jwt(state: State) -> JwtKeys:
    keys: JwtKeys = state.jwt
    return keys


def ingest_policy(settings: Settings) -> IngestPolicy:
    """Behaviours' ingestion policy from the composed settings (its section, the region, the
    points policy; this process's reference cache)."""
    return IngestPolicy.build(
        settings.ingest,
        region_code=settings.region_code,
        points=settings.points,
        timezone=settings.timezone,
    )


def create_app(
    settings: Settings,
    *,
    surfaces: Sequence[Router] = SURFACES,
    extra_handlers: Sequence[Any] = (),
) -> Litestar:
    routers: list[Router | type[Any]] = [HealthController, *extra_handlers, *surfaces]
    return App(
        route_handlers=routers,
        lifespan=[_lifespan(settings)],
        # Built once per app, never per request or batch: keys and the ingestion policy.
        state=State(
            {
                "settings": settings,
                "jwt": JwtKeys.from_settings(settings.auth),
                "ingest_policy": ingest_policy(settings),
            }
        ),
        dependencies={
            "tx": Provide(provide_tx),
            "pool": Provide(provide_pool, sync_to_thread=False),
            "redis": Provide(provide_redis, sync_to_thread=False),
            "settings": Provide(provide_settings, sync_to_thread=False),
            "jwt": Provide(provide_jwt, sync_to_thread=False),
            "ingest_policy": Provide(provide_ingest_policy, sync_to_thread=False),
        },
        exception_handlers=exception_handlers(TRANSIENT_ERRORS),
        # Strict JSON bodies, media types and no NUL in paths, for every surface (server/wire.py).
        request_class=StrictRequest,
        guards=[check_request],
        openapi_config=OpenAPIConfig(
            title="tanpuhui",
            version="1.0.0",
            description="碳普惠开放后端 · Open backend for public carbon-inclusion programmes.",
            path="/schema",
            components=Components(
                security_schemes={
                    "BearerToken": SecurityScheme(
                        type="http", scheme="bearer", bearer_format="JWT"
                    ),
                }
            ),
        ),
        compression_config=CompressionConfig(backend="gzip", minimum_size=4096),
        request_max_body_size=settings.http.max_body_bytes,
        debug=settings.http.debug,
        logging_config=None,
    )


def create_app_from_env() -> Litestar:
    """Factory for ``uvicorn --factory`` (used by `tanpuhui serve` and `tanpuhui dev`)."""
    settings = Settings.from_env()
    configure_logging(settings.log.level)
    return create_app(settings)
