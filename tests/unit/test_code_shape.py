"""Modules one can read in one sitting and functions that fit on a screen (docs/architecture.md).

Production code (controllers/, trainer/, operator/): no module over 300 lines, no function over 60;
the scripts and stylesheets shipped with it (the gateway's pages) no longer than a module either.
The development stack (devstack/) keeps the function limit. Migrations are generated-then-edited
history and are left out.
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.schemas import ROOT

PRODUCTION = ("controllers", "trainer", "operator")
MODULE_LINES = 300
FUNCTION_LINES = 60


def sources(*folders: str) -> list[Path]:
    return [
        path
        for folder in folders
        for path in sorted((ROOT / folder).rglob("*.py"))
        if "migrations" not in path.parts
    ]


def long_functions(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    return [
        f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno is not None
        and node.end_lineno - node.lineno + 1 > FUNCTION_LINES
    ]


def test_the_scan_sees_the_code() -> None:
    found = sources(*PRODUCTION)
    assert len(found) > 100, "the scan found too few modules: did the layout move?"
    assert any(path.name == "dispatch.py" for path in found)


def test_no_production_module_is_over_300_lines() -> None:
    over = [
        f"{path.relative_to(ROOT)} ({lines} lines)"
        for path in sources(*PRODUCTION)
        if (lines := len(path.read_text().splitlines())) > MODULE_LINES
    ]
    assert not over, "split these by concern: " + ", ".join(over)


def test_no_function_is_over_60_lines() -> None:
    over = [entry for path in sources(*PRODUCTION, "devstack") for entry in long_functions(path)]
    assert not over, "extract well-named steps from: " + ", ".join(over)


def test_shipped_scripts_and_stylesheets_are_as_short_as_modules() -> None:
    """The pages' hand-written assets (controllers/gateway/ui_static/) are held to the module limit too."""
    assets = [
        path for folder in PRODUCTION for ext in ("js", "css") for path in (ROOT / folder).rglob(f"*.{ext}")
    ]
    assert any(path.name == "ui.js" for path in assets), "the scan found no page script: did it move?"
    over = [
        f"{path.relative_to(ROOT)} ({lines} lines)"
        for path in assets
        if (lines := len(path.read_text().splitlines())) > MODULE_LINES
    ]
    assert not over, "split these: " + ", ".join(over)
