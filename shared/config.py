"""One typed Settings object, read from the environment once.

Names follow Azure Functions conventions so the same app reads them in Azure (app settings) and
locally (`local.settings.json` Values). Every problem is reported at once, naming the setting.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar
from urllib.parse import urlparse

from shared.errors import ConfigError
from shared.jobs import JobType
from shared.retry import RetryPolicy

T = TypeVar("T")

SERVICE_BUS = "ServiceBusConnection"
STORAGE = "AzureWebJobsStorage"

QUEUE_NAME_SETTINGS: Mapping[JobType, str] = {
    JobType.SUMMARIZE: "SUMMARIZE_QUEUE_NAME",
    JobType.EMBED: "EMBED_QUEUE_NAME",
    JobType.SYNC: "SYNC_QUEUE_NAME",
}
TIMEOUT_SETTINGS: Mapping[JobType, str] = {
    JobType.SUMMARIZE: "SUMMARIZE_TIMEOUT_SECONDS",
    JobType.EMBED: "EMBED_TIMEOUT_SECONDS",
    JobType.SYNC: "SYNC_TIMEOUT_SECONDS",
}


@dataclass(frozen=True)
class ServiceBusSettings:
    """Either a connection string, or a namespace reached with a managed identity."""

    connection_string: str | None = None
    fully_qualified_namespace: str | None = None
    client_id: str | None = None  # a user-assigned identity; None = system-assigned/default


@dataclass(frozen=True)
class StorageSettings:
    """Either a connection string, or service URIs reached with a managed identity."""

    connection_string: str | None = None
    table_service_uri: str | None = None
    blob_service_uri: str | None = None
    client_id: str | None = None


AI_PROVIDERS = ("local", "azure_openai")


@dataclass(frozen=True)
class AISettings:
    """Which provider runs summarize and embed jobs, and how to reach Azure OpenAI."""

    provider: str = "local"  # "local" (offline MiniLM) or "azure_openai"
    endpoint: str | None = None
    api_version: str = "2024-10-21"
    chat_deployment: str = "gpt-4o-mini"
    chat_model: str = "gpt-4o-mini"
    embedding_deployment: str = "text-embedding-3-small"
    client_id: str | None = None
    api_key: str | None = None
    timeout_seconds: float = 60.0
    max_retries: int = 0
    summary_chunk_tokens: int = 3000
    embedding_cache: bool = True
    embedding_cache_table: str = "embeddingcache"


@dataclass(frozen=True)
class Settings:
    service_bus: ServiceBusSettings
    storage: StorageSettings
    queue_names: Mapping[JobType, str] = field(
        default_factory=lambda: {t: t.value for t in JobType}
    )
    jobs_table: str = "jobs"
    idempotency_table: str = "idempotency"
    payload_container: str = "job-payloads"
    max_request_bytes: int = 192 * 1024
    sync_targets: Mapping[str, str] = field(default_factory=dict)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    job_timeouts: Mapping[JobType, float] = field(
        default_factory=lambda: {t: 300.0 for t in JobType}
    )
    audit_table: str = "audit"
    stuck_grace_seconds: float = 300.0
    ai: AISettings = field(default_factory=AISettings)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        return _SettingsReader(os.environ if env is None else env).read()


class _SettingsReader:
    """Reads every setting, collecting all problems before raising one ConfigError."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env
        self.problems: list[str] = []

    def get(self, name: str) -> str | None:
        value = self.env.get(name)
        return value.strip() if value and value.strip() else None

    def parse(self, name: str, default: T, convert: Callable[[str], T], what: str) -> T:
        raw = self.get(name)
        if raw is None:
            return default
        try:
            return convert(raw)
        except (ValueError, TypeError) as exc:
            self.problems.append(f"{name}={raw!r} is not {what} ({exc})")
            return default

    def read(self) -> Settings:
        service_bus = self._service_bus()
        storage = self._storage()
        queue_names = {t: self.get(QUEUE_NAME_SETTINGS[t]) or t.value for t in JobType}
        retry = RetryPolicy(
            base_seconds=self.parse("RETRY_BASE_SECONDS", 2.0, _positive_float, "a number > 0"),
            max_seconds=self.parse("RETRY_MAX_SECONDS", 300.0, _positive_float, "a number > 0"),
            max_attempts=self.parse("RETRY_MAX_ATTEMPTS", 5, _positive_int, "an integer >= 1"),
        )
        default_timeout = self.parse(
            "JOB_TIMEOUT_SECONDS", 300.0, _positive_float, "a number of seconds > 0"
        )
        timeouts = {
            t: self.parse(TIMEOUT_SETTINGS[t], default_timeout, _positive_float, "seconds > 0")
            for t in JobType
        }
        settings = Settings(
            service_bus=service_bus,
            storage=storage,
            queue_names=queue_names,
            jobs_table=self.get("JOBS_TABLE_NAME") or "jobs",
            idempotency_table=self.get("IDEMPOTENCY_TABLE_NAME") or "idempotency",
            payload_container=self.get("PAYLOAD_CONTAINER_NAME") or "job-payloads",
            max_request_bytes=self.parse(
                "MAX_REQUEST_BYTES", 192 * 1024, _request_limit, "a byte count"
            ),
            sync_targets=self.parse("SYNC_TARGETS", {}, _sync_targets, "a JSON object"),
            retry=retry,
            job_timeouts=timeouts,
            audit_table=self.get("AUDIT_TABLE_NAME") or "audit",
            stuck_grace_seconds=self.parse(
                "STUCK_GRACE_SECONDS", 300.0, _positive_float, "a number of seconds > 0"
            ),
            ai=self._ai(),
        )
        if self.problems:
            raise ConfigError(
                "invalid configuration:\n  - "
                + "\n  - ".join(self.problems)
                + "\nSet these in local.settings.json (Values) locally, or as app settings in "
                "Azure; see local.settings.sample.json."
            )
        return settings

    def _ai(self) -> AISettings:
        endpoint = self.get("AZURE_OPENAI_ENDPOINT")
        default = AISettings()
        provider = self.get("AI_PROVIDER") or ("azure_openai" if endpoint else "local")
        if provider not in AI_PROVIDERS:
            self.problems.append(
                f"AI_PROVIDER={provider!r} is not one of {', '.join(AI_PROVIDERS)}"
            )
        if provider == "azure_openai":
            if not endpoint:
                self.problems.append("AI_PROVIDER=azure_openai needs AZURE_OPENAI_ENDPOINT")
            elif urlparse(endpoint).scheme not in ("http", "https"):
                self.problems.append(f"AZURE_OPENAI_ENDPOINT={endpoint!r} is not an http(s) URL")
        return AISettings(
            provider=provider,
            endpoint=endpoint,
            api_version=self.get("AZURE_OPENAI_API_VERSION") or default.api_version,
            chat_deployment=self.get("AZURE_OPENAI_CHAT_DEPLOYMENT") or default.chat_deployment,
            chat_model=self.get("AZURE_OPENAI_CHAT_MODEL") or default.chat_model,
            embedding_deployment=self.get("AZURE_OPENAI_EMBEDDING_DEPLOYMENT")
            or default.embedding_deployment,
            client_id=self.get("AZURE_OPENAI_CLIENT_ID"),
            api_key=self.get("AZURE_OPENAI_API_KEY"),
            timeout_seconds=self.parse(
                "AZURE_OPENAI_TIMEOUT_SECONDS", 60.0, _positive_float, "seconds > 0"
            ),
            max_retries=self.parse(
                "AZURE_OPENAI_MAX_RETRIES", 0, _non_negative_int, "an integer >= 0"
            ),
            summary_chunk_tokens=self.parse(
                "SUMMARY_CHUNK_TOKENS", 3000, _chunk_tokens, "a token count"
            ),
            embedding_cache=self.parse("EMBEDDING_CACHE", True, _on_off, "on or off"),
            embedding_cache_table=self.get("EMBEDDING_CACHE_TABLE_NAME")
            or default.embedding_cache_table,
        )

    def _service_bus(self) -> ServiceBusSettings:
        connection = self.get(SERVICE_BUS)
        namespace = self.get(f"{SERVICE_BUS}__fullyQualifiedNamespace")
        if connection:
            if "Endpoint=" not in connection:
                self.problems.append(
                    f"{SERVICE_BUS} is not a Service Bus connection string "
                    "(expected 'Endpoint=sb://...;SharedAccessKeyName=...;SharedAccessKey=...')"
                )
            return ServiceBusSettings(connection_string=connection)
        if namespace:
            return ServiceBusSettings(
                fully_qualified_namespace=namespace,
                client_id=self.get(f"{SERVICE_BUS}__clientId"),
            )
        self.problems.append(
            f"{SERVICE_BUS} (a connection string) or {SERVICE_BUS}__fullyQualifiedNamespace "
            "(with a managed identity) must be set"
        )
        return ServiceBusSettings()

    def _storage(self) -> StorageSettings:
        connection = self.get(STORAGE)
        if connection:
            return StorageSettings(connection_string=connection)
        account = self.get(f"{STORAGE}__accountName")
        table_uri = self.get(f"{STORAGE}__tableServiceUri")
        blob_uri = self.get(f"{STORAGE}__blobServiceUri")
        if account:
            table_uri = table_uri or f"https://{account}.table.core.windows.net"
            blob_uri = blob_uri or f"https://{account}.blob.core.windows.net"
        if table_uri and blob_uri:
            for name, uri in (("tableServiceUri", table_uri), ("blobServiceUri", blob_uri)):
                if urlparse(uri).scheme not in ("http", "https"):
                    self.problems.append(f"{STORAGE}__{name}={uri!r} is not an http(s) URL")
            return StorageSettings(
                table_service_uri=table_uri,
                blob_service_uri=blob_uri,
                client_id=self.get(f"{STORAGE}__clientId"),
            )
        self.problems.append(
            f"{STORAGE} (a connection string), {STORAGE}__accountName, or both "
            f"{STORAGE}__tableServiceUri and {STORAGE}__blobServiceUri must be set"
        )
        return StorageSettings()


