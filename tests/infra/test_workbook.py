"""The operations workbook: valid JSON, deployed by main.bicep over Application Insights, and
its queries name only metrics and log fields the app really emits."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from shared.logs import JOB_FIELDS
from tests.infra.bicep import INFRA, MAIN, REPO, module_config, parse

WORKBOOK_JSON = INFRA / "workbook.json"
WORKBOOK_BICEP = INFRA / "modules" / "workbook.bicep"
SHARED = REPO / "shared"
OPERATIONS_DOC = REPO / "docs" / "operations.md"


def workbook() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(WORKBOOK_JSON.read_text(encoding="utf-8"))
    return document


def queries() -> dict[str, str]:
    return {
        item["name"]: item["content"]["query"]
        for item in workbook()["items"]
        if item["type"] == 3  # a query step
    }


def instrument_names() -> set[str]:
    source = (SHARED / "metrics.py").read_text(encoding="utf-8")
    return set(re.findall(r'create_\w+\(\s*"([\w.]+)"', source))


def emitted_dimensions() -> set[str]:
    """Keys the app puts on log lines (job_fields and its keyword fields) or metric points."""
    source = "\n".join(p.read_text(encoding="utf-8") for p in SHARED.glob("*.py"))
    log_keys = set(re.findall(r"\b(\w+)=", "".join(re.findall(r"job_fields\(([^)]*)\)", source))))
    metric_keys = set(re.findall(r'"(\w+)": ', (SHARED / "metrics.py").read_text()))
    return set(JOB_FIELDS) | log_keys | metric_keys


def test_the_workbook_is_a_workbook_of_log_queries():
    document = workbook()
    assert document["version"] == "Notebook/1.0"
    assert document["fallbackResourceIds"] == ["__APPLICATION_INSIGHTS_ID__"]
    steps = [item for item in document["items"] if item["type"] == 3]
    assert steps
    for step in steps:
        assert step["content"]["queryType"] == 0  # Logs (KQL)
        assert step["content"]["resourceType"] == "microsoft.insights/components"
    parameters = [item for item in document["items"] if item["type"] == 9]
    assert {p["name"] for item in parameters for p in item["content"]["parameters"]} >= {
        "TimeRange"
    }


def test_the_workbook_shows_what_operators_asked_for():
    shown = queries()
    assert {
        "jobs-by-status",
        "run-time-by-type",
        "failures-by-reason",
        "queue-depth",
        "usage-by-owner",
    } <= set(shown)
    assert "percentile(run_seconds, 95)" in shown["run-time-by-type"]
    assert "percentile(run_seconds, 50)" in shown["run-time-by-type"]


@pytest.mark.parametrize("name", sorted(queries()))
def test_queries_name_only_metrics_the_app_defines(name: str):
    used = set(re.findall(r'"(conveyor\.[\w.]+)"', queries()[name]))
    prefixes = set(re.findall(r'replace_string\(name, "([\w.]+)"', queries()[name]))
    assert used - prefixes <= instrument_names()


@pytest.mark.parametrize("name", sorted(queries()))
def test_queries_name_only_fields_the_app_emits(name: str):
    used = set(re.findall(r"customDimensions\.(\w+)", queries()[name]))
    assert used <= emitted_dimensions(), used - emitted_dimensions()


def test_the_module_deploys_the_json_over_application_insights():
    document = parse(WORKBOOK_BICEP)
    (existing,) = [r for r in document["resources"].values() if r["existing"]]
    assert existing["type"] == "Microsoft.Insights/components"
    (book,) = [
        r for r in document["resources"].values() if r["type"] == "Microsoft.Insights/workbooks"
    ]
    properties = book["config"]["properties"]
    assert properties["category"] == "workbook"
    assert properties["sourceId"]["operator"]["operands"]["operand_2"] == "id"
    data = properties["serializedData"]["function"]
    assert data["type"] == "replace"
    loaded = data["parameters"]["original_string"]["function"]
    assert loaded["type"] == "load_text_content"
    assert (WORKBOOK_BICEP.parent / loaded["parameters"]["file_path"]).resolve() == WORKBOOK_JSON
    assert data["parameters"]["old_string"] == "__APPLICATION_INSIGHTS_ID__"


def test_main_wires_the_workbook_to_the_application_insights_it_creates():
    (module,) = [
        m
        for m in parse(MAIN)["modules"].values()
        if m["detail"]["path"] == "modules/workbook.bicep"
    ]
    given = module_config(module)["params"]["applicationInsightsName"]["operator"]["operands"]
    assert given["operand_1"] == "monitoring"
    assert given["operand_2"]["operator"]["operands"]["operand_2"] == "applicationInsightsName"


def test_the_operations_doc_carries_the_same_queries():
    doc = OPERATIONS_DOC.read_text(encoding="utf-8")
    for name, query in queries().items():
        assert query.replace("{TimeRange:grain}", "5m") in doc, (
            f"{name} is not in {Path(OPERATIONS_DOC).name}"
        )
