"""``kaizen get`` and ``kaizen describe`` against a real API server, and ``kubectl kaizen`` as a plugin.

Objects of the four kinds are applied with kubectl, their status written through the status
subresource as the operator writes it, an Event posted in the operator's shape; then the command
runs as a person runs it (Typer's runner with KUBECONFIG, a subprocess for ``--watch``, the real
kubectl for the plugin). ``kaizen get`` must print what ``kubectl get`` prints, AGE aside (a second
may tick between the two).
"""

from __future__ import annotations

import json
import os
import queue
import socket
import stat
import subprocess
import sys
import threading
import time
import tomllib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from typer.testing import CliRunner, Result

from controllers.api import kinds
from controllers.api.kindinfo import Resource
from controllers.cli.main import app
from controllers.runtime.events import event_body
from devstack.controlplane import ControlPlane
from tests.envtest.conftest import VIEWER
from tests.schemas import ROOT

runner = CliRunner()
STAMP = "2026-01-10T09:00:00Z"
BASE = {"name": "base", "uri": "file:///models/base"}
DIGEST = "sha256:" + "0" * 64


def body(kind: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": kinds.API_VERSION, "kind": kind, "metadata": {"name": name}, "spec": spec}


def track(namespace: str) -> list[dict[str, Any]]:
    """One object of each kind, as a small learning track."""
    training = {"baseModel": BASE, "method": "DPO", "outputUri": "file:///adapters/coder"}
    variants = [
        {"name": "champion", "role": "Champion", "shadowModel": "coder-0000"},
        {"name": "challenger", "role": "Challenger", "shadowModel": "coder-0001"},
    ]
    return [
        body("LearningPolicy", "coder", {"track": {"agent": "coder"}, "training": training}),
        body("TrainingRun", "coder-0001", {"policyRef": "coder", "training": training}),
        body("ShadowModel", "coder-0001", {"policyRef": "coder", "baseModel": BASE,
                                           "adapter": {"uri": "file:///adapters/coder-0001", "digest": DIGEST}}),
        body("Experiment", "coder-0001", {"policyRef": "coder", "variants": variants,
                                          "rollout": {"autoPromote": False}}),
    ]  # fmt: skip


def ready(status: str, reason: str, message: str) -> dict[str, Any]:
    return {
        "type": "Ready",
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": STAMP,
    }


STATUSES = {
    "LearningPolicy": {"conditions": [ready("True", "Watching", "12 of 200 new pairs")],
                       "data": {"newApprovedPairs": 12}, "lastTrainingRun": "coder-0001"},
    "TrainingRun": {"conditions": [ready("False", "JobFailed", "attempt 3 of 3 failed: out of memory"),
                                   {**ready("False", "JobFailed", "out of memory"), "type": "Succeeded"}],
                    "attempts": 3, "metrics": {"preferenceAccuracy": 0.7}},
    "ShadowModel": {"conditions": [ready("True", "Serving", "Challenger served by coder-0001")],
                    "role": "Challenger", "endpoint": "http://coder-0001.svc/v1"},
    "Experiment": {"conditions": [ready("Unknown", "AwaitingApproval", "better (p=0.003); approve to promote")],
                   "decision": "Continue", "decisionReason": "waiting for approval\nat 50%", "challengerWeight": 50,
                   "interventions": [{"id": "pause-1", "action": "Pause", "by": "alice", "at": STAMP,
                                      "reason": "router upgrade", "outcome": "paused: weights held"}]},
}  # fmt: skip


def resource(kind: str) -> Resource:
    return {
        "LearningPolicy": kinds.POLICIES,
        "TrainingRun": kinds.RUNS,
        "ShadowModel": kinds.SHADOW_MODELS,
        "Experiment": kinds.EXPERIMENTS,
    }[kind]


def write_status(plane: ControlPlane, namespace: str, kind: str, name: str, status: dict[str, Any]) -> None:
    path = resource(kind).path(namespace, name, "status")
    answer = httpx.patch(
        plane.server + path,
        headers={**plane.auth_headers(), "Content-Type": "application/merge-patch+json"},
        content=json.dumps({"status": status}),
        verify=False,
    )
    assert answer.status_code == 200, answer.text


@pytest.fixture
def applied(control_plane: ControlPlane, namespace: str) -> str:
    """The track applied in ``namespace``, each object with its status and the Experiment with an Event."""
    for obj in track(namespace):
        control_plane.kubectl("apply", "-n", namespace, "-f", "-", stdin=json.dumps(obj))
        write_status(control_plane, namespace, obj["kind"], obj["metadata"]["name"], STATUSES[obj["kind"]])
    stored = json.loads(
        control_plane.kubectl("get", "experiment", "coder-0001", "-n", namespace, "-o", "json").stdout
    )
    event = event_body(
        stored, "Normal", "AwaitingApproval", "run kaizen approve to promote", datetime.now(UTC)
    )
    control_plane.kubectl("create", "-f", "-", stdin=json.dumps(event))
    return namespace


def kaizen(plane: ControlPlane, *args: str, kubeconfig: Path | None = None) -> Result:
    return runner.invoke(app, list(args), env={"KUBECONFIG": str(kubeconfig or plane.kubeconfig)})


def without_age(text: str) -> list[str]:
    """The lines without their last column (AGE); a second may tick between two commands."""
    return [line.rsplit(None, 1)[0] for line in text.splitlines() if line.strip()]


def tables(text: str) -> set[tuple[str, ...]]:
    """The tables of a multi-kind listing, AGE aside, in no order: the API server's discovery lists
    the kinds of a category in an order of its own, which kubectl keeps and kaizen does not."""
    return {tuple(without_age(block)) for block in text.split("\n\n") if block.strip()}


def squeezed(text: str) -> str:
    """The text with each run of spaces as one (alignment is the golden tests' business)."""
    return "\n".join(" ".join(line.split()) for line in text.splitlines())


def test_kaizen_get_prints_what_kubectl_get_prints(control_plane: ControlPlane, applied: str) -> None:
    for plural in ("learningpolicies", "trainingruns", "shadowmodels", "experiments"):
        for flags in ((), ("-o", "wide")):
            ours = kaizen(control_plane, "get", plural, "-n", applied, *flags)
            assert ours.exit_code == 0, ours.output
            theirs = control_plane.kubectl("get", plural, "-n", applied, *flags).stdout
            assert without_age(ours.stdout) == without_age(theirs), f"kaizen get {plural} {' '.join(flags)}"
    every = kaizen(control_plane, "get", "all", "-n", applied)
    category = control_plane.kubectl("get", "kaizen", "-n", applied).stdout
    assert tables(every.stdout) == tables(category)
    assert len(tables(every.stdout)) == 4
    assert "experiment.kaizen.dev/coder-0001" in every.stdout
    across = kaizen(control_plane, "get", "exp", "-A")
    assert without_age(across.stdout) == without_age(control_plane.kubectl("get", "experiments", "-A").stdout)
    assert f"{applied}   coder-0001" in across.stdout


def test_get_prints_json_yaml_and_names(control_plane: ControlPlane, applied: str) -> None:
    listed = json.loads(kaizen(control_plane, "get", "tr", "-n", applied, "-o", "json").stdout)
    assert listed["kind"] == "List"
    assert [item["metadata"]["name"] for item in listed["items"]] == ["coder-0001"]
    assert listed["items"][0]["status"]["attempts"] == 3
    assert "managedFields" not in listed["items"][0]["metadata"]
    one = yaml.safe_load(
        kaizen(control_plane, "get", "experiment", "coder-0001", "-n", applied, "-o", "yaml").stdout
    )
    assert (one["kind"], one["status"]["decisionReason"]) == ("Experiment", "waiting for approval\nat 50%")
    names = kaizen(control_plane, "get", "lp,sm", "-n", applied, "-o", "name")
    assert names.stdout == "learningpolicy.kaizen.dev/coder\nshadowmodel.kaizen.dev/coder-0001\n"


def test_describe_shows_status_conditions_interventions_events_and_the_next_command(
    control_plane: ControlPlane, applied: str
) -> None:
    page = kaizen(control_plane, "describe", "exp", "coder-0001", "-n", applied)
    assert page.exit_code == 0, page.output
    text = squeezed(page.stdout)
    for expected in (
        "Name: coder-0001",
        f"Namespace: {applied}",
        "Decision: Continue",
        "Challenger share: 50% of traffic",
        "Ready Unknown AwaitingApproval",
        "alice Pause router upgrade paused: weights held",
        "Normal AwaitingApproval",  # the Event
        "run kaizen approve to promote",
        f"Next: kaizen approve experiment coder-0001 -n {applied}",
    ):
        assert expected in text, f"{expected!r} not in:\n{page.stdout}"
    run = squeezed(kaizen(control_plane, "describe", "trainingrun/coder-0001", "-n", applied).stdout)
    assert "Phase: Failed" in run
    assert f"kaizen retry trainingrun coder-0001 -n {applied}" in run
    everywhere = kaizen(control_plane, "describe", "sm", "-A")  # every namespace, as kubectl describe -A
    assert everywhere.exit_code == 0, everywhere.output
    pages = squeezed(everywhere.stdout)
    assert f"Name: coder-0001\nNamespace: {applied}\n" in pages, pages
    named = kaizen(control_plane, "describe", "sm", "coder-0001", "-A")
    assert named.exit_code == 1
    assert "a name cannot be looked up across all namespaces; give -n NAMESPACE" in named.stderr


def test_the_namespace_defaults_to_the_kubeconfig_context(
    control_plane: ControlPlane, applied: str, tmp_path: Path
) -> None:
    config = yaml.safe_load(control_plane.kubeconfig.read_text())
    config["contexts"][0]["context"]["namespace"] = applied
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump(config))
    found = kaizen(control_plane, "get", "sm", kubeconfig=kubeconfig)
    assert found.exit_code == 0, found.output
    assert "coder-0001" in found.stdout
    assert "Challenger" in found.stdout
    empty = kaizen(control_plane, "get", "sm")  # the admin kubeconfig names no namespace: default
    assert (empty.exit_code, empty.stdout, empty.stderr) == (
        0,
        "",
        "No resources found in default namespace.\n",
    )


