"""``kaizen up`` / ``down`` / ``status``: the whole loop on this machine, from the devstack package.

``up`` starts the local stack (control plane, SQLite store, Ray head, gateway/router, local runtime,
operator; see devstack.stack), applies a sample policy and drives a synthetic agent population
through one promotion and one rollback (devstack.demo), printing progress as it goes. The production
command line (controllers.cli.main) finds these commands through the ``kaizen.cli`` entry point, so
it never imports this package, and an image without it simply has no ``kaizen up``.
"""

from __future__ import annotations

import json
import shlex
import shutil
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from controllers.cli import localstack
from devstack.controlplane import ControlPlane, ControlPlaneError

DEFAULT_STATE_DIR = localstack.state_dir()

commands = typer.Typer()

StateDir = Annotated[
    Path,
    typer.Option("--state-dir", help="Where the local control plane keeps its data (env KAIZEN_STATE_DIR)."),
]


def _step(message: str) -> float:
    typer.secho(f"• {message}", fg=typer.colors.CYAN)
    return time.monotonic()


def _done(started: float, detail: str = "") -> None:
    typer.echo(f"  done in {time.monotonic() - started:.1f}s{(' — ' + detail) if detail else ''}")


@commands.command()
def up(
    state_dir: StateDir = DEFAULT_STATE_DIR,
    story: Annotated[bool, typer.Option(help="Run the demo story (train, promote, roll back).")] = True,
) -> None:
    """Start Kaizen locally on its embedded defaults and show the learning loop turning."""
    from devstack import demo, stack
    from devstack.agents import Population

    started_all = time.monotonic()
    try:
        started = _step("starting the local stack")
        state = stack.start(state_dir, progress=lambda m: typer.echo(f"  {m}"))
        _done(started, f"gateway {state.gateway_url}, Ray {state.ray_dashboard}")
    except (ControlPlaneError, RuntimeError, TimeoutError) as error:
        typer.secho(f"error: {error}", fg=typer.colors.RED, err=True)
        typer.echo(f"Logs are in {state_dir.resolve()}; `kaizen down` cleans up before a retry.", err=True)
        raise typer.Exit(1) from error
    kubectl = demo.Kubectl(state.kubeconfig)
    if story:
        # The demo's agents write as agent "coder" in "default", with a token signed by the local key.
        token = stack.agent_token(Path(state.keys_dir), "coder", demo.NAMESPACE)
        _story(state_dir, kubectl, Population(state.gateway_url, token, demo.NAMESPACE, demo.POLICY, "coder"))
    typer.echo()
    try:
        typer.echo(kubectl("get", "learningpolicies,trainingruns,shadowmodels,experiments"))
    except RuntimeError as error:  # nothing applied yet (--no-story), or discovery still catching up
        typer.echo(f"(no Kaizen objects to show yet: {error})")
    typer.echo(
        f"Loop dashboard: {state.gateway_url}/ui/loop/{demo.NAMESPACE}/{demo.POLICY} and review "
        f"workbench: {state.gateway_url}/ui/review (sign in with the reviewer token the "
        "`kaizen token create` line below prints)"
    )
    typer.echo(f"Finished in {time.monotonic() - started_all:.0f}s. {NEXT_HEADER}")
    lines = next_commands(state_dir, state.kubeconfig, story)
    width = max(len(command) for command, _ in lines[1:])  # the export line is longer: unpadded
    for command, why in lines:
        typer.echo(f"  {command:<{width}}  # {why}")
    typer.echo(NEXT_FOOTER)


def _path_to_kaizen() -> str:
    """`` PATH=<venv>/bin:$PATH`` when the ``kaizen`` running now is not the one on PATH (``make up``
    runs ``.venv/bin/kaizen``, and a shell without the venv would not find it); else nothing."""
    here = Path(sys.executable).parent
    on_path = shutil.which("kaizen")
    if not (here / "kaizen").is_file() or (on_path and Path(on_path).parent.resolve() == here.resolve()):
        return ""
    return f" PATH={shlex.quote(str(here))}:$PATH"


NEXT_HEADER = "Kaizen keeps running; paste these lines to use it:"
NEXT_FOOTER = "Stop it with: kaizen down"


def next_commands(state_dir: Path, kubeconfig: str, story: bool) -> list[tuple[str, str]]:
    """What ``kaizen up`` prints last, (command, what it shows): the one list of it, that
    tests/e2e/test_kaizen_up.py runs line by line after the export line. Only commands that exist:
    kubectl's, and the kaizen commands of this repository."""
    state = shlex.quote(str(state_dir.resolve()))
    export = f"export KUBECONFIG={shlex.quote(kubeconfig)} KAIZEN_STATE_DIR={state}"
    commands = [
        (export + _path_to_kaizen(), "for kubectl, and for kaizen to find this stack from any folder"),
        ("kubectl get kaizen", "every Kaizen object, with Ready/Reason columns"),
        ("kubectl kaizen get experiments -o wide", "the same through Kaizen's kubectl plugin, with why"),
    ]
    if story:
        commands += [
            ("kaizen describe experiment coder-0002", "the rollback's evidence, events and what to run next"),
            ("kaizen experiment report coder-0002", "its table and plot, read through the gateway"),
        ]
    return [
        *commands,
        (
            "kaizen token create --subject alice --role reviewer -n default",
            "a token for the gateway, signed with this stack's key",
        ),
        ("kaizen status", "what runs, what the operator watches, the gateway"),
    ]


