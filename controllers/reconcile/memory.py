"""What a policy's reconciles remember between passes, in the operator's memory: its pair minings and
its storage check.

Its own module so that ``deps`` (which holds one per policy) and ``mining`` (which reads and updates
them) both import it without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass
class Memory:
    """What one policy's earlier minings leave for the next (in memory, per policy uid)."""

    mark: tuple[Any, ...] | None = None  # settings and activity the last complete mining saw
    unanswerable: set[frozenset[str]] = field(default_factory=set)  # verdicts that were neither A nor B


@dataclass(frozen=True)
class StorageVerdict:
    """One storage probe's result (controllers.reconcile.storage), valid for the policy generation and
    Secret resourceVersion it was made with, until ``until``."""

    key: tuple[int, str]
    want: Any  # None: the operator can write there; else the Ready condition (a conditions.Want)
    until: datetime


@dataclass
class MirrorMemory:
    """What the operator last wrote of each object's dashboard summary (controllers.reconcile.loop_mirror)."""

    written: dict[tuple[str, str], str] = field(default_factory=dict)  # (kind, uid) -> summary digest
    pruned_at: dict[str, float] = field(default_factory=dict)  # kind -> monotonic time of the last prune
