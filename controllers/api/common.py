"""Types shared by the four Kaizen kinds, and the helpers that keep their schemas conventional.

Every field the API exposes is declared through these helpers so that the generated CRDs carry a
description, a bound and (where the operator has one) a default. The rules are checked over the
generated schemas by ``tests/unit/test_api_conventions.py``.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from pydantic.alias_generators import to_camel

GROUP = "kaizen.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
CATEGORY = "kaizen"

# Patterns the API server enforces (Go RE2 syntax, which these stay within).
DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
DURATION = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h|d))+$"
QUANTITY = r"^[0-9]+(\.[0-9]+)?(m|k|Ki|Mi|Gi|Ti|M|G|T)?$"
STORAGE_URI = r"^(file|s3|gs|gcs|az|abfs|hf|pvc|https?)://[^\s]+$|^/[^\s]*$"
SHA256_DIGEST = r"^sha256:[a-f0-9]{64}$"
# Five cron fields (minute hour day-of-month month day-of-week) or a macro. The pattern catches
# wrong field counts and stray characters; the operator parses the expression fully.
CRON = (
    r"^(@(yearly|annually|monthly|weekly|daily|hourly)"
    r"|([0-9*,/-]+ +){2}[0-9*,/?LW-]+ +[0-9A-Za-z*,/-]+ +[0-9A-Za-z*,/?L#-]+)$"
)

Name = Annotated[str, StringConstraints(min_length=1, max_length=63, pattern=DNS_LABEL)]
ObjectName = Annotated[str, StringConstraints(min_length=1, max_length=253, pattern=DNS_SUBDOMAIN)]
Duration = Annotated[str, StringConstraints(min_length=2, max_length=32, pattern=DURATION)]


_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h|d)")
_DURATION_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(text: str) -> timedelta:
    """A Duration string (``90s``, ``1h30m``, ``7d``) as a timedelta; the schema has checked its form."""
    if not re.fullmatch(DURATION, text):
        raise ValueError(f"not a duration: {text!r} (use e.g. 30s, 15m, 6h, 7d or 1h30m)")
    seconds = sum(float(n) * _DURATION_SECONDS[unit] for n, unit in _DURATION_PART.findall(text))
    return timedelta(seconds=seconds)


Quantity = Annotated[str, StringConstraints(min_length=1, max_length=32, pattern=QUANTITY)]
StorageURI = Annotated[str, StringConstraints(min_length=1, max_length=1024, pattern=STORAGE_URI)]
Digest = Annotated[str, StringConstraints(min_length=71, max_length=71, pattern=SHA256_DIGEST)]
Message = Annotated[str, StringConstraints(max_length=4096)]
Fraction = Annotated[float, Field(ge=0.0, le=1.0)]


class KaizenModel(BaseModel):
    """Base of every API type: camelCase on the wire, snake_case in Python.

    Unknown fields are ignored when parsing: the API server prunes them before the operator sees an
    object, and an operator must not crash on a field added by a newer version of itself.
    """

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="ignore",
        use_enum_values=False,
        validate_default=True,
    )

    def to_wire(self) -> dict[str, Any]:
        """The JSON-ready body the API server expects (aliases, enum values, no unset Nones)."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


def created_at(metadata: dict[str, Any], default: datetime) -> datetime:
    """An object's ``metadata.creationTimestamp`` (``default`` before the API server has set one)."""
    stamp = metadata.get("creationTimestamp")
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")) if stamp else default


def section(model: type[KaizenModel], description: str) -> Any:
    """A nested settings object that always exists, filled with its own defaults.

    ``default: {}`` in the schema makes the API server create the object and then default its
    fields, so ``kubectl get -o yaml`` shows every setting the operator will use.
    """
    return Field(default_factory=model, description=description, json_schema_extra={"default": {}})


def cel(*rules: tuple[str, str]) -> dict[str, Any]:
    """``x-kubernetes-validations`` for a model: (CEL rule, message) pairs, checked on clusters >= 1.25."""
    return {"x-kubernetes-validations": [{"rule": rule, "message": message} for rule, message in rules]}


class ConditionStatus(StrEnum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class Condition(KaizenModel):
    """One aspect of an object's state, in the Kubernetes ``metav1.Condition`` shape."""

    type: str = Field(
        description="What this condition is about, in PascalCase (e.g. Ready, Succeeded, RolledBack).",
        min_length=1,
        max_length=64,
        pattern=r"^[A-Z][A-Za-z0-9]*$",
    )
    status: ConditionStatus = Field(description="Whether the condition holds: True, False or Unknown.")
    reason: str = Field(
        description="Why the condition has its status, one CamelCase word (e.g. InvalidSpec, WaitingForTraffic).",
        min_length=1,
        max_length=128,
        pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$",
    )
    message: Message = Field(default="", description="A sentence for people: what happened and what to do.")
    last_transition_time: datetime = Field(description="When the status last changed (RFC 3339).")
    observed_generation: int = Field(
        default=0, ge=0, description="The metadata.generation this condition was computed from."
    )


def conditions_field() -> Any:
    return Field(
        default_factory=list,
        max_length=16,
        description="The object's conditions, one per type. Ready summarises the others.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )


def observed_generation_field() -> Any:
    return Field(
        default=0,
        ge=0,
        description="The metadata.generation the operator last acted on; behind generation means not yet seen.",
    )


class SecretKeyReference(KaizenModel):
    """A key of a Secret in the same namespace."""

    name: ObjectName = Field(description="Name of the Secret.")
    key: str = Field(
        default="url",
        min_length=1,
        max_length=253,
        pattern=r"^[-._a-zA-Z0-9]+$",
        description="Key within the Secret whose value is used.",
    )


class Toleration(KaizenModel):
    """A pod toleration for tainted (typically GPU) nodes."""

    key: str | None = Field(
        default=None,
        min_length=1,
        max_length=316,
        description="Taint key to tolerate; unset matches all keys.",
    )
    operator: str = Field(
        default="Equal",
        pattern=r"^(Equal|Exists)$",
        max_length=6,
        description="Equal compares the value; Exists tolerates any value.",
    )
    value: str | None = Field(
        default=None, max_length=63, description="Taint value to match with operator Equal."
    )
    effect: str | None = Field(
        default=None,
        pattern=r"^(NoSchedule|PreferNoSchedule|NoExecute)$",
        max_length=16,
        description="Taint effect to tolerate; unset matches all effects.",
    )


def endpoint_field(description: str) -> Any:
    """An optional OpenAI-compatible (or other HTTP) base URL."""
    return Field(default=None, max_length=512, pattern=r"^https?://[^\s]+$", description=description)


def route_endpoint_field(description: str) -> Any:
    """An optional base URL that becomes a route's upstream: http(s) with no user info, query or
    fragment (``controllers.api.routes`` checks the rest, and the gateway the installation's hosts)."""
    return Field(
        default=None, max_length=512, pattern=r"^https?://[^\s/?#@]+(/[^\s?#]*)?$", description=description
    )


def model_name_field(description: str) -> Any:
    """An optional model name as a serving endpoint knows it."""
    return Field(default=None, min_length=1, max_length=256, description=description)


def string_map(description: str, max_properties: int = 32) -> Any:
    """A bounded map of short strings (labels, node selectors)."""
    return Field(
        default_factory=dict,
        description=description,
        json_schema_extra={"maxProperties": max_properties},
    )


LabelValue = Annotated[str, StringConstraints(max_length=63)]
