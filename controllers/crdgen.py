"""Generate the CustomResourceDefinitions from the pydantic API types.

``python -m controllers.crdgen`` writes ``crds/<plural>.kaizen.dev.yaml`` and the chart's copies under
``charts/kaizen/templates/crds/`` (wrapped in a ``crds.install`` toggle so that ``helm upgrade``
updates them, and in Argo CD's sync wave -1 so that they exist before the objects that use them). ``--check`` writes nothing and exits 1 when a committed file differs.

Each kind's names, printer columns and summary come from its ``KindInfo`` (controllers.api.kindinfo).
The pydantic JSON schema is turned into a *structural* OpenAPI v3 schema: references inlined,
``title`` dropped, optional fields expressed by absence rather than ``null``, and default factories
evaluated so that the API server applies every default the operator relies on.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml
from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema
from pydantic_core import core_schema

from controllers.api import KINDS
from controllers.api.common import API_VERSION, CATEGORY, GROUP, VERSION
from controllers.api.kindinfo import KindInfo

ROOT = Path(__file__).resolve().parent.parent
CRD_DIR = ROOT / "crds"
CHART_CRD_DIR = ROOT / "charts" / "kaizen" / "templates" / "crds"
REGENERATE = "make generate  (or: .venv/bin/python -m controllers.crdgen)"


class _KubernetesSchema(GenerateJsonSchema):
    """Evaluate argument-free default factories, so list and map defaults reach the schema too."""

    def get_default_value(self, schema: core_schema.WithDefaultSchema) -> Any:
        factory = schema.get("default_factory")
        if factory is not None and not schema.get("default_factory_takes_data"):
            value = factory()  # type: ignore[call-arg]
            if isinstance(value, BaseModel):
                return value.model_dump(mode="json", by_alias=True, exclude_none=True)
            return value
        return super().get_default_value(schema)


def structural(node: Any, defs: dict[str, Any]) -> Any:
    """Rewrite one pydantic JSON-schema node into Kubernetes' structural dialect."""
    if isinstance(node, list):
        return [structural(item, defs) for item in node]
    if not isinstance(node, dict):
        return node
    node = dict(node)
    if "$ref" in node:
        target = defs[node.pop("$ref").rsplit("/", 1)[-1]]
        merged = dict(target)
        merged.update(node)  # the field's own description and default win over the type's
        node = merged
    if "anyOf" in node:
        branches = [b for b in node.pop("anyOf") if b.get("type") != "null"]
        if len(branches) != 1:
            raise ValueError(f"unions are not structural: {branches}")
        inner = dict(branches[0])
        inner.update(node)
        node = structural(inner, defs)
        if node.get("default", ...) is None:
            del node["default"]
        return node
    node.pop("title", None)
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "properties":
            out[key] = {name: structural(child, defs) for name, child in value.items()}
        elif key in ("items", "additionalProperties") and isinstance(value, dict):
            out[key] = structural(value, defs)
        else:
            out[key] = value
    # An absent string reads as empty everywhere; and servers before 1.21 reject `default: ""`.
    if out.get("default", ...) is None or out.get("default", ...) == "":
        del out["default"]
    # JSON Schema 2020-12 writes exclusive bounds as numbers; OpenAPI v3.0 as flags beside minimum/maximum.
    for exclusive, inclusive in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        if isinstance(out.get(exclusive), int | float) and not isinstance(out[exclusive], bool):
            out[inclusive] = out.pop(exclusive)
            out[exclusive] = True
    return out


def info_of(module: ModuleType) -> KindInfo:
    """The KindInfo a kind's module (one of ``controllers.api.KINDS``) declares."""
    info: KindInfo = module.INFO
    return info


def kind_schema(module: ModuleType) -> dict[str, Any]:
    info = info_of(module)
    raw = info.model.model_json_schema(by_alias=True, mode="validation", schema_generator=_KubernetesSchema)
    defs = raw.pop("$defs", {})
    body = structural(raw, defs)
    body.pop("description", None)
    properties = body["properties"]
    return {
        "type": "object",
        "description": info.summary,
        "required": ["spec"],
        "properties": {
            "apiVersion": {
                "type": "string",
                "description": f"APIVersion of this representation ({API_VERSION}).",
            },
            "kind": {"type": "string", "description": f"Kind of this representation ({info.kind})."},
            "metadata": {"type": "object"},
            "spec": properties["spec"],
            "status": properties["status"],
        },
    }


