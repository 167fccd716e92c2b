"""The ``kaizen`` command line: the experience store, the gateway, tokens and experiment reports.

``kaizen up``/``down``/``status`` (the whole loop on this machine) are added by the devstack package when it
is installed (``_plugins``).
"""

from __future__ import annotations

from importlib.metadata import entry_points

import typer

from controllers.cli import describe as describecli
from controllers.cli import experiment as experimentcli
from controllers.cli import get as getcli
from controllers.cli import intervene, tokens, training
from controllers.cli import store as storecli

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
app.add_typer(tokens.token_app, name="token")
app.add_typer(experimentcli.experiment_app, name="experiment")
# On call: read objects as kubectl does (also `kubectl kaizen get|describe`, the kubectl-kaizen script).
app.command("get")(getcli.get)
app.command("describe")(describecli.describe)
intervene.register(app)  # promote, abort, approve, pause, resume
training.register(app)  # retry, train, logs


def _plugins() -> None:
    """Commands other installed packages add (``kaizen up``/``down``/``status`` from devstack).

    Found through the ``kaizen.cli`` entry-point group, so production code names no such package; an
    image that ships without it (the operator image) has no such commands and nothing to import.
    """
    for entry in entry_points(group="kaizen.cli"):
        try:
            register = entry.load()
        except ModuleNotFoundError as missing:
            gone = missing.name or ""
            if entry.module != gone and not entry.module.startswith(gone + "."):
                raise  # the package is there but something it needs is not: say so
            continue  # declared by the project's metadata, not shipped in this image
        register(app)


_plugins()

if __name__ == "__main__":
    app()
