"""``kaizen up`` as a new user meets it: the whole story, then every command it prints, pasted as printed.

One full run (6-10 minutes on two cores; the only test that runs ``kaizen up``): the stack starts, the
story trains, promotes and rolls back, and the block printed at the end is read back from stdout.
The story's outcome is the checker's, not the demo's: its table must show the corrected model
clearly better than the base on held-out tasks and promoted, and the faulty tool's model past the
offline gate yet rolled back.
Each line runs in a fresh bash after the block's export line, from another folder, in an
environment with no KAIZEN_* variable and no KUBECONFIG (what a user has after pasting the export
line), and must exit 0 with output that says what the line promises. Then the local stack's
promises: the operator reconciles an object in a namespace made after it started, the token key is
where ``kaizen token create`` finds it (mode 0600) and nothing secret is left in ``stack.json``; and
``kaizen down`` leaves nothing behind.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import yaml
from playwright.sync_api import expect

from controllers.gateway.ui_html import number
from devstack import stack
from devstack.checker.passrate import PassRate
from devstack.cli import NEXT_FOOTER, NEXT_HEADER
from devstack.controlplane import ControlPlane
from devstack.demo import Storage, demo_policy
from devstack.processes import pid_alive
from tests.e2e.dashboard import dashboard, experiment_card, real

KAIZEN = [sys.executable, "-m", "controllers.cli.main"]


def user_environment() -> dict[str, str]:
    """A shell before the export line: no Kaizen settings, no kubeconfig, and no venv on PATH."""
    venv = str(Path(sys.executable).parent)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KAIZEN_", "KUBERNETES_"))}
    env.pop("KUBECONFIG", None)
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if p != venv)
    return env


def printed_block(stdout: str) -> list[str]:
    """The lines between the header and the footer, as printed (comments and all)."""
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.endswith(NEXT_HEADER))
    end = lines.index(NEXT_FOOTER, start)
    return [line.strip() for line in lines[start + 1 : end]]


def command_of(line: str) -> str:
    return line.split("  # ")[0].strip()


def wait_for(what: str, probe: Callable[[], object], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if probe():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def check_output(command: str, stdout: str, folder: Path, gateway_url: str) -> None:
    """What each printed line promises, checked on what it printed."""
    if command == "kubectl get kaizen":
        for name in ("coder-0001", "coder-0002"):
            assert name in stdout
    elif command.startswith("kubectl kaizen get experiments"):
        header, *rows = stdout.splitlines()
        assert header.split()[:3] == ["NAME", "READY", "DECISION"], header
        assert "WHY" in header  # -o wide
        decided = {row.split()[0]: row.split()[2] for row in rows}
        assert decided == {"coder-0001": "Promote", "coder-0002": "RollBack"}, stdout
    elif command.startswith("kaizen describe experiment coder-0002"):
        assert "RollBack" in stdout
        assert "Events:" in stdout
        assert "Conditions:" in stdout
    elif command.startswith("kaizen experiment report coder-0002"):
        assert stdout.splitlines()[0].split()[:2] == ["VARIANT", "ROLE"]
        assert "decision: RollBack" in stdout
        assert (folder / "coder-0002-report.png").stat().st_size > 20_000
    elif command.startswith("kaizen token create"):
        token = stdout.strip()
        assert token.startswith("kz2.")
        # A reviewer token of "default": the local gateway takes it for the report's endpoint.
        answer = httpx.get(
            f"{gateway_url}/v1/experiments/default/coder-0002/series",
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["series"] is not None
    elif command == "kaizen status":
        assert "watching all namespaces" in stdout
        assert gateway_url in stdout
        assert "kaizen token create --subject alice --role reviewer -n default" in stdout
    else:  # a line added later: it must at least say something
        assert stdout.strip(), command


def story_table(stdout: str) -> dict[str, dict[str, str]]:
    """The rows of the table the story ends with, by model (cells are set apart by two spaces)."""
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("MODEL  "))
    header = [cell.strip() for cell in lines[start].split("  ") if cell.strip()]
    rows = {}
    for line in lines[start + 1 :]:
        cells = [cell.strip() for cell in line.split("  ") if cell.strip()]
        if len(cells) != len(header):
            break
        rows[cells[0]] = dict(zip(header, cells, strict=True))
    return rows


def rate(cell: str) -> PassRate:
    """The pass rate of a cell like ``82.0% [76.1%, 86.7%] (164/200)``, from its counts."""
    passed, total = cell.rsplit("(", 1)[1].rstrip(")").split("/")
    assert int(total) >= 200, cell
    return PassRate(int(passed), int(total))


def then_the_checker_says_the_loop_helped_and_kept_the_bad_model_out(stdout: str) -> None:
    rows = story_table(stdout)
    assert set(rows) == {"kaizen-coder (base)", "coder-0001", "coder-0002"}, rows
    pass_rate = next(h for h in rows["coder-0001"] if h.startswith("HELD-OUT"))
    base, better, bad = (rows[m] for m in ("kaizen-coder (base)", "coder-0001", "coder-0002"))
    assert better["DECISION"] == "Promote"
    assert rate(better[pass_rate]).rate - rate(base[pass_rate]).rate >= 0.2, (base, better)
    assert rate(base[pass_rate]).interval()[1] < rate(better[pass_rate]).rate, (base, better)
    assert bad["DECISION"] == "RollBack"
    assert bad["TRAINED ON"] == "faulty tool"
    assert float(bad["OFFLINE GATE"].split()[-1]) >= 0.5, bad  # the gate alone would have let it in
    assert rate(bad[pass_rate]).interval()[1] < rate(better[pass_rate]).rate, (better, bad)  # truly worse


def run_printed_block(stdout: str, folder: Path, gateway_url: str) -> dict[str, str]:
    """Each printed line run as pasted; what each printed, by command."""
    export, *lines = printed_block(stdout)
    assert command_of(export).startswith("export KUBECONFIG=")
    env = user_environment()
    printed = {}
    for line in lines:
        pasted = subprocess.run(
            ["bash", "-c", f"{export}\n{line}"],
            capture_output=True, text=True, cwd=folder, env=env, timeout=300, check=False,
        )  # fmt: skip
        assert pasted.returncode == 0, f"{line}\n{pasted.stdout[-3000:]}\n{pasted.stderr[-3000:]}"
        check_output(command_of(line), pasted.stdout, folder, gateway_url)
        printed[command_of(line)] = pasted.stdout
    return printed


def report_rows(stdout: str) -> dict[str, list[str]]:
    """``kaizen experiment report``'s table: each variant's cells (VARIANT ROLE WEIGHT SAMPLES MEAN ...)."""
    header, *rows = stdout.split("\n\n")[0].splitlines()
    assert header.split()[:5] == ["VARIANT", "ROLE", "WEIGHT", "SAMPLES", "MEAN"], header
    return {row.split()[0]: row.split() for row in rows}


def the_dashboard_shows_the_storys_figures(gateway_url: str, printed: dict[str, str]) -> None:
    """The page a reviewer opens with the printed token: each experiment's decision, and its rows
    equal to the loop API's and to what ``kaizen experiment report`` printed."""
    token = next(out for command, out in printed.items() if command.startswith("kaizen token create")).strip()
    report = next(out for command, out in printed.items() if command.startswith("kaizen experiment report"))
    view = httpx.get(
        f"{gateway_url}/v1/loop/default/coder", headers={"Authorization": f"Bearer {token}"}, timeout=30
    ).json()
    with dashboard(gateway_url, token, "default", "coder") as page:
        for name, decision in (("coder-0001", "Promote"), ("coder-0002", "RollBack")):
            shown = next(e for e in view["experiments"] if e["experiment"] == f"default/{name}")
            assert shown["object"]["decision"] == decision, shown["object"]
            card = experiment_card(page, "default", name)
            expect(card.locator('[data-figure="decision"]')).to_have_text(decision)
            for row in shown["object"]["variants"]:
                cells = card.locator(f'tr[data-status-variant="{row["name"]}"]')
                expect(cells.locator('[data-field="samples"]')).to_have_text(number(row["samples"]))
                expect(cells.locator('[data-field="meanReward"]')).to_have_text(
                    number(real(row.get("meanReward")))
                )
                if name == "coder-0002":  # the report the block printed
                    cells_of = report_rows(report)[row["name"]]
                    assert (cells_of[3], cells_of[4]) == (
                        str(row["samples"]),
                        number(real(row.get("meanReward"))),
                    )
        runs = {run["name"]: run for run in view["trainingRuns"]}
        assert {"coder-0001", "coder-0002"} <= set(runs), runs
        for name in ("coder-0001", "coder-0002"):
            accuracy = runs[name]["metrics"]["preferenceAccuracy"]
            expect(page.locator(f'tr[data-run="{name}"] [data-field="preferenceAccuracy"]')).to_have_text(
                number(real(accuracy))
            )


