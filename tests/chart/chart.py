"""The chart as tests see it: rendered through the real Helm library, parsed into objects.

``render`` returns the Kubernetes objects a ``helm install`` would create (hooks included, NOTES.txt
apart), so every test reads the same thing a cluster would receive.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import helm_python as helm
import yaml

from tests.schemas import ROOT

CHART_DIR = ROOT / "charts" / "kaizen"
CI_VALUES_DIR = CHART_DIR / "ci"
RELEASE = "kaizen"
NAMESPACE = "kaizen-system"


def ci_values(name: str) -> dict[str, Any]:
    """One of the chart-testing value sets in charts/kaizen/ci/ (``default``, ``namespaced``, ``embedded``)."""
    values: dict[str, Any] = helm.values_from_yaml((CI_VALUES_DIR / f"{name}-values.yaml").read_text())
    return values


def merged(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """``override`` laid over ``base`` key by key, as Helm merges several -f files."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merged(out[key], value)
        else:
            out[key] = value
    return out


def render_files(values: dict[str, Any], namespace: str = NAMESPACE) -> dict[str, str]:
    """Template path -> rendered text, for one set of values (raises Helm's error on bad values)."""
    with helm.Chart.load(CHART_DIR) as chart:
        return chart.render(values, name=RELEASE, namespace=namespace, is_install=True)


def render(values: dict[str, Any], namespace: str = NAMESPACE) -> list[dict[str, Any]]:
    """Every object the chart would create with these values."""
    objects = []
    for path, text in sorted(render_files(values, namespace).items()):
        if not path.endswith(".yaml"):
            continue
        objects += [doc for doc in yaml.safe_load_all(text) if doc]
    return objects


def notes(values: dict[str, Any]) -> str:
    return render_files(values)[f"{CHART_DIR.name}/templates/NOTES.txt"]


def find(objects: list[dict[str, Any]], kind: str, name: str | None = None) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]


def one(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    matches = find(objects, kind, name)
    assert len(matches) == 1, f"expected one {kind}/{name}, found {len(matches)}"
    return matches[0]


def pod_specs(objects: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(``Kind/name``, pod spec) for every workload that makes pods."""
    for obj in objects:
        if obj["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job", "ReplicaSet"):
            yield f"{obj['kind']}/{obj['metadata']['name']}", obj["spec"]["template"]["spec"]
        elif obj["kind"] == "CronJob":
            yield f"CronJob/{obj['metadata']['name']}", obj["spec"]["jobTemplate"]["spec"]["template"]["spec"]
        elif obj["kind"] == "Pod":
            yield f"Pod/{obj['metadata']['name']}", obj["spec"]


def container(pod_spec: dict[str, Any], name: str) -> dict[str, Any]:
    for c in [*pod_spec.get("initContainers", []), *pod_spec["containers"]]:
        if c["name"] == name:
            return dict(c)
    raise AssertionError(f"no container {name!r} in {[c['name'] for c in pod_spec['containers']]}")


def env(container_spec: dict[str, Any]) -> dict[str, Any]:
    """Environment variable name -> its value or valueFrom."""
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container_spec.get("env", [])}


def relative(path: Path) -> str:
    return str(path.relative_to(ROOT))
