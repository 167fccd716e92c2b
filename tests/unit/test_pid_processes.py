"""Stopping a process known only by its pid, as `kaizen down` and ControlPlane.load(...).stop() do."""

from __future__ import annotations

import subprocess
import sys
import time

from devstack.processes import pid_alive, terminate_pid

IGNORES_SIGTERM = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True); time.sleep(60)"


def test_a_running_process_is_alive_and_terminate_ends_it() -> None:
    with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"]) as child:
        assert pid_alive(child.pid)
        terminate_pid(child.pid, grace=5)
        assert not pid_alive(child.pid)


def test_a_process_that_ignores_sigterm_is_killed_after_the_grace() -> None:
    with subprocess.Popen([sys.executable, "-c", IGNORES_SIGTERM], stdout=subprocess.PIPE) as child:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == b"ready"
        started = time.monotonic()
        terminate_pid(child.pid, grace=0.5)
        waited = time.monotonic() - started
        assert not pid_alive(child.pid)
        assert 0.5 <= waited < 10, f"SIGKILL should follow the 0.5 s grace, took {waited:.2f}s"


def test_an_exited_child_not_yet_reaped_counts_as_gone() -> None:
    with subprocess.Popen([sys.executable, "-c", "pass"]) as child:
        deadline = time.monotonic() + 10
        while pid_alive(child.pid) and time.monotonic() < deadline:
            time.sleep(0.05)  # until it has exited: a zombie until someone waits for it
        assert not pid_alive(child.pid)


def test_a_reaped_pid_is_not_alive() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()  # reaped: the pid is free again (and not reused within this test)
    assert not pid_alive(child.pid)
