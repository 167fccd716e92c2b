"""A kind's structural OpenAPI schema, from its pydantic model: what its CRD carries and what the
operator checks a spec against on servers that do not enforce the CEL rules themselves.

Pydantic writes JSON Schema 2020-12; Kubernetes wants OpenAPI v3.0 in its "structural" dialect (no
``$ref``, no ``anyOf`` unions, every default materialised, exclusive bounds as flags). Pure.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema
from pydantic_core import core_schema

from controllers.api.common import API_VERSION
from controllers.api.kindinfo import KindInfo


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


def kind_schema(info: KindInfo) -> dict[str, Any]:
    """The structural OpenAPI schema of one kind, as its CRD carries it and the operator checks specs against."""
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
