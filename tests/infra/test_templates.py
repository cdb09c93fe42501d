"""The Bicep templates, azure.yaml and .funcignore, checked offline.

What a Bicep compiler would refuse (bad syntax, unknown or missing module parameters,
outputs that do not exist) and what would break the deployed app (settings the code cannot
read, queues or tables it would not find, keys where identities belong).
"""

from __future__ import annotations

import fnmatch
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from pycep import BicepParser

from shared.config import (
    CALLBACKS_QUEUE_SETTING,
    HIGH_QUEUE_NAME_SETTINGS,
    QUEUE_NAME_SETTINGS,
    Settings,
)
from tests.infra.bicep import (
    INFRA,
    MAIN,
    REPO,
    bicep_files,
    is_required,
    loop_body,
    module_config,
    outputs_used,
    parse,
    resource_config,
    resources_of_type,
    symbols,
)

MODULES = INFRA / "modules"
EMULATOR_CONFIG = INFRA / "servicebus.config.json"

# Built-in Azure role definition ids (the same in every tenant) and what they are.
KNOWN_ROLES = {
    "b7e6dc6d-f1e8-4753-8033-0f276bb0955b": "Storage Blob Data Owner",
    "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3": "Storage Table Data Contributor",
    "974c5e8b-45b9-4653-ba55-5f855dd0fb88": "Storage Queue Data Contributor",
    "090c5cfd-751d-490a-894a-3ce6f1109419": "Azure Service Bus Data Owner",
    "3913510d-42f4-4e42-8a64-420c390055eb": "Monitoring Metrics Publisher",
}
OPENAI_USER = "5e0bd9bd-7b93-4f28-af87-19fc36ad61bd"  # Cognitive Services OpenAI User
# Values in local.settings.sample.json that Azure gets another way.
LOCAL_ONLY_SETTINGS = {
    "FUNCTIONS_WORKER_RUNTIME": "Flex Consumption takes the runtime from functionAppConfig",
    "AzureWebJobsFeatureFlags": "worker indexing is on by default in Azure",
    "AzureWebJobsStorage": "replaced by AzureWebJobsStorage__accountName + identity",
    "ServiceBusConnection": "replaced by ServiceBusConnection__fullyQualifiedNamespace + identity",
    "ServiceBusAdminConnection": "in Azure the management API is at the namespace itself",
}


def app_settings() -> dict[str, Any]:
    document = parse(MODULES / "functionapp.bicep")
    settings: dict[str, Any] = document["variables"]["appSettings"]["value"]
    return settings


def resolved_app_settings(**parameters: str) -> dict[str, str]:
    """App settings as the app would see them, with deployment-time values as placeholders
    (or the values given). A conditional on `empty(p)` takes the branch `p` selects;
    `string(object)` gives that object's JSON (`{}` or `[]` for the default)."""
    declared = symbols(parse(MODULES / "functionapp.bicep"))
    # main.bicep's defaults where the placeholder would not be a valid value: API keys only.
    parameters = {"authJwtIssuer": "", "authJwtAudience": "", **parameters}

    def resolve(value: Any) -> str:
        if isinstance(value, dict) and value.get("operator", {}).get("type") == "conditional":
            operands = value["operator"]["operands"]
            condition = json.dumps(operands["condition"])
            tested = re.search(r'"(?:item_to_test|value_to_check)": "(\w+)"', condition)
            empty = tested is None or not parameters.get(tested[1])
            return resolve(operands["true_value" if empty else "false_value"])
        if isinstance(value, dict) and value.get("operator", {}).get("type") == "property_accessor":
            return lookup(NAMES, value)
        if isinstance(value, dict) and value.get("function", {}).get("type") == "string":
            converted = value["function"]["parameters"]["value_to_convert"]
            return parameters.get(converted, "[]" if converted == "apiKeys" else "{}")
        assert isinstance(value, str), f"cannot resolve {value!r}"
        if value in parameters:
            return parameters[value]
        if value in declared:
            return f"placeholder-{value}"
        return re.sub(r"\$\{(\w+)\}", lambda m: f"placeholder-{m[1]}", value)

    return {name: resolve(value) for name, value in app_settings().items()}


