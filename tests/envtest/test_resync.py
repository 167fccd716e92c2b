"""The resync loop against a real API server: its index reads the list once, a page at a time, then
follows the watch; a pass reconciles every object once with a bounded number in flight, gives way to
Kopf's change handlers, and forgets what it remembered about objects that are gone; later passes
read no list at all.

The reconcile is the test's own recorder (the kinds' reconciles have their own tests); everything
around it — listing, parsing, CEL checks, status writes — is the operator's.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from controllers.api import kinds, learningpolicy
from controllers.api.learningpolicy import LearningPolicy, LearningPolicyStatus
from controllers.clients.router import RouterClient
from controllers.operator import resync
from controllers.operator.dispatch import Kind
from controllers.reconcile import mining
from controllers.reconcile.deps import Dependencies, Settings
from controllers.runtime.index import Index
from controllers.runtime.kube import Kube, load_configuration
from controllers.runtime.metrics import OperatorMetrics
from controllers.store import migrate
from controllers.store.db import make_engine, session_factory
from devstack.controlplane import ControlPlane

POLICIES = 230  # three pages of 100
CONCURRENCY = 4


@dataclass
class Outcome:
    status: LearningPolicyStatus
    events: list[tuple[str, str, str]] = field(default_factory=list)


@dataclass
class Recorder:
    """A reconcile that notes who it saw, how many ran at once, and what they were given."""

    seen: list[str] = field(default_factory=list)
    in_flight: int = 0
    most_in_flight: int = 0
    with_managed_fields: int = 0
    started: asyncio.Event = field(default_factory=asyncio.Event)

    async def __call__(self, body: dict[str, Any], policy: LearningPolicy, deps: Dependencies) -> Outcome:
        self.started.set()
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        self.with_managed_fields += "managedFields" in body["metadata"]
        await asyncio.sleep(0.01)
        self.seen.append(body["metadata"]["name"])
        self.in_flight -= 1
        return Outcome(LearningPolicyStatus(observed_generation=body["metadata"]["generation"]))


def policy(name: str, namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": kinds.API_VERSION,
        "kind": "LearningPolicy",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "track": {"agent": name},
            "paused": True,
            "training": {"baseModel": {"name": "base", "uri": "file:///models/base"}},
        },
    }


@dataclass
class PageCounter:
    """Wraps ``Kube.pages`` to count the list pages read from the API server."""

    kube: Kube
    pages: int = 0

    def __post_init__(self) -> None:
        real_pages = self.kube.pages

        async def counting_pages(*args: Any, **kwargs: Any) -> Any:
            async for page in real_pages(*args, **kwargs):
                self.pages += 1
                yield page

        self.kube.pages = counting_pages  # type: ignore[method-assign]


def test_a_pass_pages_through_every_object_once_gives_way_to_change_handlers_and_forgets_the_deleted(
    control_plane: ControlPlane, namespace: str, tmp_path: Path
) -> None:
    asyncio.run(_scenario(control_plane, namespace, tmp_path))


async def _scenario(plane: ControlPlane, namespace: str, tmp_path: Path) -> None:
    async with operator_dependencies(plane, tmp_path) as deps:
        kube, recorder = deps.kube, Recorder()
        kind = Kind(
            learningpolicy.INFO, recorder, interval=1.0, rest_interval=60.0, forget=mining.forget_deleted
        )
        # Given 230 policies, and remembered mining state for them and for one that is gone
        made = await given_policies(kube, namespace, range(POLICIES))
        given_remembered_mining_state(deps, made, gone="deleted-uid")
        counter = PageCounter(kube)
        index = Index(kind.resource, kind.info.at_rest)
        follower = asyncio.create_task(index.run(kube, [namespace]))
        try:
            await asyncio.wait_for(index.synced.wait(), 30)

            # When a change handler runs as the pass starts
            count = await when_a_pass_starts_beside_a_change_handler(kind, deps, index, recorder)

            # Then every policy was reconciled once, from three pages, at most four at a time
            assert count == POLICIES
            assert sorted(recorder.seen) == [f"p-{i:03d}" for i in range(POLICIES)]
            assert counter.pages == 3
            assert 1 < recorder.most_in_flight <= CONCURRENCY
            assert recorder.with_managed_fields == 0, "the pass hands over objects without managedFields"
            # and each got its status written, and only the deleted policy's memory is forgotten
            await then_every_status_was_written(kube, namespace)
            assert "deleted-uid" not in deps.mining
            assert len(deps.mining) == POLICIES

            # When a policy is added and another deleted after the list
            await given_policies(kube, namespace, [POLICIES])
            await kube.delete(kinds.POLICIES, namespace, "p-000")

            # Then the watch brings both into the index, and the next pass reads no list
            await then_the_index_follows(index, gone="p-000", added=f"p-{POLICIES:03d}")
            recorder.seen.clear()
            assert await resync.one_pass(kind, deps, index, CONCURRENCY, {}) == POLICIES
            assert "p-000" not in recorder.seen
            assert f"p-{POLICIES:03d}" in recorder.seen
            assert counter.pages == 3, "a pass read the list again"
            assert index.lists == 1
        finally:
            follower.cancel()


@asynccontextmanager
async def operator_dependencies(plane: ControlPlane, tmp_path: Path) -> AsyncIterator[Dependencies]:
    """The operator's dependencies on the control plane and a migrated SQLite store (as the chart's
    migration Job leaves it: the operator writes its dashboard summaries there); closed afterwards."""
    url = f"sqlite:///{tmp_path / 'store.db'}"
    migrate.upgrade(url)
    engine = make_engine(url)
    settings = Settings(database_url=str(engine.url), data_root=tmp_path, gateway_url="http://127.0.0.1:9")
    kube = Kube(load_configuration(str(plane.kubeconfig)))
    deps = Dependencies(
        settings,
        kube,
        engine,
        session_factory(engine),
        RouterClient(settings.gateway_url, ""),
        OperatorMetrics(),
    )
    try:
        yield deps
    finally:
        await kube.close()
        await deps.router.close()
        engine.dispose()


async def given_policies(kube: Kube, namespace: str, indices: Iterable[int]) -> list[dict[str, Any]]:
    """Create policies ``p-<index>``, sixteen requests at a time."""
    gate = asyncio.Semaphore(16)

    async def create(index: int) -> dict[str, Any]:
        async with gate:
            made, _ = await kube.ensure(kinds.POLICIES, policy(f"p-{index:03d}", namespace))
            return made

    return await asyncio.gather(*(create(i) for i in indices))


def given_remembered_mining_state(deps: Dependencies, made: list[dict[str, Any]], gone: str) -> None:
    for body in made:
        mining.memory_of(body, deps)
    deps.mining[gone] = mining.Memory()


async def when_a_pass_starts_beside_a_change_handler(
    kind: Kind, deps: Dependencies, index: Index, recorder: Recorder
) -> int:
    """Run one pass while a change handler holds urgency; no reconcile may start beside it."""

    async def change_handler() -> None:
        async with deps.urgency.urgent():
            await asyncio.sleep(0.5)
            assert not recorder.started.is_set(), "a resync reconcile started beside a change handler"

    handler = asyncio.create_task(change_handler())
    await asyncio.sleep(0)
    count = await resync.one_pass(kind, deps, index, CONCURRENCY, {})
    await handler
    return count


async def then_every_status_was_written(kube: Kube, namespace: str) -> None:
    listed = await kube.list(kinds.POLICIES, namespace)
    assert all(item["status"]["observedGeneration"] == 1 for item in listed)


async def then_the_index_follows(index: Index, gone: str, added: str) -> None:
    async def index_follows() -> None:
        while gone in names(index) or added not in names(index):
            await asyncio.sleep(0.05)

    await asyncio.wait_for(index_follows(), 30)


def names(index: Index) -> set[str]:
    return {entry.name for entry in index.entries.values()}
