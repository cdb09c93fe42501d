"""Reading the Bicep templates offline: pycep-parser turns each file into JSON.

No Bicep compiler runs here, so the checks a compiler and `azd provision` would make first
(module parameters, outputs, file paths) are made on the parsed templates instead.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any

from pycep import BicepParser

REPO = Path(__file__).resolve().parents[2]
INFRA = REPO / "infra"
MAIN = INFRA / "main.bicep"


@functools.cache
def parse(path: Path) -> dict[str, Any]:
    return dict(BicepParser().parse(file_path=path))


def bicep_files() -> list[Path]:
    return sorted(INFRA.rglob("*.bicep"))


def symbols(document: dict[str, Any]) -> set[str]:
    """Every name a file declares. pycep writes a reference to one as a bare string, so a
    string equal to one of these is a reference, not a literal."""
    return {
        name
        for section in ("parameters", "variables", "resources", "modules")
        for name in document.get(section, {})
    }


def is_required(parameter: dict[str, Any]) -> bool:
    return parameter.get("default") is None and not any(
        d.get("type") == "nullable" for d in parameter.get("decorators", [])
    )


def module_config(module: dict[str, Any]) -> dict[str, Any]:
    """A module's body, also when it is conditional (`= if (...) {...}`)."""
    config: dict[str, Any] = module["config"]
    return config["config"] if "condition" in config else config


def resource_config(document: dict[str, Any], name: str) -> dict[str, Any]:
    config: dict[str, Any] = document["resources"][name]["config"]
    return config


def resources_of_type(document: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [r for r in document["resources"].values() if r["type"] == kind]


def loop_body(config: dict[str, Any]) -> dict[str, Any]:
    """The body of `[for x in y: {...}]` (or the config itself when there is no loop)."""
    return config["config"] if "loop_type" in config else config


def outputs_used(path: Path) -> set[tuple[str, str]]:
    """(symbol, output) for every `symbol.outputs.name` in a file."""
    text = path.read_text(encoding="utf-8")
    return set(re.findall(r"\b(\w+)!?\.outputs\.(\w+)", text))  # `m!.outputs`: m is conditional