NAMES = json.loads((INFRA / "names.json").read_text(encoding="utf-8"))


def lookup(document: dict[str, Any], accessor: dict[str, Any]) -> str:
    """`names.queues.sync` as pycep parses it, looked up in infra/names.json."""
    operands = accessor["operator"]["operands"]
    rest = operands["operand_2"]
    if operands["operand_1"] == "names":
        return lookup(document, rest) if isinstance(rest, dict) else str(document[rest])
    key = operands["operand_1"]
    if isinstance(rest, dict):
        return lookup(document[key], rest)
    return str(document[key][rest])


def emulator_queues() -> list[dict[str, Any]]:
    config = json.loads(EMULATOR_CONFIG.read_text(encoding="utf-8"))
    queues: list[dict[str, Any]] = config["UserConfig"]["Namespaces"][0]["Queues"]
    return queues


# ---- what a compiler would check ----------------------------------------------------------


@pytest.mark.parametrize("path", bicep_files(), ids=lambda p: str(p.relative_to(INFRA)))
def test_every_template_parses(path: Path):
    document = parse(path)
    assert document["resources"] or document["modules"]


def test_a_syntax_error_is_caught():
    with pytest.raises(Exception, match="line 2"):
        BicepParser().parse(text="param a string\nresource x = {\n")


@pytest.mark.parametrize("path", bicep_files(), ids=lambda p: str(p.relative_to(INFRA)))
def test_modules_get_exactly_the_parameters_they_declare(path: Path):
    for name, module in parse(path).get("modules", {}).items():
        target = (path.parent / module["detail"]["path"]).resolve()
        assert target.is_file(), f"{path.name}: module {name} points at a missing {target}"
        declared = parse(target)["parameters"]
        passed = set(module_config(module).get("params", {}))
        assert passed <= set(declared), f"{name}: unknown parameters {passed - set(declared)}"
        required = {p for p, spec in declared.items() if is_required(spec)}
        assert required <= passed, f"{name}: missing parameters {required - passed}"


@pytest.mark.parametrize("path", bicep_files(), ids=lambda p: str(p.relative_to(INFRA)))
def test_module_outputs_that_are_used_exist(path: Path):
    modules = parse(path).get("modules", {})
    for symbol, output in outputs_used(path):
        assert symbol in modules, f"{path.name}: {symbol}.outputs used but {symbol} is no module"
        target = (path.parent / modules[symbol]["detail"]["path"]).resolve()
        assert output in parse(target)["outputs"], f"{target.name} has no output {output}"


def test_loaded_files_exist():
    for path in bicep_files():
        for match in re.findall(r"load\w*Content\('([^']+)'", path.read_text(encoding="utf-8")):
            assert (path.parent / match).is_file(), f"{path.name} loads a missing {match}"


def test_the_parameters_file_matches_main():
    parameters = json.loads((INFRA / "main.parameters.json").read_text(encoding="utf-8"))
    given = set(parameters["parameters"])
    declared = parse(MAIN)["parameters"]
    assert given <= set(declared)
    assert {p for p, spec in declared.items() if is_required(spec)} <= given


def test_outputs_are_upper_snake_or_app_setting_names():
    names = set(parse(MAIN)["outputs"])
    setting_names = set(app_settings())
    for name in names:
        assert re.fullmatch(r"[A-Z][A-Z0-9_]*", name) or name in setting_names, name


# ---- what the deployed app needs ------------------------------------------------------------


def test_azure_queues_are_the_ones_the_local_emulator_serves():
    """main.bicep loads the emulator's Config.json, and every property in it reaches Azure."""
    main = parse(MAIN)
    load = main["variables"]["serviceBusConfig"]["value"]["function"]
    assert (INFRA / load["parameters"]["file_path"]).resolve() == EMULATOR_CONFIG
    assert module_config(main["modules"]["serviceBus"])["params"]["queues"] == "queues"
    mapped = set(
        re.findall(
            r"definition\.Properties\.(\w+)",
            (MODULES / "servicebus.bicep").read_text(encoding="utf-8"),
        )
    )
    for queue in emulator_queues():
        assert set(queue["Properties"]) <= mapped, f"{queue['Name']}: not all properties mapped"


