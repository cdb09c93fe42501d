"""The table of app settings: every setting the code reads, by name (the alias), with its
default and the type that parses it. shared/config.py turns it into the Settings object."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal
from urllib.parse import urlparse

from pydantic import BaseModel, ConfigDict, Field, field_validator

Seconds = Annotated[float, Field(gt=0)]
OnOff = Literal["on", "off"]


class SettingsTable(BaseModel):
    """Every app setting the code reads: name (alias), default, and how it is parsed."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=False)

    # connections: a connection string, or endpoints reached with a managed identity
    service_bus_connection: str | None = Field(None, alias="ServiceBusConnection")
    service_bus_namespace: str | None = Field(
        None, alias="ServiceBusConnection__fullyQualifiedNamespace"
    )
    service_bus_client_id: str | None = Field(None, alias="ServiceBusConnection__clientId")
    storage_connection: str | None = Field(None, alias="AzureWebJobsStorage")
    storage_account: str | None = Field(None, alias="AzureWebJobsStorage__accountName")
    storage_table_uri: str | None = Field(None, alias="AzureWebJobsStorage__tableServiceUri")
    storage_blob_uri: str | None = Field(None, alias="AzureWebJobsStorage__blobServiceUri")
    storage_client_id: str | None = Field(None, alias="AzureWebJobsStorage__clientId")

    # names of queues, tables and the payload container
    summarize_queue: str = Field("summarize", alias="SUMMARIZE_QUEUE_NAME")
    embed_queue: str = Field("embed", alias="EMBED_QUEUE_NAME")
    sync_queue: str = Field("sync", alias="SYNC_QUEUE_NAME")
    # `priority: high` jobs: a queue (and a trigger) of their own per type.
    summarize_high_queue: str = Field("summarize-high", alias="SUMMARIZE_HIGH_QUEUE_NAME")
    embed_high_queue: str = Field("embed-high", alias="EMBED_HIGH_QUEUE_NAME")
    sync_high_queue: str = Field("sync-high", alias="SYNC_HIGH_QUEUE_NAME")
    jobs_table: str = Field("jobs", alias="JOBS_TABLE_NAME")
    audit_table: str = Field("audit", alias="AUDIT_TABLE_NAME")
    payload_container: str = Field("job-payloads", alias="PAYLOAD_CONTAINER_NAME")
    embedding_cache_table: str = Field("embeddingcache", alias="EMBEDDING_CACHE_TABLE_NAME")
    api_keys_table: str = Field("apikeys", alias="API_KEYS_TABLE_NAME")
    rate_limits_table: str = Field("ratelimits", alias="RATE_LIMITS_TABLE_NAME")
    callbacks_queue: str = Field("callbacks", alias="CALLBACKS_QUEUE_NAME")
    switches_table: str = Field("switches", alias="SWITCHES_TABLE_NAME")

    # completion callbacks (docs/api.md#completion-callbacks) and the intake switches
    callback_allowed_hosts: str | None = Field(None, alias="CALLBACK_ALLOWED_HOSTS")
    callback_signing_secret: str | None = Field(None, alias="CALLBACK_SIGNING_SECRET")
    callback_max_attempts: int = Field(8, ge=1, le=50, alias="CALLBACK_MAX_ATTEMPTS")
    callback_retry_base_seconds: Seconds = Field(5.0, alias="CALLBACK_RETRY_BASE_SECONDS")
    callback_retry_max_seconds: Seconds = Field(600.0, alias="CALLBACK_RETRY_MAX_SECONDS")
    callback_timeout_seconds: Seconds = Field(10.0, le=120, alias="CALLBACK_TIMEOUT_SECONDS")
    website_hostname: str | None = Field(None, alias="WEBSITE_HOSTNAME")  # set by Azure
    intake_cache_seconds: Seconds = Field(5.0, le=60, alias="INTAKE_CACHE_SECONDS")

    # who may call, and how much: API keys, Entra ID tokens, rate limits, backpressure
    # AUTH_MODE=off accepts every request as an administrator: local experiments only.
    auth_mode: OnOff = Field("on", alias="AUTH_MODE")
    # A JSON list of {id, owner, sha256, admin?, submits_per_minute?, description?}.
    api_keys: list[Any] = Field(default_factory=list, alias="API_KEYS")
    api_key_cache_seconds: Seconds = Field(30.0, le=3600, alias="API_KEY_CACHE_SECONDS")
    # Entra ID (any OpenID Connect issuer): comma-separated issuers and audiences.
    auth_jwt_issuer: str | None = Field(None, alias="AUTH_JWT_ISSUER")
    auth_jwt_audience: str | None = Field(None, alias="AUTH_JWT_AUDIENCE")
    auth_jwt_jwks_url: str | None = Field(None, alias="AUTH_JWT_JWKS_URL")
    auth_admin_role: str = Field("Conveyor.Admin", alias="AUTH_ADMIN_ROLE")
    # Submits per owner and job type per minute (a key may set its own); 0 = no limit.
    rate_limit_submits_per_minute: int = Field(10, ge=0, alias="RATE_LIMIT_SUBMITS_PER_MINUTE")
    # Submits of a type are refused (503) while its queue holds more active messages; 0 = off.
    queue_depth_limit: int = Field(10_000, ge=0, alias="QUEUE_DEPTH_LIMIT")
    queue_depth_cache_seconds: Seconds = Field(5.0, le=300, alias="QUEUE_DEPTH_CACHE_SECONDS")
    # Service Bus's management API, when it is not where ServiceBusConnection points (the
    # local emulator serves it on a port of its own, as Microsoft's emulator does).
    service_bus_admin_connection: str | None = Field(None, alias="ServiceBusAdminConnection")

    # requests, retries and time limits
    # Above ~200 KB a job message no longer fits Service Bus Standard's 256 KB limit.
    max_request_bytes: int = Field(192 * 1024, ge=1024, le=200 * 1024, alias="MAX_REQUEST_BYTES")
    sync_targets: dict[str, str] = Field(default_factory=dict, alias="SYNC_TARGETS")
    retry_base_seconds: Seconds = Field(2.0, alias="RETRY_BASE_SECONDS")
    retry_max_seconds: Seconds = Field(300.0, alias="RETRY_MAX_SECONDS")
    retry_max_attempts: int = Field(5, ge=1, alias="RETRY_MAX_ATTEMPTS")
    job_timeout_seconds: Seconds = Field(300.0, alias="JOB_TIMEOUT_SECONDS")
    summarize_timeout_seconds: Seconds | None = Field(None, alias="SUMMARIZE_TIMEOUT_SECONDS")
    embed_timeout_seconds: Seconds | None = Field(None, alias="EMBED_TIMEOUT_SECONDS")
    sync_timeout_seconds: Seconds | None = Field(None, alias="SYNC_TIMEOUT_SECONDS")
    stuck_grace_seconds: Seconds = Field(300.0, alias="STUCK_GRACE_SECONDS")
    # A row still `queued` this long was never sent (the submit died): maintenance re-sends it.
    # Keep it under Service Bus duplicate detection's window (10 minutes in infra/).
    queued_grace_seconds: Seconds = Field(120.0, alias="QUEUED_GRACE_SECONDS")
    # How far ahead a delayed job (run_at / delay_seconds) may be scheduled: 7 days.
    max_delay_seconds: Seconds = Field(7 * 86400.0, le=366 * 86400, alias="MAX_DELAY_SECONDS")
    # Storage and Service Bus calls of one submit share this deadline (then 503).
    submit_budget_seconds: Seconds = Field(4.0, le=60, alias="SUBMIT_BUDGET_SECONDS")
    # A job is recorded `running` only once its handler has run this long (0: at once); a
    # shorter job goes from `queued` to its outcome in one write.
    running_mark_delay_seconds: float = Field(1.0, ge=0, le=60, alias="RUNNING_MARK_DELAY_SECONDS")

    # AI providers
    ai_provider: Literal["local", "azure_openai"] | None = Field(None, alias="AI_PROVIDER")
    azure_openai_endpoint: str | None = Field(None, alias="AZURE_OPENAI_ENDPOINT")
    azure_openai_api_version: str = Field("2024-10-21", alias="AZURE_OPENAI_API_VERSION")
    azure_openai_chat_deployment: str = Field("gpt-4o-mini", alias="AZURE_OPENAI_CHAT_DEPLOYMENT")
    azure_openai_chat_model: str = Field("gpt-4o-mini", alias="AZURE_OPENAI_CHAT_MODEL")
    azure_openai_embedding_deployment: str = Field(
        "text-embedding-3-small", alias="AZURE_OPENAI_EMBEDDING_DEPLOYMENT"
    )
    azure_openai_client_id: str | None = Field(None, alias="AZURE_OPENAI_CLIENT_ID")
    azure_openai_api_key: str | None = Field(None, alias="AZURE_OPENAI_API_KEY")
    azure_openai_timeout_seconds: Seconds = Field(60.0, alias="AZURE_OPENAI_TIMEOUT_SECONDS")
    azure_openai_max_retries: int = Field(0, ge=0, le=10, alias="AZURE_OPENAI_MAX_RETRIES")
    summary_chunk_tokens: int = Field(3000, ge=200, le=1_000_000, alias="SUMMARY_CHUNK_TOKENS")
    embedding_cache: OnOff = Field("on", alias="EMBEDDING_CACHE")

    # telemetry and logs
    appinsights_connection_string: str | None = Field(
        None, alias="APPLICATIONINSIGHTS_CONNECTION_STRING"
    )
    appinsights_authentication_string: str | None = Field(
        None, alias="APPLICATIONINSIGHTS_AUTHENTICATION_STRING"
    )
    appinsights_live_metrics: bool = Field(True, alias="APPLICATIONINSIGHTS_LIVE_METRICS")
    # The Python worker's OpenTelemetry switches (docs/operations.md#tracing): it hands each
    # invocation the host's trace context; with the second it also configures the exporter.
    python_enable_opentelemetry: bool = Field(False, alias="PYTHON_ENABLE_OPENTELEMETRY")
    python_appinsights_telemetry: bool = Field(
        False, alias="PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY"
    )
    # The Azure SDKs log every HTTP request and AMQP frame at INFO: costly noise in Azure.
    azure_sdk_log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "WARNING", alias="AZURE_SDK_LOG_LEVEL"
    )

    @field_validator("sync_targets", mode="before")
    @classmethod
    def _json_object(cls, raw: Any) -> Any:
        return _json_setting(raw, 'a JSON object {"name": "https://..."}')

    @field_validator("api_keys", mode="before")
    @classmethod
    def _json_list(cls, raw: Any) -> Any:
        return _json_setting(raw, 'a JSON list [{"id": ..., "owner": ..., "sha256": ...}]')

    @field_validator("sync_targets")
    @classmethod
    def _http_urls(cls, targets: dict[str, str]) -> dict[str, str]:
        for name, url in targets.items():
            if urlparse(url).scheme not in ("http", "https"):
                raise ValueError(f"target {name!r} needs an http(s) URL, got {url!r}")
        return targets

    @field_validator("azure_sdk_log_level", mode="before")
    @classmethod
    def _upper(cls, raw: Any) -> Any:
        return str(raw).upper()

    @field_validator("embedding_cache", "auth_mode", mode="before")
    @classmethod
    def _on_off(cls, raw: Any) -> Any:
        aliases = {"true": "on", "1": "on", "yes": "on", "false": "off", "0": "off", "no": "off"}
        return aliases.get(str(raw).lower(), str(raw).lower())


def _json_setting(raw: Any, expected: str) -> Any:
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ValueError(f"expected {expected} ({exc})") from exc
    return raw