def test_errors_say_what_to_do_next(control_plane: ControlPlane, applied: str, tmp_path: Path) -> None:
    unknown = kaizen(control_plane, "get", "pods", "-n", applied)
    assert unknown.exit_code == 1
    assert "experiments (exp, kexp)" in unknown.stderr
    missing = kaizen(control_plane, "describe", "exp", "nope", "-n", applied)
    assert missing.exit_code == 1
    assert f"list them with: kaizen get experiments -n {applied}" in missing.stderr
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = yaml.safe_load(control_plane.kubeconfig.read_text())
    config["clusters"][0]["cluster"]["server"] = f"https://127.0.0.1:{port}"
    nowhere = tmp_path / "nowhere"
    nowhere.write_text(yaml.safe_dump(config))
    unreachable = kaizen(control_plane, "get", "exp", "-n", applied, kubeconfig=nowhere)
    assert unreachable.exit_code == 1
    assert f"cannot reach the Kubernetes API server at https://127.0.0.1:{port}" in unreachable.stderr
    assert f"KUBECONFIG (now: {nowhere})" in unreachable.stderr
    viewer = control_plane.write_kubeconfig(tmp_path / "viewer", VIEWER)
    refused = kaizen(control_plane, "get", "lp", "-n", applied, kubeconfig=viewer)
    assert refused.exit_code == 1
    assert f"`kubectl auth can-i list learningpolicies.kaizen.dev -n {applied}`" in refused.stderr
    both = kaizen(control_plane, "get", "exp", "coder-0001", "-A")
    assert both.exit_code == 1
    assert "give -n NAMESPACE" in both.stderr


