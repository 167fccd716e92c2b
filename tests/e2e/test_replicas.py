"""Two operator replicas: one leads (holds the Lease) and acts, the other stands by; killing the
leader hands over within the lease time, without both ever acting at once."""

from __future__ import annotations

import re
import time
from pathlib import Path

import httpx

from devstack.demo import demo_policy
from devstack.operator import OperatorProcess
from tests.e2e.conftest import World


def leading(operator: OperatorProcess) -> bool:
    return bool(httpx.get(f"http://127.0.0.1:{operator.health_port}/healthz", timeout=5).json()["leading"])


def reconciles(operator: OperatorProcess) -> float:
    found = re.findall(
        r'^kaizen_operator_reconciles_total\{kind="LearningPolicy"\} (\S+)$', operator.metrics(), re.M
    )
    return float(found[0]) if found else 0.0


def test_two_replicas_never_act_together_and_hand_over_when_the_leader_dies(
    world: World, tmp_path: Path
) -> None:
    # Given a second replica beside the test's operator, both healthy, one leading
    first = world.operator
    second = OperatorProcess(**{**first.__dict__, "log": tmp_path / "second.log", "_process": None})
    second.start()
    try:
        world.wait_until("a leader", lambda: leading(first) or leading(second))
        leader, standby = (first, second) if leading(first) else (second, first)
        assert not leading(standby)
        # When a policy is applied, only the leader reconciles it
        world.apply(demo_policy("replicas", "replicas", world.storage, min_pairs=1_000_000))
        world.wait_until("the leader to reconcile", lambda: reconciles(leader) >= 3, timeout=60)
        assert reconciles(standby) == 0
        # And when the leader is killed, the standby takes over within the lease time and acts
        world.expect_alive = False
        leader.kill()
        killed = time.monotonic()
        world.wait_until("the standby to lead", lambda: leading(standby), timeout=30)
        handover = time.monotonic() - killed
        assert handover <= standby.lease_seconds * 2 + 2, handover
        before = reconciles(standby)
        world.wait_until("the new leader to reconcile", lambda: reconciles(standby) > before, timeout=30)
    finally:
        second.stop()
