"""The one layering rule import-linter cannot state: it sees `azure` as one external package,
so `azure.functions` (the Functions programming model) is checked here by reading imports."""

from __future__ import annotations

import ast
from pathlib import Path

CORE = Path(__file__).resolve().parents[2] / "shared"


def imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_the_core_never_imports_azure_functions():
    offenders = {
        str(path.relative_to(CORE.parent)): sorted(
            n
            for n in imported_modules(path)
            if n == "azure.functions" or n.startswith("azure.functions.")
        )
        for path in CORE.rglob("*.py")
    }
    assert {p: m for p, m in offenders.items() if m} == {}


def test_the_check_sees_an_import(tmp_path: Path):
    sample = tmp_path / "sample.py"
    sample.write_text("from azure import functions\nimport azure.functions as func\n")
    assert {"azure.functions"} <= imported_modules(sample)


MAX_MODULE_LINES = 400
APP_CODE = ["function_app.py", "functions", "shared", "devtools", "bench"]


def test_no_module_of_the_app_or_its_tools_is_over_400_lines():
    """A module you can read in one sitting: past this, an idea wants a home of its own."""
    repo = CORE.parent
    paths = [
        path
        for top in APP_CODE
        for path in ([repo / top] if top.endswith(".py") else sorted((repo / top).rglob("*.py")))
    ]
    long = {
        str(p.relative_to(repo)): n
        for p in paths
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES
    }
    assert long == {}
