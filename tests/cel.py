"""Evaluate a CRD's ``x-kubernetes-validations`` the way an API server >= 1.25 does, in Python.

The local test server (v1.20) ignores CEL, so the rules are checked here: defaults are applied
first, numbers declared ``type: number`` are doubles (as in Kubernetes' CEL type mapping), every
rule runs wherever its schema node has a value, and rules that mention ``oldSelf`` (transition
rules) run only on updates where the old object has a value at the same place.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

import celpy

from tests.schemas import apply_defaults


@dataclass(frozen=True)
class Violation:
    path: str
    message: str


@cache
def _program(rule: str) -> Any:
    env = celpy.Environment()
    return env.program(env.compile(rule))


def _typed(schema: dict[str, Any], value: Any) -> Any:
    """JSON value → JSON value whose Python types match Kubernetes' CEL types for this schema."""
    kind = schema.get("type")
    if kind == "number" and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if kind == "object" and isinstance(value, dict):
        props = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        return {
            k: _typed(props.get(k) or (extra if isinstance(extra, dict) else {}), v) for k, v in value.items()
        }
    if kind == "array" and isinstance(value, list):
        return [_typed(schema.get("items", {}), v) for v in value]
    return value


def rules_in(schema: dict[str, Any], path: str = "") -> list[tuple[str, str, str]]:
    """Every (path, rule, message) in a schema."""
    found = [(path, r["rule"], r["message"]) for r in schema.get("x-kubernetes-validations", [])]
    for name, child in schema.get("properties", {}).items():
        found += rules_in(child, f"{path}.{name}")
    if isinstance(schema.get("items"), dict):
        found += rules_in(schema["items"], f"{path}[]")
    return found


def validate(schema: dict[str, Any], new: Any, old: Any | None = None) -> list[Violation]:
    """All CEL violations of ``new`` (an update from ``old`` when given) against ``schema``."""
    new = apply_defaults(schema, new)
    old = apply_defaults(schema, old) if old is not None else None
    return _validate(schema, new, old, "")


def _validate(schema: dict[str, Any], new: Any, old: Any | None, path: str) -> list[Violation]:
    violations = []
    for rule in schema.get("x-kubernetes-validations", []):
        transition = "oldSelf" in rule["rule"]
        if transition and old is None:
            continue
        activation = {"self": celpy.json_to_cel(_typed(schema, new))}
        if transition:
            activation["oldSelf"] = celpy.json_to_cel(_typed(schema, old))
        result = _program(rule["rule"]).evaluate(activation)
        if isinstance(result, celpy.CELEvalError):
            raise AssertionError(f"rule {rule['rule']!r} at {path or '<root>'} failed to evaluate: {result}")
        if not bool(result):
            violations.append(Violation(path or "<root>", rule["message"]))
    if isinstance(new, dict):
        for name, child in schema.get("properties", {}).items():
            if name in new:
                old_child = old.get(name) if isinstance(old, dict) else None
                violations += _validate(child, new[name], old_child, f"{path}.{name}")
    if isinstance(new, list) and isinstance(schema.get("items"), dict):
        for index, item in enumerate(new):
            # Items are only correlated with old ones in list-maps; Kaizen's item rules need no oldSelf.
            violations += _validate(schema["items"], item, None, f"{path}[{index}]")
    return violations
