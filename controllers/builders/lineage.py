"""A policy's champion and lineage: who serves the track now, and every champion before it.

Written by the Experiment that crowns a challenger and by the drift watch that gives the crown back;
both go through these pure functions, so an entry is retired and added the same way whoever changes
the champion. The lineage is newest first and bounded (the API caps the list), so the oldest drop off.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from controllers.api.learningpolicy import ChampionStatus, LineageEntry

LINEAGE_MAX = 32  # a policy's lineage keeps this many champions, newest first


def crowned(
    lineage: Sequence[LineageEntry], champion: str, training_run: str, now: datetime
) -> list[LineageEntry]:
    """The lineage once ``champion`` (trained by ``training_run``) is promoted: every reigning entry
    retired, replaced by it."""
    reason = f"replaced by {champion}"
    retired = [entry if entry.retired_at else _retire(entry, now, reason) for entry in lineage]
    newest = LineageEntry(shadow_model=champion, training_run=training_run, promoted_at=now)
    return [newest, *retired][:LINEAGE_MAX]


def restored(
    lineage: Sequence[LineageEntry],
    drifted: str,
    previous: str | None,
    previous_run: str,
    reason: str,
    now: datetime,
) -> list[LineageEntry]:
    """The lineage once ``drifted`` is rolled back for drift and ``previous`` (None: the plain base
    model, which has no entry) reigns again, as a new entry."""
    why = f"rolled back for drift after promotion: {reason}"[:1024]
    retired = [
        _retire(entry, now, why) if entry.shadow_model == drifted and not entry.retired_at else entry
        for entry in lineage
    ]
    if previous:
        retired.insert(0, LineageEntry(shadow_model=previous, training_run=previous_run, promoted_at=now))
    return retired[:LINEAGE_MAX]


def champion_patch(champion: str | None, lineage: Sequence[LineageEntry], now: datetime) -> dict[str, Any]:
    """The merge patch of the policy's status: the champion since ``now`` (None clears it) and the
    lineage. Empty strings are left out: some API servers read ``""`` in a merge patch as null."""
    return {
        "champion": ChampionStatus(shadow_model=champion, since=now).to_wire() if champion else None,
        "lineage": [
            entry.model_dump(mode="json", by_alias=True, exclude_none=True, exclude_defaults=True)
            for entry in lineage
        ],
    }


def _retire(entry: LineageEntry, now: datetime, reason: str) -> LineageEntry:
    return entry.model_copy(update={"retired_at": now, "reason": reason})