def test_azure_gets_the_tier_whose_size_limit_the_emulator_enforces():
    config = json.loads(EMULATOR_CONFIG.read_text(encoding="utf-8"))
    assert config["UserConfig"]["Namespaces"][0]["Sku"] == "Standard"
    params = module_config(parse(MAIN)["modules"]["serviceBus"])["params"]
    assert "Sku" in json.dumps(params["sku"])
    bus = resources_of_type(parse(MODULES / "servicebus.bicep"), "Microsoft.ServiceBus/namespaces")
    assert bus[0]["config"]["sku"] == {"name": "sku", "tier": "sku"}


def test_every_trigger_queue_exists_in_azure():
    settings = resolved_app_settings()
    queue_names = {q["Name"] for q in emulator_queues()}
    for setting in [
        *QUEUE_NAME_SETTINGS.values(),
        *HIGH_QUEUE_NAME_SETTINGS.values(),
        CALLBACKS_QUEUE_SETTING,
    ]:
        assert settings[setting] in queue_names, f"{setting}={settings[setting]} has no queue"


def test_the_app_reads_its_azure_settings_with_identities():
    settings = Settings.from_env(resolved_app_settings())
    assert settings.service_bus.connection_string is None
    assert settings.service_bus.fully_qualified_namespace
    assert settings.service_bus.client_id
    assert settings.storage.connection_string is None
    assert settings.storage.table_service_uri
    assert settings.storage.client_id
    assert settings.sync_targets == {}


def test_azure_settings_cover_every_local_setting():
    """A setting added to local.settings.sample.json must reach Azure too (or be listed here)."""
    sample = json.loads((REPO / "local.settings.sample.json").read_text(encoding="utf-8"))
    missing = set(sample["Values"]) - set(app_settings()) - set(LOCAL_ONLY_SETTINGS)
    assert not missing, f"set in local.settings.sample.json but not in Azure: {missing}"
    forbidden = {"FUNCTIONS_WORKER_RUNTIME", "FUNCTIONS_EXTENSION_VERSION", "AzureWebJobsStorage"}
    assert not forbidden & set(app_settings()), "Flex Consumption refuses these settings"


def test_host_and_worker_run_in_the_opentelemetry_mode_with_one_exporter():
    """host.json puts the host in OpenTelemetry mode, the worker hands each invocation the
    host's trace context, and only the app configures an exporter (the worker's is off)."""
    host = json.loads((REPO / "host.json").read_text(encoding="utf-8"))
    assert host["telemetryMode"] == "OpenTelemetry"
    settings = resolved_app_settings()
    assert settings["PYTHON_ENABLE_OPENTELEMETRY"] == "true"
    assert settings["PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY"] == "false"
    telemetry = Settings.from_env(settings).telemetry
    assert telemetry.worker_context
    assert not telemetry.worker_exporter
    assert telemetry.connection_string
    identity = "ClientId=placeholder-identityClientId;Authorization=AAD"
    assert telemetry.authentication_string == identity


def test_storage_holds_the_tables_and_containers_the_app_uses():
    main = parse(MAIN)
    params = module_config(main["modules"]["storage"])["params"]
    assert json.dumps(params["tableNames"]) == json.dumps(
        {
            "operator": {
                "type": "property_accessor",
                "operands": {"operand_1": "names", "operand_2": "tables"},
            }
        }
    )
    storage = parse(MODULES / "storage.bicep")
    (tables,) = resources_of_type(storage, "Microsoft.Storage/storageAccounts/tableServices/tables")
    assert "tableNames" in json.dumps(tables["config"]["loop_type"])
    settings = Settings.from_env(resolved_app_settings())
    used = {settings.jobs_table, settings.audit_table}
    used |= {settings.ai.embedding_cache_table, settings.auth.api_keys_table}
    used |= {settings.limits.rate_limits_table, settings.switches_table}
    assert used == set(NAMES["tables"].values())
    assert settings.payload_container == NAMES["containers"]["payloads"]


