"""The trainer tier: a real Ray head for the session, real TRL + PEFT training on CPU.

The head is started by the fixture (never assumed, never skipped) on free loopback ports with token
authentication on, and stopped — every process it started — at the end of the session. Jobs reach it
only through the Ray Jobs REST API, as the operator's jobs do. When a test fails, the tail of the
head's log is printed.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from controllers.clients.ray_jobs import RayJobsClient
from devstack.localray import LocalRayHead

_FAILED = pytest.StashKey[bool]()


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Where tiny:// base models are built, for the jobs (through the head's env) and the tests alike."""
    cache = tmp_path_factory.mktemp("kaizen-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("KAIZEN_CACHE", str(cache))
        yield cache


@pytest.fixture(scope="session")
def ray_head(model_cache: Path) -> Iterator[LocalRayHead]:
    """The head holds no storage credentials of its own, whatever the shell has: a job reaches the
    object store only with what its runtime env gives it, as a trainer pod only with what its spec gives."""
    with pytest.MonkeyPatch.context() as patch:
        for name in [name for name in os.environ if name.startswith("AWS_")]:
            patch.delenv(name)
        head = LocalRayHead(num_cpus=2, env={"KAIZEN_CACHE": str(model_cache)}).start()
    try:
        yield head
    finally:
        head.stop()
    assert not head.processes(), "the Ray head left processes behind"


@pytest.fixture
def jobs_api(ray_head: LocalRayHead, request: pytest.FixtureRequest) -> Iterator[Callable[[], RayJobsClient]]:
    """Makes Jobs API clients for the head (one per event loop: ``async with jobs_api() as ray:``)."""
    yield lambda: RayJobsClient(ray_head.dashboard_url, token=ray_head.token, timeout=30.0)
    if request.node.stash.get(_FAILED, False):
        print(f"\n--- ray start log (tail) ---\n{ray_head.log_tail()}")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    report = yield
    if report.when == "call":
        item.stash[_FAILED] = report.failed
    return report
