"""Evaluate a CRD's ``x-kubernetes-validations`` the way an API server >= 1.25 does, in Python.

API servers before 1.25 ignore CEL, so the tests check the rules here and the operator checks them
again on every reconcile (reporting InvalidSpec naming the field instead of acting on a contradictory
spec): defaults are applied
first, numbers declared ``type: number`` are doubles (as in Kubernetes' CEL type mapping), every
rule runs wherever its schema node has a value, and rules that mention ``oldSelf`` (transition
rules) run only on updates where the old object has a value at the same place.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from functools import cache
from typing import Any

import celpy
from celpy.adapter import json_to_cel
from celpy.evaluation import CELEvalError


@dataclass(frozen=True)
class Violation:
    path: str
    message: str


@cache
def _program(rule: str) -> Any:
    env = celpy.Environment()
    return env.program(env.compile(rule))


def apply_defaults(schema: dict[str, Any], value: Any) -> Any:
    """Structural defaulting as the API server does it: missing properties take their default, recursively."""
    value = copy.deepcopy(value)
    if schema.get("type") == "object" or "properties" in schema:
        if not isinstance(value, dict):
            return value
        for name, child in schema.get("properties", {}).items():
            if name not in value and "default" in child:
                value[name] = copy.deepcopy(child["default"])
            if name in value:
                value[name] = apply_defaults(child, value[name])
    elif schema.get("type") == "array" and isinstance(value, list) and isinstance(schema.get("items"), dict):
        value = [apply_defaults(schema["items"], item) for item in value]
    return value


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
    violations: list[Violation] = []
    for rule in schema.get("x-kubernetes-validations", []):
        transition = "oldSelf" in rule["rule"]
        if transition and old is None:
            continue
        activation = {"self": json_to_cel(_typed(schema, new))}
        if transition:
            activation["oldSelf"] = json_to_cel(_typed(schema, old))
        result = _program(rule["rule"]).evaluate(activation)
        if isinstance(result, CELEvalError):
            raise ValueError(f"rule {rule['rule']!r} at {path or '<root>'} failed to evaluate: {result}")
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
