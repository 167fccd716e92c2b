"""What a learning track selects in the store: its runs, its pairs, and which of those pairs may train.

A track is a LearningPolicy's (agent, role, task family) in the policy's namespace; a field that is
not set matches every value, but a track never reaches out of its namespace. Mining, health counts, reward recomputation and snapshots all narrow their queries this way.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement

from controllers.store.models import DEFAULT_NAMESPACE, PreferencePair, ReviewState, Run


@dataclass(frozen=True)
class Track:
    """A LearningPolicy's track: its runs and pairs match every field that is set."""

    agent: str | None = None
    role: str | None = None
    task_family: str | None = None
    namespace: str = DEFAULT_NAMESPACE

    def runs(self) -> list[ColumnElement[bool]]:
        return self._matching(Run)

    def pairs(self) -> list[ColumnElement[bool]]:
        return self._matching(PreferencePair)

    def fields(self, table: type[Run] | type[PreferencePair]) -> list[ColumnElement[bool]]:
        """The track's fields alone, for a query already narrowed to the namespace."""
        wanted = ((table.agent, self.agent), (table.role, self.role), (table.task_family, self.task_family))
        return [column == value for column, value in wanted if value]

    def _matching(self, table: type[Run] | type[PreferencePair]) -> list[ColumnElement[bool]]:
        return [table.namespace == self.namespace, *self.fields(table)]


EVERY_TRACK = Track()  # matches every run and every pair of the default namespace


def trainable_pairs(require_review: bool) -> ColumnElement[bool]:
    """The pairs a policy may train on: reviewed and approved when it requires review, else any pair
    not rejected."""
    if require_review:
        return PreferencePair.review_state == ReviewState.APPROVED.value
    return PreferencePair.review_state != ReviewState.REJECTED.value
