"""The ``kaizen`` command line: ``kaizen up`` brings up Kaizen on this machine, ``kaizen down`` removes it.

For now ``up`` starts the local control plane (etcd + kube-apiserver), installs the generated CRDs,
applies the examples and shows ``kubectl get kaizen``; the later issues add the store, Ray, the
gateway and the operator to the same command.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Annotated

import typer

from controllers import storecli
from controllers.local.controlplane import ControlPlane, ControlPlaneError

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_STATE_DIR = Path(os.environ.get("KAIZEN_STATE_DIR", ".kaizen"))

app = typer.Typer(
    help="Kaizen: make LLM agents learn from their own experience, on Kubernetes.",
    no_args_is_help=True,
    add_completion=False,
)

app.add_typer(storecli.db_app, name="db")
app.command("ingest")(storecli.ingest)
app.add_typer(storecli.pairs_app, name="pairs")
app.command("export")(storecli.export)
app.add_typer(storecli.gateway_app, name="gateway")
app.add_typer(storecli.token_app, name="token")

StateDir = Annotated[
    Path,
    typer.Option("--state-dir", help="Where the local control plane keeps its data (env KAIZEN_STATE_DIR)."),
]


def _step(message: str) -> float:
    typer.secho(f"• {message}", fg=typer.colors.CYAN)
    return time.monotonic()


def _done(started: float, detail: str = "") -> None:
    typer.echo(f"  done in {time.monotonic() - started:.1f}s{(' — ' + detail) if detail else ''}")


@app.command()
def up(
    state_dir: StateDir = DEFAULT_STATE_DIR,
    examples: Annotated[bool, typer.Option(help="Apply the sample objects from examples/.")] = True,
) -> None:
    """Start Kaizen locally on its embedded defaults and show what is running."""
    plane_dir = (state_dir / "control-plane").resolve()
    try:
        if (plane_dir / "state.json").exists() and ControlPlane.load(plane_dir).running():
            plane = ControlPlane.load(plane_dir)
            typer.echo(f"• control plane already running at {plane.server}")
        else:
            started = _step("starting etcd + kube-apiserver (the first run builds kube-apiserver: ~7 min)")
            if plane_dir.exists():
                shutil.rmtree(plane_dir)
            plane = ControlPlane(plane_dir)
            plane.start()
            _done(started, plane.server)
        started = _step("installing the Kaizen CRDs")
        names = plane.install_crds(sorted((ROOT / "crds").glob("*.yaml")))
        _done(started, ", ".join(names))
        if examples:
            started = _step("applying examples/")
            plane.kubectl("apply", "-f", str(ROOT / "examples"))
            _done(started)
        typer.echo()
        typer.echo(plane.kubectl("get", "kaizen").stdout)
    except ControlPlaneError as error:
        typer.secho(f"error: {error}", fg=typer.colors.RED, err=True)
        typer.echo("Logs are in " + str(plane_dir) + "; `kaizen down` cleans up before a retry.", err=True)
        raise typer.Exit(1) from error
    typer.echo("Use it with kubectl:")
    typer.secho(f"  export KUBECONFIG={plane.kubeconfig}", bold=True)
    typer.echo("  kubectl get kaizen            # every Kaizen object, with Ready/Reason columns")
    typer.echo("  kubectl explain learningpolicy.spec")
    typer.echo("Stop it with: kaizen down")


@app.command()
def down(state_dir: StateDir = DEFAULT_STATE_DIR) -> None:
    """Stop what `kaizen up` started and delete its data."""
    plane_dir = (state_dir / "control-plane").resolve()
    if not (plane_dir / "state.json").exists():
        typer.echo(f"nothing to stop in {plane_dir}")
        return
    ControlPlane.load(plane_dir).stop()
    shutil.rmtree(state_dir.resolve())
    typer.echo(f"stopped and removed {state_dir}")


@app.command()
def status(state_dir: StateDir = DEFAULT_STATE_DIR) -> None:
    """Say whether the local control plane runs, and how to reach it."""
    plane_dir = (state_dir / "control-plane").resolve()
    if not (plane_dir / "state.json").exists():
        typer.echo("not running (start it with: kaizen up)")
        raise typer.Exit(1)
    plane = ControlPlane.load(plane_dir)
    if not plane.running():
        typer.echo(f"stopped (state left in {plane_dir}; `kaizen down` cleans up, `kaizen up` restarts)")
        raise typer.Exit(1)
    typer.echo(f"running at {plane.server}; export KUBECONFIG={plane.kubeconfig}")


if __name__ == "__main__":
    app()