def _positive_float(raw: str) -> float:
    value = float(raw)
    if value <= 0:
        raise ValueError("must be > 0")
    return value


def _positive_int(raw: str) -> int:
    value = int(raw)
    if value < 1:
        raise ValueError("must be >= 1")
    return value


def _non_negative_int(raw: str) -> int:
    value = int(raw)
    if value < 0:
        raise ValueError("must be >= 0")
    return value


def _chunk_tokens(raw: str) -> int:
    value = int(raw)
    if not 200 <= value <= 1_000_000:
        raise ValueError("must be between 200 and 1000000")
    return value


def _on_off(raw: str) -> bool:
    lowered = raw.lower()
    if lowered in ("on", "true", "1", "yes"):
        return True
    if lowered in ("off", "false", "0", "no"):
        return False
    raise ValueError("expected on or off")


def _request_limit(raw: str) -> int:
    value = int(raw)
    if not 1024 <= value <= 200 * 1024:
        # Above ~200 KB a job message no longer fits Service Bus Standard's 256 KB limit.
        raise ValueError("must be between 1024 and 204800")
    return value


def _sync_targets(raw: str) -> dict[str, str]:
    targets = json.loads(raw)
    if not isinstance(targets, dict):
        raise ValueError('expected {"name": "https://..."}')
    for name, url in targets.items():
        if not isinstance(url, str) or urlparse(url).scheme not in ("http", "https"):
            raise ValueError(f"target {name!r} needs an http(s) URL, got {url!r}")
    return targets


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