class Watch:
    """``kaizen get -w`` running in a subprocess, its stdout lines collected by a thread."""

    def __init__(self, command: list[str], env: dict[str, str], stderr: Path) -> None:
        self.errors = stderr
        with stderr.open("w") as sink:
            self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=sink, text=True, env=env)
        self.lines: queue.Queue[str] = queue.Queue()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line)

    def until(self, wanted: str, seconds: float = 30.0) -> list[str]:
        """The lines printed up to the first that contains ``wanted``."""
        seen, deadline = [], time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                seen.append(self.lines.get(timeout=left))
            except queue.Empty:
                break
            if wanted in seen[-1]:
                return seen
        raise AssertionError(f"{wanted!r} never printed; saw {seen}; stderr: {self.errors.read_text()}")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)
        self.reader.join(timeout=10)
        assert self.process.stdout is not None
        self.process.stdout.close()


@pytest.fixture
def watching(control_plane: ControlPlane, applied: str, tmp_path: Path) -> Iterator[Watch]:
    env = {**os.environ, "KUBECONFIG": str(control_plane.kubeconfig), "PYTHONPATH": str(ROOT)}
    command = [
        sys.executable,
        "-m",
        "controllers.cli.main",
        "get",
        "exp",
        "-n",
        applied,
        "-w",
        "--watch-timeout",
        "60",
    ]
    watch = Watch(command, env, tmp_path / "watch.stderr")
    yield watch
    watch.stop()


