"""Builds the SDK clients once per process and wires them into the core services."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from azure.data.tables.aio import TableServiceClient
from azure.servicebus.aio import ServiceBusClient

from shared import metrics
from shared.audit import AuditLog
from shared.auth.authenticator import Authenticator
from shared.auth.key_table import ApiKeyTable
from shared.backpressure import Backpressure, QueueDepths
from shared.callbacks.notify import CallbackStore
from shared.callbacks.policy import CallbackPolicy
from shared.callbacks.queue import CallbackQueue
from shared.callbacks.replay import CallbackReplay
from shared.config import AuthSettings, ServiceBusSettings, Settings, StorageSettings
from shared.dead_letters import DeadLetterTools
from shared.health import HealthChecker
from shared.intake import IntakeSwitches
from shared.payloads import PayloadStore
from shared.processing import Processor
from shared.queue import JobQueue
from shared.rate_limits import RateLimiter
from shared.submission import JobService
from shared.sweeper import StuckJobSweeper

if TYPE_CHECKING:  # imported on first use (build_services): slow to import, not needed before
    import httpx
    from azure.storage.blob.aio import BlobServiceClient

    from shared.ai.providers import AIProviders
    from shared.callbacks.delivery import CallbackDelivery

log = logging.getLogger(__name__)


@dataclass
class Services:
    settings: Settings
    store: CallbackStore
    queue: JobQueue
    jobs: JobService
    processor: Processor
    dead_letters: DeadLetterTools
    sweeper: StuckJobSweeper
    health: HealthChecker
    service_bus: ServiceBusClient
    ai: AIProviders
    audit: AuditLog
    api_keys: ApiKeyTable
    queue_depths: QueueDepths
    http: httpx.AsyncClient
    intake: IntakeSwitches
    callbacks: CallbackDelivery
    _closers: list[Callable[[], Awaitable[Any]]] = field(default_factory=list)

    async def aclose(self) -> None:
        await self.queue.close()
        for close in reversed(self._closers):
            try:
                await close()
            except Exception:
                log.debug("error while closing a client", exc_info=True)


def _credential(client_id: str | None) -> Any:
    from azure.identity.aio import DefaultAzureCredential

    return DefaultAzureCredential(managed_identity_client_id=client_id)


def _storage_transport() -> Any:
    """An aiohttp transport that does not trust the environment: with it, aiohttp looks up
    `.netrc` and the proxy variables (in a thread) for every Storage request. Storage here
    is reached directly; HTTP(S)_PROXY is not honoured for it."""
    from azure.core.pipeline.transport import AioHttpTransport

    return AioHttpTransport(use_env_settings=False)


def _storage_clients(settings: StorageSettings) -> tuple[TableServiceClient, BlobServiceClient]:
    from azure.storage.blob.aio import BlobServiceClient

    if settings.connection_string:
        return (
            TableServiceClient.from_connection_string(
                settings.connection_string, transport=_storage_transport()
            ),
            BlobServiceClient.from_connection_string(
                settings.connection_string, transport=_storage_transport()
            ),
        )
    assert settings.table_service_uri
    assert settings.blob_service_uri
    credential = _credential(settings.client_id)
    return (
        TableServiceClient(
            endpoint=settings.table_service_uri,
            credential=credential,
            transport=_storage_transport(),
        ),
        BlobServiceClient(
            account_url=settings.blob_service_uri,
            credential=credential,
            transport=_storage_transport(),
        ),
    )


def service_bus_admin_client(settings: ServiceBusSettings) -> Any:
    """The management API client (queue runtime properties). Imported here, on first use:
    it pulls in a stack of its own that the hot path never needs."""
    from azure.servicebus.aio.management import ServiceBusAdministrationClient

    connection = settings.admin_connection_string or settings.connection_string
    if connection:
        options: dict[str, Any] = {}
        if "usedevelopmentemulator=true" in connection.replace(" ", "").lower():
            # The SDK speaks TLS to the management API even to an emulator (azure-servicebus
            # 7.15 ignores its own use_tls); the local emulator's certificate is self-made.
            options["connection_verify"] = False
        return ServiceBusAdministrationClient.from_connection_string(connection, **options)
    assert settings.fully_qualified_namespace
    return ServiceBusAdministrationClient(
        settings.fully_qualified_namespace, credential=_credential(settings.client_id)
    )


def service_bus_client(settings: ServiceBusSettings) -> ServiceBusClient:
    if settings.connection_string:
        return ServiceBusClient.from_connection_string(settings.connection_string)
    assert settings.fully_qualified_namespace
    return ServiceBusClient(
        settings.fully_qualified_namespace, credential=_credential(settings.client_id)
    )


async def build_services(settings: Settings, *, ensure_resources: bool = True) -> Services:
    import httpx

    from shared.ai.providers import build_ai
    from shared.callbacks.delivery import CallbackDelivery
    from shared.handlers import default_handlers

    tables, blobs = _storage_clients(settings.storage)
    service_bus = service_bus_client(settings.service_bus)
    payloads = PayloadStore(blobs.get_container_client(settings.payload_container))
    callback_queue = CallbackQueue(service_bus, settings.callbacks.queue)
    store = CallbackStore(
        tables.get_table_client(settings.jobs_table),
        payloads,
        callback_queue,
    )
    policy = CallbackPolicy(settings.callbacks.allowed_hosts)
    # Callbacks go only where the policy says: no proxies from the environment, no redirects.
    callback_http = httpx.AsyncClient(trust_env=False, follow_redirects=False)
    intake = IntakeSwitches(
        tables.get_table_client(settings.switches_table), settings.intake_cache_seconds
    )
    queue = JobQueue(service_bus, settings.queue_names, settings.high_queue_names)
    audit = AuditLog(tables.get_table_client(settings.audit_table))
    http = httpx.AsyncClient(timeout=httpx.Timeout(30.0, connect=5.0))
    ai = build_ai(settings.ai, tables)
    api_keys = ApiKeyTable(
        tables.get_table_client(settings.auth.api_keys_table),
        cache_seconds=settings.auth.api_key_cache_seconds,
    )
    rate_limiter = RateLimiter(tables.get_table_client(settings.limits.rate_limits_table))
    depths = QueueDepths(
        service_bus_admin_client(settings.service_bus),
        settings.queue_names,
        settings.limits.queue_depth_cache_seconds,
        settings.high_queue_names,
    )
    metrics.observe_queue_depths(depths.latest)
    services = Services(
        settings=settings,
        store=store,
        queue=queue,
        jobs=JobService(
            store,
            queue,
            settings.sync_targets,
            budget_seconds=settings.submit_budget_seconds,
            rate_limiter=rate_limiter,
            submits_per_minute=settings.limits.submits_per_minute,
            backpressure=Backpressure(depths, settings.limits.queue_depth_limit),
            intake=intake,
            callbacks=policy,
            max_delay_seconds=settings.max_delay_seconds,
        ),
        processor=Processor(
            store,
            default_handlers(settings.sync_targets, http, ai, payloads),
            settings.retry,
            settings.job_timeouts,
            running_mark_delay=settings.running_mark_delay_seconds,
        ),
        dead_letters=DeadLetterTools(
            service_bus, store, queue, audit, CallbackReplay(store, callback_queue)
        ),
        sweeper=StuckJobSweeper(
            store,
            queue,
            settings.job_timeouts,
            settings.retry,
            settings.stuck_grace_seconds,
            queued_grace_seconds=settings.queued_grace_seconds,
        ),
        health=HealthChecker(store, service_bus, next(iter(settings.queue_names.values())), depths),
        service_bus=service_bus,
        ai=ai,
        audit=audit,
        api_keys=api_keys,
        queue_depths=depths,
        http=http,
        intake=intake,
        callbacks=CallbackDelivery(
            store, callback_queue, policy, settings.callbacks, callback_http
        ),
        _closers=[
            callback_queue.close,
            callback_http.aclose,
            tables.close,
            blobs.close,
            service_bus.close,
            http.aclose,
            ai.close,
            depths.close,
        ],
    )
    if ensure_resources:
        try:
            await store.ensure_tables()
            await audit.ensure_table()
            await api_keys.ensure_table()
            await rate_limiter.ensure_table()
            await intake.ensure_table()
            await ai.ensure_resources()
        except BaseException:
            await services.aclose()
            raise
    return services


class ServicesProvider:
    """Creates Services on first use (inside the running event loop) and shares them."""

    def __init__(self, factory: Callable[[], Awaitable[Services]]) -> None:
        self._factory = factory
        self._services: Services | None = None
        self._lock = asyncio.Lock()

    async def get(self) -> Services:
        if self._services is None:
            async with self._lock:
                if self._services is None:
                    self._services = await self._factory()
        return self._services

    async def aclose(self) -> None:
        if self._services is not None:
            services, self._services = self._services, None
            await services.aclose()


def build_authenticator(settings: AuthSettings, provider: ServicesProvider) -> Authenticator:
    """API keys from settings need no I/O; the key table and the token issuer's keys are
    reached through the shared clients, built on first use."""

    async def key_table() -> ApiKeyTable:
        return (await provider.get()).api_keys

    async def fetch_json(url: str) -> Any:
        response = await (await provider.get()).http.get(url, timeout=5.0)
        response.raise_for_status()
        return response.json()

    tokens = None
    if settings.accepts_tokens:
        from shared.auth.tokens import TokenValidator  # PyJWT, imported only when needed

        tokens = TokenValidator(
            issuers=settings.jwt_issuers,
            audiences=settings.jwt_audiences,
            admin_role=settings.admin_role,
            jwks_url=settings.jwt_jwks_url,
            fetch_json=fetch_json,
        )
    return Authenticator(
        enabled=settings.enabled, keys=settings.api_keys, key_table=key_table, tokens=tokens
    )
