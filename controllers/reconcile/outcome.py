"""What one reconcile returns to the Kopf glue: the object's new status and the Events to post.

The reconcilers never write their own object's status; the glue (``controllers.operator.dispatch``)
writes the difference, so a reconcile that fails half-way writes nothing it did not finish.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from controllers.api.common import KaizenModel

Event = tuple[str, str, str]  # (type, reason, message), e.g. ("Normal", "Submitted", "attempt 1: ...")
StatusT = TypeVar("StatusT", bound=KaizenModel)


@dataclass
class Outcome(Generic[StatusT]):
    status: StatusT
    events: list[Event] = field(default_factory=list)

    @classmethod
    def start(cls, status: StatusT | None, empty: StatusT, metadata: Mapping[str, Any]) -> Outcome[StatusT]:
        """A working copy of the object's status (``empty`` when it has none yet), marked as computed
        from the object's current generation."""
        generation = metadata.get("generation", 0)
        return cls((status or empty).model_copy(deep=True, update={"observed_generation": generation}))