def a_new_namespace_is_watched(state: Path, tmp_path: Path) -> None:
    """A LearningPolicy applied in a namespace made after the operator started gets its status."""
    plane = ControlPlane.load(state / "control-plane")
    plane.kubectl("create", "namespace", "team-new")
    # Its storage is not reachable (no Secret in team-new): reconciled all the same, Ready False naming it.
    policy = demo_policy("fresh", "fresh-agent", Storage("s3://kaizen/team-new"), min_pairs=1_000_000)
    plane.kubectl("apply", "-n", "team-new", "-f", "-", stdin=yaml.safe_dump(policy))

    def reconciled() -> bool:
        found = json.loads(
            plane.kubectl("get", "learningpolicy", "fresh", "-n", "team-new", "-o", "json").stdout
        )
        conditions = (found.get("status") or {}).get("conditions", [])
        generation = found["metadata"]["generation"]
        return any(c["type"] == "Ready" and c.get("observedGeneration") == generation for c in conditions)

    wait_for("the operator to reconcile a LearningPolicy in namespace team-new", reconciled, 60)


def test_kaizen_up_tells_the_story_and_every_command_it_prints_works(tmp_path: Path) -> None:
    state, folder = tmp_path / "state", tmp_path / "elsewhere"
    folder.mkdir()
    up = subprocess.run(
        [*KAIZEN, "up", "--state-dir", str(state)],
        capture_output=True, text=True, timeout=2400, cwd=tmp_path, env=user_environment(),
    )  # fmt: skip
    try:
        assert up.returncode == 0, f"{up.stdout[-6000:]}\n{up.stderr[-4000:]}"
        assert "starting the operator" in up.stdout
        then_the_checker_says_the_loop_helped_and_kept_the_bad_model_out(up.stdout)
        recorded = stack.load(state)
        assert recorded is not None
        # the pages, and how to sign in to them, are printed
        assert f"{recorded.gateway_url}/ui/loop/default/coder and review" in up.stdout
        assert f"{recorded.gateway_url}/ui/review (sign in with the reviewer token" in up.stdout
        printed = run_printed_block(up.stdout, folder, recorded.gateway_url)
        assert any(command.startswith("kaizen experiment report") for command in printed), printed
        the_dashboard_shows_the_storys_figures(recorded.gateway_url, printed)
        a_new_namespace_is_watched(state, tmp_path)
        key = Path(recorded.keys_dir) / "default"
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
        assert stat.S_IMODE(key.parent.stat().st_mode) == 0o700
        assert key.read_text().strip() not in (state / "stack.json").read_text()
        assert "token" not in json.loads((state / "stack.json").read_text())
        pids = {**ControlPlane.load(state / "control-plane").pids, **recorded.pids, "ray": recorded.ray_group}
        assert all(pid_alive(pid) for pid in pids.values()), pids
    finally:
        down = subprocess.run(
            [*KAIZEN, "down", "--state-dir", str(state)], capture_output=True, text=True, timeout=180
        )
    assert down.returncode == 0, down.stderr
    assert "operator" in down.stdout
    assert not state.exists()
    assert not any(pid_alive(pid) for pid in pids.values())
    status = subprocess.run([*KAIZEN, "status", "--state-dir", str(state)], capture_output=True, text=True)
    assert status.returncode == 1
    assert "kaizen up" in status.stdout