def test_names_have_one_source_that_everything_follows():
    """infra/names.json: Bicep loads it; the app's defaults, the sample settings and the
    emulator's queue list must say the same."""
    table = Settings.from_env(
        {
            "ServiceBusConnection": "Endpoint=sb://x/",
            "AzureWebJobsStorage": "UseDevelopmentStorage=true",
        }
    )
    defaults = {
        **{f"queues.{t.value}": table.queue_names[t] for t in table.queue_names},
        **{f"queues.{t.value}High": table.high_queue_names[t] for t in table.high_queue_names},
        "tables.jobs": table.jobs_table,
        "tables.audit": table.audit_table,
        "tables.embeddingCache": table.ai.embedding_cache_table,
        "tables.apiKeys": table.auth.api_keys_table,
        "tables.rateLimits": table.limits.rate_limits_table,
        "tables.switches": table.switches_table,
        "queues.callbacks": table.callbacks.queue,
        "containers.payloads": table.payload_container,
    }
    expected = {
        f"{kind}.{role}": name for kind, group in NAMES.items() for role, name in group.items()
    }
    assert defaults == expected
    sample = json.loads((REPO / "local.settings.sample.json").read_text(encoding="utf-8"))["Values"]
    queue_settings = [
        *QUEUE_NAME_SETTINGS.values(),
        *HIGH_QUEUE_NAME_SETTINGS.values(),
        CALLBACKS_QUEUE_SETTING,
    ]
    assert {sample[s] for s in queue_settings} == set(NAMES["queues"].values())
    for setting, role in [
        ("JOBS_TABLE_NAME", "jobs"),
        ("EMBEDDING_CACHE_TABLE_NAME", "embeddingCache"),
        ("API_KEYS_TABLE_NAME", "apiKeys"),
        ("RATE_LIMITS_TABLE_NAME", "rateLimits"),
        ("SWITCHES_TABLE_NAME", "switches"),
    ]:
        assert sample[setting] == NAMES["tables"][role]
    assert sample["PAYLOAD_CONTAINER_NAME"] == NAMES["containers"]["payloads"]
    assert {q["Name"] for q in emulator_queues()} == set(NAMES["queues"].values())


def test_runtime_is_the_python_the_project_targets():
    site = resource_config(parse(MODULES / "functionapp.bicep"), "site")
    runtime = site["properties"]["functionAppConfig"]["runtime"]
    pyproject = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    target = re.search(r'python_version = "([\d.]+)"', pyproject)
    assert target is not None
    assert runtime == {"name": "python", "version": target[1]}
    plan = resource_config(parse(MODULES / "functionapp.bicep"), "plan")
    assert plan["sku"] == {"name": "FC1", "tier": "FlexConsumption"}


# ---- no keys --------------------------------------------------------------------------------


def test_no_template_reads_or_hands_out_keys():
    for path in bicep_files():
        text = path.read_text(encoding="utf-8")
        for marker in ("listKeys", "listConnectionStrings", "SharedAccessKey", "AccountKey"):
            assert marker not in text, f"{path.name} uses {marker}"
    for name in parse(MAIN)["outputs"]:
        assert not re.search(r"key|secret|password|connectionstring", name, re.IGNORECASE), name


def test_local_authentication_is_off_and_tls_is_current():
    storage = parse(MODULES / "storage.bicep")
    account = resources_of_type(storage, "Microsoft.Storage/storageAccounts")[0]["config"]
    assert account["properties"]["allowSharedKeyAccess"] is False
    assert account["properties"]["allowBlobPublicAccess"] is False
    assert account["properties"]["supportsHttpsTrafficOnly"] is True
    assert account["properties"]["minimumTlsVersion"] == "TLS1_2"

    bus = resources_of_type(parse(MODULES / "servicebus.bicep"), "Microsoft.ServiceBus/namespaces")
    assert bus[0]["config"]["properties"] == {"disableLocalAuth": True, "minimumTlsVersion": "1.2"}

    insights = resource_config(parse(MODULES / "monitoring.bicep"), "applicationInsights")
    assert insights["properties"]["DisableLocalAuth"] is True

    site = resource_config(parse(MODULES / "functionapp.bicep"), "site")
    assert site["identity"]["type"] == "UserAssigned"
    assert site["properties"]["httpsOnly"] is True
    assert site["properties"]["siteConfig"]["minTlsVersion"] == "1.2"
    deployment = site["properties"]["functionAppConfig"]["deployment"]["storage"]
    assert deployment["authentication"]["type"] == "UserAssignedIdentity"


