"""One typed Settings object, read from the environment once.

Names follow Azure Functions conventions so the same app reads them in Azure (app settings) and
locally (`local.settings.json` Values). `SettingsTable` (shared/settings_table.py) is the one
list of settings: each field's alias is the setting's name, with its default and the type
that parses it. Every problem is reported at once, naming the setting.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

from pydantic import ValidationError

from shared.auth.api_keys import ApiKeyRecord, record_from_setting
from shared.callbacks.settings import CallbackSettings, callback_settings
from shared.errors import ConfigError
from shared.jobs import JobType
from shared.retry import RetryPolicy
from shared.settings_table import SettingsTable

SERVICE_BUS = "ServiceBusConnection"
SERVICE_BUS_ADMIN = "ServiceBusAdminConnection"
STORAGE = "AzureWebJobsStorage"


def _alias(field_name: str) -> str:
    return str(SettingsTable.model_fields[field_name].alias)


# The setting that names each job type's queue (the Functions triggers bind to `%NAME%`).
QUEUE_NAME_SETTINGS: Mapping[JobType, str] = {t: _alias(f"{t.value}_queue") for t in JobType}
CALLBACKS_QUEUE_SETTING = _alias("callbacks_queue")  # the callback trigger's `%NAME%`
HIGH_QUEUE_NAME_SETTINGS: Mapping[JobType, str] = {
    t: _alias(f"{t.value}_high_queue") for t in JobType
}
TIMEOUT_SETTINGS: Mapping[JobType, str] = {t: _alias(f"{t.value}_timeout_seconds") for t in JobType}


@dataclass(frozen=True)
class ServiceBusSettings:
    """Either a connection string, or a namespace reached with a managed identity."""

    connection_string: str | None = None
    fully_qualified_namespace: str | None = None
    client_id: str | None = None  # a user-assigned identity; None = system-assigned/default
    admin_connection_string: str | None = None  # the management API, when elsewhere


@dataclass(frozen=True)
class StorageSettings:
    """Either a connection string, or service URIs reached with a managed identity."""

    connection_string: str | None = None
    table_service_uri: str | None = None
    blob_service_uri: str | None = None
    client_id: str | None = None


@dataclass(frozen=True)
class AISettings:
    """Which provider runs summarize and embed jobs, and how to reach Azure OpenAI."""

    provider: str  # "local" (offline MiniLM) or "azure_openai"
    endpoint: str | None
    api_version: str
    chat_deployment: str
    chat_model: str
    embedding_deployment: str
    client_id: str | None
    api_key: str | None
    timeout_seconds: float
    max_retries: int
    summary_chunk_tokens: int
    embedding_cache: bool
    embedding_cache_table: str


@dataclass(frozen=True)
class AuthSettings:
    """How callers prove who they are (see shared/auth)."""

    enabled: bool
    api_keys: tuple[ApiKeyRecord, ...] = ()
    api_keys_table: str = "apikeys"
    api_key_cache_seconds: float = 30.0
    jwt_issuers: tuple[str, ...] = ()
    jwt_audiences: tuple[str, ...] = ()
    jwt_jwks_url: str | None = None
    admin_role: str = "Conveyor.Admin"

    @property
    def accepts_tokens(self) -> bool:
        return bool(self.jwt_issuers and self.jwt_audiences)


@dataclass(frozen=True)
class LimitSettings:
    """Rate limits and backpressure on submits."""

    submits_per_minute: int = 10
    rate_limits_table: str = "ratelimits"
    queue_depth_limit: int = 10_000
    queue_depth_cache_seconds: float = 5.0


@dataclass(frozen=True)
class TelemetrySettings:
    connection_string: str | None
    authentication_string: str | None
    live_metrics: bool
    azure_sdk_log_level: str
    worker_context: bool = False  # PYTHON_ENABLE_OPENTELEMETRY
    worker_exporter: bool = False  # PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY


@dataclass(frozen=True)
class Settings:
    service_bus: ServiceBusSettings
    storage: StorageSettings
    queue_names: Mapping[JobType, str]
    high_queue_names: Mapping[JobType, str]
    jobs_table: str
    payload_container: str
    max_request_bytes: int
    sync_targets: Mapping[str, str]
    retry: RetryPolicy
    job_timeouts: Mapping[JobType, float]
    audit_table: str
    stuck_grace_seconds: float
    queued_grace_seconds: float
    submit_budget_seconds: float
    running_mark_delay_seconds: float
    max_delay_seconds: float
    ai: AISettings
    telemetry: TelemetrySettings
    auth: AuthSettings
    limits: LimitSettings
    callbacks: CallbackSettings
    switches_table: str
    intake_cache_seconds: float
    table: SettingsTable = field(repr=False, compare=False)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        return _build(os.environ if env is None else env)


def _build(env: Mapping[str, str]) -> Settings:
    # Blank values count as unset, as the Functions host treats an empty app setting.
    values = {name: value.strip() for name, value in env.items() if value and value.strip()}
    problems: list[str] = []
    try:
        table = SettingsTable.model_validate(values)
    except ValidationError as exc:
        problems += [_describe(error, values) for error in exc.errors()]
        table = SettingsTable.model_validate(_without_bad_values(values, exc))
    service_bus = _service_bus(table, problems)
    storage = _storage(table, problems)
    ai = _ai(table, problems)
    auth = _auth(table, problems)
    callbacks = callback_settings(
        queue=table.callbacks_queue,
        allowed_hosts=table.callback_allowed_hosts,
        signing_secret=table.callback_signing_secret,
        retry=RetryPolicy(
            base_seconds=table.callback_retry_base_seconds,
            max_seconds=table.callback_retry_max_seconds,
            max_attempts=table.callback_max_attempts,
        ),
        timeout_seconds=table.callback_timeout_seconds,
        website_hostname=table.website_hostname,
        problems=problems,
    )
    if problems:
        raise ConfigError(
            "invalid configuration:\n  - "
            + "\n  - ".join(problems)
            + "\nSet these in local.settings.json (Values) locally, or as app settings in "
            "Azure; see local.settings.sample.json."
        )
    timeouts = {
        JobType.SUMMARIZE: table.summarize_timeout_seconds,
        JobType.EMBED: table.embed_timeout_seconds,
        JobType.SYNC: table.sync_timeout_seconds,
    }
    return Settings(
        service_bus=service_bus,
        storage=storage,
        queue_names={
            JobType.SUMMARIZE: table.summarize_queue,
            JobType.EMBED: table.embed_queue,
            JobType.SYNC: table.sync_queue,
        },
        high_queue_names={
            JobType.SUMMARIZE: table.summarize_high_queue,
            JobType.EMBED: table.embed_high_queue,
            JobType.SYNC: table.sync_high_queue,
        },
        jobs_table=table.jobs_table,
        payload_container=table.payload_container,
        max_request_bytes=table.max_request_bytes,
        sync_targets=table.sync_targets,
        retry=RetryPolicy(
            base_seconds=table.retry_base_seconds,
            max_seconds=table.retry_max_seconds,
            max_attempts=table.retry_max_attempts,
        ),
        job_timeouts={t: seconds or table.job_timeout_seconds for t, seconds in timeouts.items()},
        audit_table=table.audit_table,
        stuck_grace_seconds=table.stuck_grace_seconds,
        queued_grace_seconds=table.queued_grace_seconds,
        submit_budget_seconds=table.submit_budget_seconds,
        running_mark_delay_seconds=table.running_mark_delay_seconds,
        max_delay_seconds=table.max_delay_seconds,
        ai=ai,
        telemetry=TelemetrySettings(
            connection_string=table.appinsights_connection_string,
            authentication_string=table.appinsights_authentication_string,
            live_metrics=table.appinsights_live_metrics,
            azure_sdk_log_level=table.azure_sdk_log_level,
            worker_context=table.python_enable_opentelemetry,
            worker_exporter=table.python_appinsights_telemetry,
        ),
        auth=auth,
        limits=LimitSettings(
            submits_per_minute=table.rate_limit_submits_per_minute,
            rate_limits_table=table.rate_limits_table,
            queue_depth_limit=table.queue_depth_limit,
            queue_depth_cache_seconds=table.queue_depth_cache_seconds,
        ),
        callbacks=callbacks,
        switches_table=table.switches_table,
        intake_cache_seconds=table.intake_cache_seconds,
        table=table,
    )


def _describe(error: Any, values: Mapping[str, str]) -> str:
    name = str(error["loc"][0]) if error.get("loc") else "?"
    message = str(error.get("msg", "is invalid")).removeprefix("Value error, ")
    return f"{name}={values.get(name)!r} is not valid: {message}"


def _without_bad_values(values: dict[str, str], exc: ValidationError) -> dict[str, str]:
    bad = {str(error["loc"][0]) for error in exc.errors() if error.get("loc")}
    return {name: value for name, value in values.items() if name not in bad}


def _service_bus(table: SettingsTable, problems: list[str]) -> ServiceBusSettings:
    if table.service_bus_connection:
        if "Endpoint=" not in table.service_bus_connection:
            problems.append(
                f"{SERVICE_BUS} is not a Service Bus connection string "
                "(expected 'Endpoint=sb://...;SharedAccessKeyName=...;SharedAccessKey=...')"
            )
        return ServiceBusSettings(
            connection_string=table.service_bus_connection,
            admin_connection_string=table.service_bus_admin_connection,
        )
    if table.service_bus_namespace:
        return ServiceBusSettings(
            fully_qualified_namespace=table.service_bus_namespace,
            client_id=table.service_bus_client_id,
            admin_connection_string=table.service_bus_admin_connection,
        )
    problems.append(
        f"{SERVICE_BUS} (a connection string) or {SERVICE_BUS}__fullyQualifiedNamespace "
        "(with a managed identity) must be set"
    )
    return ServiceBusSettings()


def _storage(table: SettingsTable, problems: list[str]) -> StorageSettings:
    if table.storage_connection:
        return StorageSettings(connection_string=table.storage_connection)
    table_uri, blob_uri = table.storage_table_uri, table.storage_blob_uri
    if table.storage_account:
        table_uri = table_uri or f"https://{table.storage_account}.table.core.windows.net"
        blob_uri = blob_uri or f"https://{table.storage_account}.blob.core.windows.net"
    if table_uri and blob_uri:
        for name, uri in (("tableServiceUri", table_uri), ("blobServiceUri", blob_uri)):
            if urlparse(uri).scheme not in ("http", "https"):
                problems.append(f"{STORAGE}__{name}={uri!r} is not an http(s) URL")
        return StorageSettings(
            table_service_uri=table_uri,
            blob_service_uri=blob_uri,
            client_id=table.storage_client_id,
        )
    problems.append(
        f"{STORAGE} (a connection string), {STORAGE}__accountName, or both "
        f"{STORAGE}__tableServiceUri and {STORAGE}__blobServiceUri must be set"
    )
    return StorageSettings()


def _ai(table: SettingsTable, problems: list[str]) -> AISettings:
    endpoint = table.azure_openai_endpoint
    provider = table.ai_provider or ("azure_openai" if endpoint else "local")
    if provider == "azure_openai":
        if not endpoint:
            problems.append("AI_PROVIDER=azure_openai needs AZURE_OPENAI_ENDPOINT")
        elif urlparse(endpoint).scheme not in ("http", "https"):
            problems.append(f"AZURE_OPENAI_ENDPOINT={endpoint!r} is not an http(s) URL")
    return AISettings(
        provider=provider,
        endpoint=endpoint,
        api_version=table.azure_openai_api_version,
        chat_deployment=table.azure_openai_chat_deployment,
        chat_model=table.azure_openai_chat_model,
        embedding_deployment=table.azure_openai_embedding_deployment,
        client_id=table.azure_openai_client_id,
        api_key=table.azure_openai_api_key,
        timeout_seconds=table.azure_openai_timeout_seconds,
        max_retries=table.azure_openai_max_retries,
        summary_chunk_tokens=table.summary_chunk_tokens,
        embedding_cache=table.embedding_cache == "on",
        embedding_cache_table=table.embedding_cache_table,
    )


def _auth(table: SettingsTable, problems: list[str]) -> AuthSettings:
    keys: list[ApiKeyRecord] = []
    for entry in table.api_keys:
        try:
            keys.append(record_from_setting(entry))
        except ValueError as exc:
            problems.append(f"API_KEYS is not valid: {exc}")
    ids = [key.id for key in keys]
    if len(set(ids)) != len(ids):
        problems.append("API_KEYS is not valid: two entries have the same id")
    issuers = _comma_list(table.auth_jwt_issuer)
    audiences = _comma_list(table.auth_jwt_audience)
    if bool(issuers) != bool(audiences):
        problems.append("AUTH_JWT_ISSUER and AUTH_JWT_AUDIENCE go together: set both, or neither")
    for url in [*issuers, *([table.auth_jwt_jwks_url] if table.auth_jwt_jwks_url else [])]:
        if urlparse(url).scheme not in ("http", "https"):
            problems.append(f"{url!r} (AUTH_JWT_ISSUER / AUTH_JWT_JWKS_URL) is not an http(s) URL")
    return AuthSettings(
        enabled=table.auth_mode == "on",
        api_keys=tuple(keys),
        api_keys_table=table.api_keys_table,
        api_key_cache_seconds=table.api_key_cache_seconds,
        jwt_issuers=issuers,
        jwt_audiences=audiences,
        jwt_jwks_url=table.auth_jwt_jwks_url,
        admin_role=table.auth_admin_role,
    )


def _comma_list(raw: str | None) -> tuple[str, ...]:
    return tuple(part.strip() for part in (raw or "").split(",") if part.strip())


def setting_names() -> set[str]:
    """Every app setting name the table reads (for docs and infra checks)."""
    return {str(info.alias) for info in SettingsTable.model_fields.values() if info.alias}


def read_local_settings(path: str | os.PathLike[str]) -> dict[str, str]:
    """The `Values` of a local.settings.json (the file `func start` reads), as strings."""
    try:
        with open(path, encoding="utf-8") as handle:
            document = json.load(handle)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}:{exc.lineno}:{exc.colno}: not valid JSON ({exc.msg})") from exc
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc
    values = document.get("Values") if isinstance(document, dict) else None
    if not isinstance(values, dict):
        raise ConfigError(f'{path}: expected an object with "Values": {{...}}')
    return {str(k): str(v) for k, v in values.items() if v is not None}
