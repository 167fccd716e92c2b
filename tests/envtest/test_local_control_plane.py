"""The local control plane and `kaizen up` / `kaizen down`: start, reuse, stop, leave nothing behind."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from devstack import stack
from devstack.controlplane import ADMIN, ControlPlane, ControlPlaneError
from devstack.processes import pid_alive


def test_another_process_can_find_and_stop_a_control_plane(tmp_path: Path) -> None:
    plane = ControlPlane(tmp_path / "plane")
    plane.start()
    pids = dict(plane.pids)
    try:
        found = ControlPlane.load(tmp_path / "plane")
        assert found.running()
        assert found.server == plane.server
        assert found.kubectl("get", "namespaces", "-o", "name").stdout.count("namespace/") >= 3
    finally:
        plane.stop()
    assert not any(pid_alive(pid) for pid in pids.values())
    plane.stop()  # a second stop is a no-op
    assert not ControlPlane.load(tmp_path / "plane").running()


def test_tokens_authenticate_and_unknown_tokens_are_refused(control_plane: ControlPlane) -> None:
    ok = httpx.get(
        f"{control_plane.server}/api",
        verify=False,
        headers={"Authorization": f"Bearer {control_plane.users[ADMIN].token}"},
    )
    assert ok.status_code == 200
    refused = httpx.get(
        f"{control_plane.server}/api", verify=False, headers={"Authorization": "Bearer not-a-token"}
    )
    assert refused.status_code == 401


def test_missing_binaries_are_reported_with_the_command_that_provides_them(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    plane = ControlPlane(tmp_path / "plane", assets=tmp_path / "empty")
    with pytest.raises(ControlPlaneError, match=r"hack/kube-assets\.sh"):
        plane.start(timeout=5)
    assert not plane.pids


def test_a_binary_that_dies_at_start_is_reported_with_its_log(tmp_path: Path) -> None:
    assets = tmp_path / "assets"
    assets.mkdir()
    for binary in ("etcd", "kube-apiserver"):
        script = assets / binary
        script.write_text("#!/bin/sh\necho 'bind: address already in use' >&2\nexit 3\n")
        script.chmod(0o755)
    plane = ControlPlane(tmp_path / "plane", assets=assets)
    with pytest.raises(ControlPlaneError, match=r"exited during start; see .*\.log"):
        plane.start(timeout=10)
    assert not plane.pids
    assert "address already in use" in (tmp_path / "plane" / "etcd.log").read_text()


def test_kaizen_up_starts_the_stack_and_kaizen_down_leaves_nothing_behind(tmp_path: Path) -> None:
    # The story itself (train, promote, roll back) is the e2e tier's full-loop test; here: the stack.
    state = tmp_path / "state"
    kaizen = [sys.executable, "-m", "controllers.cli.main"]
    up = subprocess.run(
        [*kaizen, "up", "--state-dir", str(state), "--no-story"], capture_output=True, text=True, timeout=600
    )
    assert up.returncode == 0, up.stderr
    assert f"export KUBECONFIG={state.resolve()}/control-plane/kubeconfig" in up.stdout
    assert "starting the operator" in up.stdout
    recorded = stack.load(state)
    assert recorded is not None
    pids = {**ControlPlane.load(state / "control-plane").pids, **recorded.pids, "ray": recorded.ray_group}
    assert all(pid_alive(pid) for pid in pids.values()), pids
    assert httpx.get(f"{recorded.gateway_url}/healthz", timeout=5).status_code == 200
    down = subprocess.run(
        [*kaizen, "down", "--state-dir", str(state)], capture_output=True, text=True, timeout=120
    )
    assert down.returncode == 0, down.stderr
    assert "operator" in down.stdout
    assert not state.exists()
    assert not any(pid_alive(pid) for pid in pids.values())
    status = subprocess.run([*kaizen, "status", "--state-dir", str(state)], capture_output=True, text=True)
    assert status.returncode == 1
    assert "kaizen up" in status.stdout
