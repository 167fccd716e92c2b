"""The local control plane: start, reuse, stop, leave nothing behind (`kaizen up` itself: tests/e2e/test_kaizen_up.py)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

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
