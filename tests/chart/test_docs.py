"""The chart's documentation keeps up with it: every value in values.yaml has a comment and a row in
charts/kaizen/README.md; docs/argocd.md registers the health script for every kind."""

from __future__ import annotations

import re

from controllers.api import KINDS
from tests.chart.chart import CHART_DIR
from tests.schemas import ROOT

KEY = re.compile(r"^(\s*)([A-Za-z_][\w]*):")


def documented_values() -> list[tuple[str, str]]:
    """(dotted key, description) for every ``# --`` comment in values.yaml (helm-docs' convention)."""
    out: list[tuple[str, str]] = []
    stack: list[tuple[int, str]] = []
    pending: list[str] = []
    for line in (CHART_DIR / "values.yaml").read_text().splitlines():
        stripped = line.strip()
        if stripped.startswith("# --"):
            pending = [stripped.removeprefix("# --").strip()]
        elif stripped.startswith("#") and pending:
            pending.append(stripped.lstrip("#").strip())
        elif match := KEY.match(line):
            indent, key = len(match.group(1)), match.group(2)
            while stack and stack[-1][0] >= indent:
                stack.pop()
            stack.append((indent, key))
            if pending:
                out.append((".".join(k for _, k in stack), " ".join(pending)))
            pending = []
        else:
            pending = []
    return out


def value_keys() -> list[str]:
    """Every key of values.yaml whose value is not a map (the settings a user sets)."""
    keys: list[str] = []
    stack: list[tuple[int, str]] = []
    lines = (CHART_DIR / "values.yaml").read_text().splitlines()
    for number, line in enumerate(lines):
        match = KEY.match(line)
        if not match or line.strip().startswith("#"):
            continue
        indent, key = len(match.group(1)), match.group(2)
        while stack and stack[-1][0] >= indent:
            stack.pop()
        stack.append((indent, key))
        rest = line[match.end() :].strip()
        following = next((n for n in lines[number + 1 :] if n.strip() and not n.strip().startswith("#")), "")
        nested = not rest and len(following) - len(following.lstrip()) > indent
        if not nested:
            keys.append(".".join(k for _, k in stack))
    return keys


def test_every_value_has_a_description() -> None:
    documented = {key for key, _ in documented_values()}
    # A documented map (e.g. resources) covers the keys under it.
    undocumented = [k for k in value_keys() if not any(k == d or k.startswith(d + ".") for d in documented)]
    assert not undocumented, f"values.yaml keys without a '# --' comment: {undocumented}"


def test_readme_has_a_row_for_every_documented_value() -> None:
    readme = (CHART_DIR / "README.md").read_text()
    missing = [key for key, _ in documented_values() if f"| `{key}` |" not in readme]
    assert not missing, f"charts/kaizen/README.md lacks rows for: {missing}"


def test_argocd_doc_registers_the_health_script_for_every_kind() -> None:
    doc = (ROOT / "docs" / "argocd.md").read_text()
    for module in KINDS:
        assert f"kaizen.dev_{module.KIND}" in doc, module.KIND
    assert "charts/kaizen/argocd/health.lua" in doc
    assert 'argocd.argoproj.io/sync-wave: "-1"' in doc