def test_the_identity_gets_the_data_roles_it_needs_and_no_others():
    access = parse(MODULES / "access.bicep")
    text = json.dumps(access["variables"])
    granted = set(re.findall(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", text))
    assert {KNOWN_ROLES.get(g, g) for g in granted} == set(KNOWN_ROLES.values())
    assignments = resources_of_type(access, "Microsoft.Authorization/roleAssignments")
    assert len(assignments) == 3
    for assignment in assignments:
        body = loop_body(assignment["config"])
        # guid(scope, principal, role): a redeploy finds the same assignment, not a duplicate.
        assert body["name"]["function"]["type"] == "guid"
        assert body["properties"]["principalId"] == "principalId"
    main = parse(MAIN)["modules"]
    assert module_config(main["appAccess"])["params"]["principalType"] == "ServicePrincipal"


def test_flex_consumption_site_config_has_only_what_flex_supports():
    """Flex Consumption deprecates FTPS settings and several siteConfig properties (runtime,
    worker counts, always-on...): they move to functionAppConfig or go away."""
    site = resource_config(parse(MODULES / "functionapp.bicep"), "site")
    assert set(site["properties"]["siteConfig"]) <= {"minTlsVersion", "appSettings", "cors"}


# ---- Azure OpenAI ---------------------------------------------------------------------------


def test_azure_openai_account_uses_entra_id_only_with_both_deployments():
    openai = parse(MODULES / "openai.bicep")
    account = resource_config(openai, "account")
    assert account["kind"] == "OpenAI"
    assert account["properties"]["disableLocalAuth"] is True
    assert account["properties"]["customSubDomainName"] == "name"  # Entra ID needs it
    deployments = resources_of_type(openai, "Microsoft.CognitiveServices/accounts/deployments")
    models = {d["config"]["properties"]["model"]["name"] for d in deployments}
    assert models == {"chatModel", "embeddingModel"}
    main = parse(MAIN)
    assert main["parameters"]["deployOpenAI"]["default"] is True
    assert main["parameters"]["chatModel"]["default"] == "gpt-4o-mini"
    assert main["parameters"]["embeddingModel"]["default"] == "text-embedding-3-small"


def test_the_app_identity_may_call_azure_openai_and_nothing_more():
    access = parse(MODULES / "openai-access.bicep")
    assert access["variables"]["openAIUser"]["value"] == OPENAI_USER
    (assignment,) = resources_of_type(access, "Microsoft.Authorization/roleAssignments")
    assert assignment["config"]["name"]["function"]["type"] == "guid"
    app = module_config(parse(MAIN)["modules"]["appOpenAIAccess"])["params"]
    assert app["principalType"] == "ServicePrincipal"
    assert "identity" in json.dumps(app["principalId"])


def test_the_app_reads_azure_openai_settings_with_its_identity():
    settings = Settings.from_env(
        resolved_app_settings(openAIEndpoint="https://oai-x.openai.azure.com/")
    )
    assert settings.ai.provider == "azure_openai"
    assert settings.ai.endpoint == "https://oai-x.openai.azure.com/"
    assert settings.ai.client_id == "placeholder-identityClientId"
    assert settings.ai.api_key is None
    assert settings.ai.max_retries == 0
    without = Settings.from_env(resolved_app_settings())
    assert without.ai.provider == "local"  # deployOpenAI=false: the packaged model


# ---- azd parameters -------------------------------------------------------------------------


def test_sync_targets_is_an_object_parameter_azd_can_parse():
    """azd pastes a `string` parameter's text unescaped into the JSON: a JSON value breaks it.
    An `object` parameter is parsed, and the app setting is its JSON text."""
    assert parse(MAIN)["parameters"]["syncTargets"]["type"] == "object"
    assert parse(MODULES / "functionapp.bicep")["parameters"]["syncTargets"]["type"] == "object"
    targets = '{"crm": "https://crm.example"}'
    settings = Settings.from_env(resolved_app_settings(syncTargets=targets))
    assert settings.sync_targets == {"crm": "https://crm.example"}


def test_principal_type_comes_from_azd_so_a_service_principal_can_deploy():
    parameters = json.loads((INFRA / "main.parameters.json").read_text(encoding="utf-8"))
    assert parameters["parameters"]["principalType"]["value"] == "${AZURE_PRINCIPAL_TYPE}"
    assert parameters["parameters"]["principalId"]["value"] == "${AZURE_PRINCIPAL_ID}"
    main = parse(MAIN)
    assert "ServicePrincipal" in json.dumps(main["parameters"]["principalType"])
    for name in ("operatorAccess", "operatorOpenAIAccess"):
        params = module_config(main["modules"][name])["params"]
        assert params["principalType"] == "principalType", f"{name} hard-codes its principal type"
    text = MAIN.read_text(encoding="utf-8")
    assert "principalType: 'User'" not in text


def test_operator_access_can_be_turned_off_from_the_azd_environment():
    parameters = json.loads((INFRA / "main.parameters.json").read_text(encoding="utf-8"))
    value = parameters["parameters"]["grantOperatorAccess"]["value"]
    assert value.startswith("${CONVEYOR_GRANT_OPERATOR_ACCESS")
    condition = json.dumps(parse(MAIN)["modules"]["operatorAccess"]["config"]["condition"])
    assert "grantOperatorAccess" in condition


# ---- azd and packaging ----------------------------------------------------------------------


def test_azure_yaml_deploys_this_folder_as_the_function_app():
    config = yaml.safe_load((REPO / "azure.yaml").read_text(encoding="utf-8"))
    assert (REPO / config["infra"]["path"] / f"{config['infra']['module']}.bicep") == MAIN
    ((service, spec),) = config["services"].items()
    assert spec["host"] == "function"
    assert spec["language"] == "python"
    project = REPO / spec["project"]
    for needed in ("function_app.py", "host.json", "requirements.txt"):
        assert (project / needed).is_file()
    tags = module_config(parse(MAIN)["modules"]["functionApp"])["params"]["tags"]
    assert service in json.dumps(tags), "the site needs the azd-service-name tag of the service"


def _ignored(path: str, patterns: list[str]) -> bool:
    top = path.split("/")[0]
    return any(fnmatch.fnmatch(top, p) or fnmatch.fnmatch(path, p) for p in patterns)


LEFT_BEHIND = [
    ".venv/bin/python",
    "node_modules/azurite",
    "tests/unit",
    "devtools/host.py",
    "local.settings.json",
    "bench/worker_throughput.py",
    "infra/main.bicep",
]


def test_funcignore_ships_the_app_and_nothing_else():
    lines = (REPO / ".funcignore").read_text(encoding="utf-8").splitlines()
    patterns = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    app_files = [
        path.relative_to(REPO).as_posix()
        for folder in ("functions", "shared")
        for path in (REPO / folder).rglob("*.py")
    ]
    for shipped in ["function_app.py", "host.json", "requirements.txt", *app_files]:
        assert not _ignored(shipped, patterns), f"{shipped} would be left out"
    for local in LEFT_BEHIND:
        assert _ignored(local, patterns), f"{local} would be deployed"


def test_auth_reaches_the_app_on_by_default_and_tokens_when_an_issuer_is_given():
    plain = Settings.from_env(resolved_app_settings())
    assert plain.auth.enabled
    assert not plain.auth.accepts_tokens
    assert plain.auth.api_keys == ()
    assert plain.limits.submits_per_minute == 10
    issuer = "https://login.microsoftonline.com/00000000-0000-0000-0000-000000000000/v2.0"
    keys = json.dumps([{"id": "ops00001", "owner": "ops", "sha256": "0" * 64, "admin": True}])
    entra = Settings.from_env(
        resolved_app_settings(authJwtIssuer=issuer, authJwtAudience="api://conveyor", apiKeys=keys)
    )
    assert entra.auth.accepts_tokens
    assert entra.auth.jwt_issuers == (issuer,)
    assert [k.owner for k in entra.auth.api_keys] == ["ops"]
    main = parse(MAIN)
    for name in ("apiKeys", "authJwtIssuer", "authJwtAudience"):
        assert name in main["parameters"], name
