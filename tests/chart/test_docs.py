"""The chart's documentation keeps up with it: every value in values.yaml has a comment and a row in
charts/kaizen/README.md; docs/argocd.md registers the health script for every kind."""

from __future__ import annotations

import re
from typing import Any

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


def readme_quickstart() -> str:
    """The shell block of the README's helm install quickstart."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("### Quickstart with `helm install`", 1)[1]
    return section.split("```sh\n", 1)[1].split("```", 1)[0]


def test_readme_states_the_prerequisites_the_operator_writes_for() -> None:
    from controllers.builders.inferenceservice import API as INFERENCE_SERVICE_API

    readme = (ROOT / "README.md").read_text()
    prerequisites = readme.split("### Prerequisites", 1)[1].split("### Quickstart", 1)[0]
    assert "ray.io/v1" in prerequisites
    assert '"apiVersion": "ray.io/v1"' in (ROOT / "controllers" / "builders" / "rayjob.py").read_text()
    assert INFERENCE_SERVICE_API in prerequisites
    for needed in ("KubeRay", "KServe", "NVIDIA device plugin", "object storage", "docs/storage.md"):
        assert needed in prerequisites, needed
    # The order of the page: what Kaizen is, two commands, the cluster install, then the maps.
    headings = [line for line in readme.splitlines() if line.startswith("## ")]
    order = ["## Two commands on a fresh machine", "## Install on a real cluster", "## Repository map"]
    assert [h for h in headings if h in order] == order


def test_readme_quickstart_renders_and_applies_files_that_exist() -> None:
    from tests.chart.chart import one, render

    script = readme_quickstart().replace("\\\n", " ")
    [install] = [line for line in script.splitlines() if line.startswith("helm install")]
    values: dict[str, Any] = {}
    for assignment in re.findall(r"--set (\S+)", install):
        key, _, value = assignment.partition("=")
        node = values
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = True if value == "true" else value
    objects = render(values)
    assert one(objects, "Ingress", "kaizen-gateway")["spec"]["rules"][0]["host"] == "kaizen.example.com"
    images = {
        c["image"]
        for o in objects
        if o["kind"] == "Deployment"
        for c in o["spec"]["template"]["spec"]["containers"]
    }
    assert images == {"registry.example.com/platform/kaizen:0.1.0"}
    applied = re.findall(r"kubectl apply -n \S+ -f (\S+)", script)
    assert applied
    assert all((ROOT / path).is_file() for path in applied), applied
    assert "kubectl kaizen get" in script
    assert "make images" in script