STORY_TASKS = 256  # answers corrected per turn: about 140 of the base's fail the checker


def _story(state_dir: Path, kubectl: Any, agents: Any) -> None:
    from devstack import demo, loop, stack
    from trainer import tiny

    story = demo.Story(kubectl, agents, typer.echo)
    state = stack.load(state_dir)
    assert state is not None, "the stack is started before the story"
    storage = demo.stack_storage(state.object_store)
    started = _step("the base model, tiny://kaizen-coder (the first run pre-trains it here: minutes)")
    _done(started, str(tiny.resolve("tiny://kaizen-coder")))
    policy = demo.coder_policy(demo.POLICY, "coder", storage, min_pairs=loop.MIN_PAIRS)
    kubectl("apply", "-f", "-", stdin=json.dumps(policy))
    reviewer = stack.person_token(Path(state.keys_dir), "demo-reviewer", demo.NAMESPACE)
    turns = loop.Loop(story, storage, demo.POLICY, reviewer, loop.MIN_PAIRS)
    _step("its held-out pass rate, by the checker")
    typer.echo(f"  {turns.start().held_out} on {turns.held_out_tasks} tasks no training set contains")
    _step(
        "turn 1: people correct the agents' failed answers; coder-0001 trains on them (TRL + LoRA, Ray job)"
    )
    turns.turn(STORY_TASKS)
    _step("turn 2: a faulty tool rewrites answers into the wrong language; coder-0002 trains on that")
    turns.turn(STORY_TASKS, faulty=True)
    typer.echo(f"  traffic after the decision: {agents.work(20).served}")
    story.taken_down("coder-0002")
    _step("what the loop did, measured by the checker on held-out tasks")
    typer.echo(loop.table(turns.rows))


@commands.command()
def down(state_dir: StateDir = DEFAULT_STATE_DIR) -> None:
    """Stop what `kaizen up` started and delete its data."""
    from devstack import stack

    if not state_dir.exists():
        typer.echo(f"nothing to stop in {state_dir.resolve()}")
        return
    stopped = stack.stop(state_dir)
    shutil.rmtree(state_dir.resolve(), ignore_errors=True)
    typer.echo(f"stopped {', '.join(stopped) or 'nothing'}; removed {state_dir}")


@commands.command()
def status(state_dir: StateDir = DEFAULT_STATE_DIR) -> None:
    """Say what of the local stack runs, what the operator watches, and how to reach the gateway."""
    from devstack import stack
    from devstack.processes import pid_alive

    plane_dir = (state_dir / "control-plane").resolve()
    if not (plane_dir / "state.json").exists():
        typer.echo("not running (start it with: kaizen up)")
        raise typer.Exit(1)
    plane = ControlPlane.load(plane_dir)
    if not plane.running():
        typer.echo(f"stopped (state left in {plane_dir}; `kaizen down` cleans up, `kaizen up` restarts)")
        raise typer.Exit(1)
    typer.echo(f"control plane: running at {plane.server}")
    typer.echo(f"  export KUBECONFIG={shlex.quote(str(plane.kubeconfig))}")
    state = stack.load(state_dir)
    if state is None:
        typer.echo("operator, gateway: not started (`kaizen up` starts them)")
        return
    alive = {name: bool(pid) and pid_alive(pid) for name, pid in state.pids.items()}
    watched = ", ".join(state.watch) if state.watch else "all namespaces"
    typer.echo(f"operator: {_running(alive.get('operator'))}, watching {watched}")
    typer.echo(f"gateway: {_running(alive.get('gateway'))} at {state.gateway_url}")
    typer.echo(f"  export KAIZEN_GATEWAY_URL={state.gateway_url}")
    if state.object_store:
        typer.echo(
            f"object store: {_running(alive.get('objectstore'))} at {state.object_store} (s3://kaizen;"
            " keys in Secret default/kaizen-storage)"
        )
    keys = shlex.quote(state.keys_dir)
    typer.echo(f"token (its key is {state.keys_dir}, mode 0600):")
    typer.echo(f"  kaizen token create --subject alice --role reviewer -n default --keys-dir {keys}")
    typer.echo(
        f"  (run where `kaizen up` ran, or with KAIZEN_STATE_DIR={shlex.quote(str(state_dir.resolve()))},"
    )
    typer.echo("   --keys-dir may be left out)")


def _running(alive: bool | None) -> str:
    return "running" if alive else "not running (see its log in the state folder; `kaizen up` restarts it)"


def register(app: typer.Typer) -> None:
    """Add ``up``, ``down`` and ``status`` to the ``kaizen`` command line (the ``kaizen.cli`` entry point)."""
    for command in commands.registered_commands:
        app.registered_commands.append(command)
