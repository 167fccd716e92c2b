"""Everything a handler needs from the outside world, built once at startup and passed as Kopf's memo.

Tests and ``kaizen up`` build the same object around local parts (a local kube-apiserver, SQLite or a
throwaway PostgreSQL, a local Ray head, a local gateway); nothing in the handlers knows the difference.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from controllers.builders.loader_sidecar import LOADER_IMAGE
from controllers.clients.router import RouterClient
from controllers.reconcile.memory import Memory, MirrorMemory, StorageVerdict
from controllers.runtime.kube import Kube
from controllers.runtime.metrics import OperatorMetrics
from controllers.runtime.pacing import Urgency


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class Settings:
    """Operator settings, and the one place of their defaults: operator/main.py's flags and KAIZEN_*
    variables fill these fields and default to them; tests and the development stack build it directly."""

    database_url: str
    # Where dataset snapshots are written (the chart mounts a volume here).
    data_root: Path = Path("/var/lib/kaizen")
    gateway_url: str = "http://kaizen-gateway:8000"  # the router's base URL; routes are pushed there
    gateway_token: str = ""
    gateway_token_file: str = ""  # a projected ServiceAccount token (wins over gateway_token)
    python: str = "python"  # interpreter in trainer entrypoints ("python" in the trainer image)
    trainer_env: dict[str, str] = field(default_factory=dict)
    poll_seconds: float = 5.0  # how often running work (jobs, shadow models) is looked at
    policy_poll_seconds: float = 30.0  # how often a policy re-counts its data (it changes slowly)
    experiment_poll_seconds: float = 1.0
    rest_seconds: float = 60.0  # how often objects at rest are looked at (KindInfo.at_rest)
    served_host: str | None = None  # override the host of InferenceService URLs (local runtime)
    # The image of the LoRA loader beside vLLM in a shared base's pods: the operator's own image.
    loader_image: str = LOADER_IMAGE
    # An LLM judge costs money and time per question: a policy asks at most this many per reconcile
    # (the rest on later polls), each within the timeout.
    judge_calls_per_reconcile: int = 16
    judge_timeout_seconds: float = 30.0


@dataclass
class Dependencies:
    settings: Settings
    kube: Kube
    engine: Engine
    factory: sessionmaker[Session]
    router: RouterClient
    metrics: OperatorMetrics
    clock: Callable[[], datetime] = utcnow
    # One reconcile at a time per object: Kopf's handlers run beside the resync loops. A lock lives
    # while someone holds or waits for it, so deleted objects leave nothing behind.
    locks: weakref.WeakValueDictionary[str, asyncio.Lock] = field(default_factory=weakref.WeakValueDictionary)
    # Per policy uid: what its last pair mining saw (controllers.reconcile.mining).
    mining: dict[str, Memory] = field(default_factory=dict)
    # Per policy uid: the last storage probe's verdict (controllers.reconcile.storage).
    storage_checks: dict[str, StorageVerdict] = field(default_factory=dict)
    mining_gate: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(1))
    # Kopf's change handlers go before the resync loops' work (controllers.runtime.pacing).
    urgency: Urgency = field(default_factory=Urgency)
    # What the loop dashboard's summaries last said, so each is written only when it changes.
    mirror: MirrorMemory = field(default_factory=MirrorMemory)

    def lock(self, uid: str) -> asyncio.Lock:
        lock = self.locks.get(uid)
        if lock is None:
            lock = self.locks[uid] = asyncio.Lock()
        return lock
