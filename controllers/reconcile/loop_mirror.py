"""The loop dashboard's copy of the operator's objects: a summary in the store beside each status.

``dispatch.handle`` calls ``mirror`` with the status it is about to write, before writing it: when
the store is away the reconcile fails and is retried, and the status (whose change is what makes
the operator write at all) is not ahead of the summary. Each summary is written only when it
differs from the one this operator last wrote (``deps.mirror``), so after a start every object is
written once and afterwards only its changes. ``prune`` (from the resync loops, at most once a
minute per kind) drops the rows of objects that are gone.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from controllers.decisions.loop_summary import Summary, summarize
from controllers.store import loop_objects
from controllers.store.db import transaction

if TYPE_CHECKING:
    from controllers.reconcile.deps import Dependencies

PRUNE_EVERY = 60.0  # seconds between prunes of one kind


async def mirror(kind: str, raw: dict[str, Any], status: dict[str, Any], deps: Dependencies) -> None:
    summary = summarize(kind, raw, status)
    if summary is None:
        return
    key = (kind, summary.uid)
    if deps.mirror.written.get(key) == summary.digest:
        return
    await asyncio.to_thread(_write, summary, deps)
    deps.mirror.written[key] = summary.digest


def _write(summary: Summary, deps: Dependencies) -> None:
    with transaction(deps.factory) as session:
        loop_objects.upsert(session, summary, deps.clock())


async def prune(
    kind: str, live_uids: set[str], namespaces: list[str], deps: Dependencies, now: float
) -> None:
    """Forget the objects of ``kind`` that are gone, here and in the store (at most every minute).
    Only in the namespaces this operator watches (all when none are named): another operator may
    keep its own namespaces' rows in the same store."""
    for key in [key for key in deps.mirror.written if key[0] == kind and key[1] not in live_uids]:
        del deps.mirror.written[key]
    if now - deps.mirror.pruned_at.get(kind, float("-inf")) < PRUNE_EVERY:
        return
    deps.mirror.pruned_at[kind] = now

    def drop() -> int:
        with transaction(deps.factory) as session:
            return loop_objects.prune(session, kind, live_uids, namespaces, deps.clock())

    await asyncio.to_thread(drop)
