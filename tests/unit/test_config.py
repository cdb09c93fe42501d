import pytest

from shared.config import Settings
from shared.errors import ConfigError
from shared.jobs import JobType

SB = "Endpoint=sb://127.0.0.1:5672;SharedAccessKeyName=k;SharedAccessKey=v;UseDevelopmentEmulator=true"
BASE = {"ServiceBusConnection": SB, "AzureWebJobsStorage": "UseDevelopmentStorage=true"}


def test_defaults_from_connection_strings():
    settings = Settings.from_env(BASE)
    assert settings.service_bus.connection_string == SB
    assert settings.storage.connection_string == "UseDevelopmentStorage=true"
    assert settings.queue_names == {t: t.value for t in JobType}
    assert settings.retry.max_attempts == 5
    assert settings.job_timeouts[JobType.EMBED] == 300.0


def test_identity_based_connections():
    settings = Settings.from_env(
        {
            "ServiceBusConnection__fullyQualifiedNamespace": "ns.servicebus.windows.net",
            "ServiceBusConnection__clientId": "cid",
            "AzureWebJobsStorage__accountName": "acct",
            "AzureWebJobsStorage__clientId": "cid2",
        }
    )
    assert settings.service_bus.fully_qualified_namespace == "ns.servicebus.windows.net"
    assert settings.service_bus.client_id == "cid"
    assert settings.storage.table_service_uri == "https://acct.table.core.windows.net"
    assert settings.storage.blob_service_uri == "https://acct.blob.core.windows.net"
    assert settings.storage.client_id == "cid2"


def test_missing_connections_are_all_named_at_once():
    with pytest.raises(ConfigError) as raised:
        Settings.from_env({})
    message = raised.value.message
    assert "ServiceBusConnection" in message
    assert "AzureWebJobsStorage" in message


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("RETRY_MAX_ATTEMPTS", "0"),
        ("RETRY_BASE_SECONDS", "soon"),
        ("MAX_REQUEST_BYTES", "999999999"),
        ("SYNC_TARGETS", "not json"),
        ("SYNC_TARGETS", '{"crm": "ftp://x"}'),
        ("SUMMARIZE_TIMEOUT_SECONDS", "-1"),
    ],
)
def test_invalid_values_name_the_setting(name, value):
    with pytest.raises(ConfigError) as raised:
        Settings.from_env({**BASE, name: value})
    assert name in raised.value.message


def test_service_bus_setting_must_look_like_a_connection_string():
    with pytest.raises(ConfigError, match="ServiceBusConnection"):
        Settings.from_env({**BASE, "ServiceBusConnection": "localhost:5672"})


def test_overrides():
    settings = Settings.from_env(
        {
            **BASE,
            "SUMMARIZE_QUEUE_NAME": "sum-q",
            "SYNC_TARGETS": '{"crm": "https://crm.example"}',
            "JOB_TIMEOUT_SECONDS": "60",
            "EMBED_TIMEOUT_SECONDS": "10",
        }
    )
    assert settings.queue_names[JobType.SUMMARIZE] == "sum-q"
    assert settings.sync_targets == {"crm": "https://crm.example"}
    assert settings.job_timeouts[JobType.SUMMARIZE] == 60.0
    assert settings.job_timeouts[JobType.EMBED] == 10.0


def test_every_problem_is_reported_at_once_with_its_value():
    with pytest.raises(ConfigError) as raised:
        Settings.from_env(
            {**BASE, "RETRY_MAX_ATTEMPTS": "0", "EMBEDDING_CACHE": "maybe", "AI_PROVIDER": "gpt"}
        )
    message = raised.value.message
    assert "RETRY_MAX_ATTEMPTS='0'" in message
    assert "EMBEDDING_CACHE='maybe'" in message
    assert "AI_PROVIDER='gpt'" in message


def test_blank_values_count_as_unset():
    settings = Settings.from_env({**BASE, "AZURE_OPENAI_ENDPOINT": " ", "RETRY_MAX_ATTEMPTS": ""})
    assert settings.ai.provider == "local"
    assert settings.retry.max_attempts == 5


def test_ai_provider_follows_the_endpoint_unless_set():
    endpoint = {"AZURE_OPENAI_ENDPOINT": "https://aoai.example"}
    assert Settings.from_env({**BASE, **endpoint}).ai.provider == "azure_openai"
    assert Settings.from_env({**BASE, **endpoint, "AI_PROVIDER": "local"}).ai.provider == "local"
    with pytest.raises(ConfigError, match="needs AZURE_OPENAI_ENDPOINT"):
        Settings.from_env({**BASE, "AI_PROVIDER": "azure_openai"})


def test_the_sample_settings_name_only_settings_the_table_knows():
    import json
    from pathlib import Path

    from shared.config import setting_names

    sample = Path(__file__).resolve().parents[2] / "local.settings.sample.json"
    values = json.loads(sample.read_text())["Values"]
    host_only = {
        "FUNCTIONS_WORKER_RUNTIME",
        "AzureWebJobsFeatureFlags",
        "PYTHON_ENABLE_INIT_INDEXING",
    }
    telemetry = {"APPLICATIONINSIGHTS_CONNECTION_STRING"}
    assert set(values) - setting_names() - host_only - telemetry == set()
