"""The API against its own OpenAPI document: schemathesis generates requests for every
operation from the document the running app serves (devtools/host.py on Azurite and the
Service Bus emulator) and runs all its checks: undocumented status codes or content types,
schema-valid requests refused, schema-violating ones accepted, responses that break their
schema, wrong answers to undeclared methods, resources still served after DELETE.

`CONVEYOR_FUZZ_EXAMPLES` (default 25 per operation) scales the run; the seed is fixed so a
failure reproduces. The two operations that read every queue's dead letters per request
(the summary and the maintenance pass, about a second or more each) get a fifth of that in
the fuzzing phase: they take one bounded integer or nothing at all, and the coverage phase
still sends them every boundary and wrong-type value. tests/fuzz_hooks.py draws date-times
(a job's `run_at`) from the window the document describes in words, between now and the
scheduling horizon.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from devtools.host_process import HostProcess, run_host
from tests.fixtures.app import ADMIN_KEY

pytestmark = [pytest.mark.integration, pytest.mark.long_running]

REPO_ROOT = Path(__file__).resolve().parents[1]
SCHEMATHESIS = REPO_ROOT / ".venv" / "bin" / "schemathesis"
HOOKS = Path(__file__).resolve().parent / "fuzz_hooks.py"
EXAMPLES = int(os.environ.get("CONVEYOR_FUZZ_EXAMPLES", "25"))
SLOW_OPERATIONS = ("GET /api/admin/dead-letters", "POST /api/admin/maintenance")
SLOW_EXAMPLES = max(1, EXAMPLES // 5)
SEED = 20261124


def schemathesis_config() -> str:
    """Examples per operation live in the config, not on the command line: a CLI option
    would override the per-operation setting."""
    return "\n".join(
        [
            f"hooks = {json.dumps(str(HOOKS))}",
            f"generation.max-examples = {EXAMPLES}",
            "",
            "[[operations]]",
            f"include-name = {json.dumps(list(SLOW_OPERATIONS))}",
            f"generation.max-examples = {SLOW_EXAMPLES}",
            "",
        ]
    )


@pytest.fixture(scope="module")
def host(
    app_env: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[HostProcess]:
    log_path = tmp_path_factory.mktemp("fuzz") / "host.log"
    with run_host(app_env, log_path) as running:
        yield running


@pytest.mark.timeout(600)
def test_the_api_matches_its_openapi_document(host: HostProcess, tmp_path: Path) -> None:
    config = tmp_path / "schemathesis.toml"
    config.write_text(schemathesis_config(), encoding="utf-8")
    result = subprocess.run(
        [
            str(SCHEMATHESIS),
            "--config-file",
            str(config),
            "run",
            f"{host.base_url}/api/openapi.json",
            "--header",
            f"x-api-key: {ADMIN_KEY}",
            "--checks",
            "all",
            # Pausing intake would turn every later submit of that type into a 503 by design;
            # tests/integration/test_intake.py covers the route.
            "--exclude-operation-id",
            "set_intake",
            "--seed",
            str(SEED),
            "--generation-deterministic",
            "--no-color",
        ],
        capture_output=True,
        text=True,
        timeout=560,
        check=False,
        cwd=tmp_path,
    )
    output = result.stdout + result.stderr
    counts = re.search(r"(\d+) generated, (\d+) (?:passed|found)", output)
    cases = int(counts[1]) if counts else 0
    print(f"\napi fuzz: {cases} generated cases, exit code {result.returncode}")
    (REPO_ROOT / ".local").mkdir(exist_ok=True)
    (REPO_ROOT / ".local" / "api-fuzz.txt").write_text(output, encoding="utf-8")
    (REPO_ROOT / ".local" / "api-fuzz.json").write_text(
        json.dumps({"cases": cases, "exit_code": result.returncode}), encoding="utf-8"
    )
    assert result.returncode == 0, output[-6000:]
    assert cases >= 500, output[-3000:]
    selected = re.search(r"Selected: (\d+)/", output)
    tested = re.search(r"Tested: (\d+)", output)
    assert selected, output[-3000:]
    assert tested, output[-3000:]
    assert tested[1] == selected[1], output[-3000:]  # every selected operation was tested
