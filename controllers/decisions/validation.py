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
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from controllers.api import KINDS, cel
from controllers.api.kindinfo import KindInfo
from controllers.api.schema import kind_schema

M = TypeVar("M", bound=BaseModel)

INFOS: dict[str, KindInfo] = {module.INFO.kind: module.INFO for module in KINDS}


@cache
def spec_schema(kind: str) -> dict[str, Any]:
    schema: dict[str, Any] = kind_schema(INFOS[kind])["properties"]["spec"]
    return schema


# Evaluating the CEL rules costs milliseconds and every timer pass of every object asks again; the
# answer depends only on the spec (and, for transition rules, the previous one), so it is kept by
# their hashes. Cleared when full: a bound, not a policy.
_KNOWN: dict[tuple[str, str, str], tuple[str, ...]] = {}
KNOWN_MAX = 4096


def violations(kind: str, spec: dict[str, Any], old_spec: dict[str, Any] | None = None) -> list[str]:
    """``spec.<path>: <message>`` for every rule the spec breaks (empty when it is fine)."""
    key = (kind, spec_hash(spec), spec_hash(old_spec) if old_spec is not None else "")
    found = _KNOWN.get(key)
    if found is None:
        found = tuple(
            f"spec{v.path if v.path != '<root>' else ''}: {v.message}"
            for v in cel.validate(spec_schema(kind), spec, old_spec)
        )
        if len(_KNOWN) >= KNOWN_MAX:
            _KNOWN.clear()
        _KNOWN[key] = found
    return list(found)


def parse(model: type[M], body: dict[str, Any]) -> tuple[M | None, list[str]]:
    """The typed object, or the fields pydantic refused (named by their wire path)."""
    try:
        return model.model_validate(body), []
    except ValidationError as error:
        return None, [".".join(str(part) for part in e["loc"]) + f": {e['msg']}" for e in error.errors()[:5]]


def spec_hash(spec: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(spec, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:16]
