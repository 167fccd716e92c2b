"""What a policy's pair minings remember between reconciles, in the operator's memory.

Its own module so that ``deps`` (which holds one per policy) and ``mining`` (which reads and updates
them) both import it without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Memory:
    """What one policy's earlier minings leave for the next (in memory, per policy uid)."""

    mark: tuple[Any, ...] | None = None  # settings and activity the last complete mining saw
    unanswerable: set[frozenset[str]] = field(default_factory=set)  # verdicts that were neither A nor B
