"""The facts about one Kaizen kind that are not its schema, kept in one record beside its types.

Each kind's module (``controllers/api/<kind>.py``) declares a ``KindInfo``: the names kubectl knows
it by, the columns ``kubectl get`` shows, where it lives in the REST API and when a stored object is
at rest. The CRD generator, ``controllers.api.kinds`` and the operator's registry all read it, so a
plural or the group is spelled once.

At rest means finished, with every effect of its last decision in place. The resync loop reconciles
an object at rest only every ``Settings.rest_seconds`` (after a restart, at a random point of that
interval), so the work of each pass follows the objects that are still moving, not everything a
namespace has accumulated: a track with two hundred finished runs should not make the operator slower
to notice the two hundred and first. An edited spec (generation ahead of observedGeneration) is never
at rest. The rules are pure functions of the stored object, as the API server returns it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from controllers.api.common import GROUP, VERSION, KaizenModel
from controllers.api.intervention import Intervention, pending

READY = "Ready"  # the condition every kind summarises its state in


@dataclass(frozen=True)
class Resource:
    """Where a kind lives in the Kubernetes REST API."""

    group: str
    version: str
    plural: str

    def path(self, namespace: str | None, name: str | None = None, subresource: str | None = None) -> str:
        """The REST path; ``namespace`` None lists across all namespaces."""
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        path = f"{base}/namespaces/{namespace}/{self.plural}" if namespace else f"{base}/{self.plural}"
        if name:
            path += f"/{name}"
        if subresource:
            path += f"/{subresource}"
        return path


def condition_path(condition_type: str, field: str) -> str:
    """The JSONPath of one field of one condition in an object's status."""
    return f'.status.conditions[?(@.type=="{condition_type}")].{field}'


@dataclass(frozen=True)
class PrinterColumn:
    """A column of ``kubectl get``: what a person on call needs to see at a glance."""

    name: str
    type: str  # string, integer, number or date
    json_path: str
    wide_only: bool = False  # shown only by ``kubectl get -o wide`` (priority 1)

    def to_wire(self) -> dict[str, Any]:
        column: dict[str, Any] = {"name": self.name, "type": self.type, "jsonPath": self.json_path}
        if self.wide_only:
            column["priority"] = 1
        return column


READY_COLUMN = PrinterColumn("Ready", "string", condition_path(READY, "status"))
REASON_COLUMN = PrinterColumn("Reason", "string", condition_path(READY, "reason"))
AGE_COLUMN = PrinterColumn("Age", "date", ".metadata.creationTimestamp")

AtRest = Callable[[dict[str, Any]], bool]


@dataclass(frozen=True)
class KindInfo:
    """One kind's names, columns, REST address and at-rest rule."""

    model: type[KaizenModel]  # the whole object (spec and status); its class name is the kind
    plural: str
    short_names: tuple[str, ...]
    status_model: type[KaizenModel]
    columns: tuple[PrinterColumn, ...]  # Age comes last on its own
    at_rest: AtRest  # finished, nothing left to do: the resync loop looks only now and then
    # The spec may never change after creation; the operator also refuses edits on servers without CEL.
    frozen_spec: bool = False

    @property
    def kind(self) -> str:
        return self.model.__name__

    @property
    def summary(self) -> str:
        """One line, the CRD's description of the kind: the first line of its module's docstring."""
        return (sys.modules[self.model.__module__].__doc__ or "").strip().splitlines()[0]

    @property
    def resource(self) -> Resource:
        return Resource(GROUP, VERSION, self.plural)

    @property
    def crd_name(self) -> str:
        return f"{self.plural}.{GROUP}"

    def printer_columns(self) -> list[dict[str, Any]]:
        return [column.to_wire() for column in (*self.columns, AGE_COLUMN)]


def condition(raw: dict[str, Any], condition_type: str) -> dict[str, Any]:
    """The stored object's condition of this type, or an empty dict."""
    for found in (raw.get("status") or {}).get("conditions") or []:
        if found.get("type") == condition_type:
            return dict(found)
    return {}


def status_is_current(raw: dict[str, Any]) -> bool:
    """The operator has acted on the object's current spec (observedGeneration caught up) and on the
    latest intervention a person asked for (``controllers.api.intervention``)."""
    status = raw.get("status") or {}
    if status.get("observedGeneration") != raw["metadata"].get("generation"):
        return False
    history = [Intervention.model_validate(entry) for entry in status.get("interventions") or []]
    return pending(raw["metadata"], history) is None