def crd(module: ModuleType) -> dict[str, Any]:
    info = info_of(module)
    kind, plural = info.kind, info.plural
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": info.crd_name,
            "labels": {"app.kubernetes.io/part-of": "kaizen"},
        },
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": kind,
                "listKind": f"{kind}List",
                "plural": plural,
                "singular": kind.lower(),
                "shortNames": list(info.short_names),
                "categories": [CATEGORY],
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": info.printer_columns(),
                    "schema": {"openAPIV3Schema": kind_schema(module)},
                }
            ],
        },
    }


HEADER = "# Generated by `python -m controllers.crdgen` from controllers/api/. Do not edit by hand.\n"


def render_crd(module: ModuleType) -> str:
    return HEADER + yaml.safe_dump(crd(module), sort_keys=False, width=120)


CEL_KEY = "x-kubernetes-validations:"
# Servers before 1.25 reject CRDs that carry CEL rules when Helm validates them against the server's
# OpenAPI (and would ignore the rules anyway), so the chart renders the rules only from 1.25 on.
CEL_GATE = '{{- if semverCompare ">=1.25.0-0" .Capabilities.KubeVersion.Version }}'


def gate_cel_rules(body: str) -> str:
    """Wrap every ``x-kubernetes-validations`` block of a YAML dump in the 1.25 capability check."""
    lines = body.splitlines()
    out: list[str] = []
    index = 0
    while index < len(lines):
        line = lines[index]
        if line.strip() != CEL_KEY:
            out.append(line)
            index += 1
            continue
        indent = len(line) - len(line.lstrip())
        end = index + 1
        # The block is every deeper line, plus list items at the key's own indent (PyYAML's style).
        while end < len(lines):
            following = lines[end]
            depth = len(following) - len(following.lstrip())
            if depth > indent or (depth == indent and following.lstrip().startswith("- ")):
                end += 1
            else:
                break
        out += [CEL_GATE, *lines[index:end], "{{- end }}"]
        index = end
    return "\n".join(out) + "\n"


def render_chart_crd(module: ModuleType) -> str:
    body = yaml.safe_dump(crd(module), sort_keys=False, width=120)
    # Helm would read "{{" in a description as a template; the API types never contain it.
    if "{{" in body:
        raise ValueError(f"{info_of(module).kind}: '{{{{' in the schema would break the chart template")
    # Argo CD applies sync wave -1 before wave 0, so the CRDs are Established before any Kaizen object.
    annotations = (
        "  annotations:\n"
        '    argocd.argoproj.io/sync-wave: "-1"\n'
        "    {{- if .Values.crds.keep }}\n    helm.sh/resource-policy: keep\n    {{- end }}\n"
    )
    body = body.replace("  labels:\n", annotations + "  labels:\n", 1)
    body = gate_cel_rules(body)
    return HEADER + "{{- if .Values.crds.install }}\n" + body + "{{- end }}\n"


def outputs() -> dict[Path, str]:
    """Every generated file and its expected content."""
    files: dict[Path, str] = {}
    for module in KINDS:
        name = f"{info_of(module).crd_name}.yaml"
        files[CRD_DIR / name] = render_crd(module)
        files[CHART_CRD_DIR / name] = render_chart_crd(module)
    return files


def stale_files() -> list[Path]:
    """Generated files whose committed content differs from a fresh generation (or that are missing)."""
    return [path for path, text in outputs().items() if not path.exists() or path.read_text() != text]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 if a generated file is stale"
    )
    args = parser.parse_args(argv)
    if args.check:
        stale = stale_files()
        for path in stale:
            print(f"stale: {path.relative_to(ROOT)}", file=sys.stderr)
        if stale:
            print(f"regenerate with: {REGENERATE}", file=sys.stderr)
        return 1 if stale else 0
    for path, text in outputs().items():
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
            print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
