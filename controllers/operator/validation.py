"""Spec checks the API server may not have made, reported as InvalidSpec naming the field.

API servers before 1.25 ignore the CRDs' CEL rules, so a contradictory spec (an ABTest with three
variants, RayJobsAPI without rayAddress) can be stored. The operator evaluates the same rules from the
same generated schema before acting, and answers with a condition instead of a traceback or a crash
loop. Transition rules (immutability) need the previous spec: Kopf's last-handled copy is passed in.
"""

from __future__ import annotations

import hashlib
import json
from functools import cache
from types import ModuleType
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from controllers import crdgen
from controllers.api import cel, experiment, learningpolicy, shadowmodel, trainingrun

M = TypeVar("M", bound=BaseModel)

MODULES: dict[str, ModuleType] = {m.KIND: m for m in (learningpolicy, trainingrun, shadowmodel, experiment)}


@cache
def spec_schema(kind: str) -> dict[str, Any]:
    schema: dict[str, Any] = crdgen.kind_schema(MODULES[kind])["properties"]["spec"]
    return schema


def violations(kind: str, spec: dict[str, Any], old_spec: dict[str, Any] | None = None) -> list[str]:
    """``spec.<path>: <message>`` for every rule the spec breaks (empty when it is fine)."""
    found = cel.validate(spec_schema(kind), spec, old_spec)
    return [f"spec{v.path if v.path != '<root>' else ''}: {v.message}" for v in found]


def parse(model: type[M], body: dict[str, Any]) -> tuple[M | None, list[str]]:
    """The typed object, or the fields pydantic refused (named by their wire path)."""
    try:
        return model.model_validate(body), []
    except ValidationError as error:
        return None, [".".join(str(part) for part in e["loc"]) + f": {e['msg']}" for e in error.errors()[:5]]


def spec_hash(spec: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(spec, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:16]