def test_watch_prints_a_row_when_an_object_changes(
    control_plane: ControlPlane, applied: str, watching: Watch
) -> None:
    first = watching.until("coder-0001")
    assert first[0].split()[:3] == ["NAME", "READY", "DECISION"]
    promoted = {"decision": "Promote", "conditions": [ready("True", "Promoted", "approved by carol")]}
    write_status(control_plane, applied, "Experiment", "coder-0001", promoted)
    row = watching.until("Promoted")[-1]
    assert row.split()[:4] == ["coder-0001", "True", "Promote", "Promoted"]
    assert row.index("Promote") == first[0].index("DECISION")  # in the columns printed before


def test_kubectl_kaizen_runs_the_same_command_as_a_kubectl_plugin(
    control_plane: ControlPlane, applied: str, tmp_path: Path
) -> None:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["kubectl-kaizen"] == scripts["kaizen"] == "controllers.cli.main:app"
    shim = tmp_path / "bin" / "kubectl-kaizen"  # what `pip install` makes of the script, for this checkout
    shim.parent.mkdir()
    shim.write_text(f'#!/bin/sh\nPYTHONPATH="{ROOT}" exec "{sys.executable}" -m controllers.cli.main "$@"\n')
    shim.chmod(shim.stat().st_mode | stat.S_IXUSR)
    env = {
        **os.environ,
        "KUBECONFIG": str(control_plane.kubeconfig),
        "PATH": f"{shim.parent}:{os.environ['PATH']}",
    }
    plugin = subprocess.run(
        ["kubectl", "kaizen", "get", "exp", "-n", applied],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert plugin.returncode == 0, plugin.stderr
    assert without_age(plugin.stdout) == without_age(
        kaizen(control_plane, "get", "exp", "-n", applied).stdout
    )
    assert "coder-0001" in plugin.stdout
    refused = subprocess.run(
        ["kubectl", "kaizen", "get", "widgets"], capture_output=True, text=True, env=env, timeout=60
    )
    assert refused.returncode == 1
    assert "the Kaizen kinds are" in refused.stderr
