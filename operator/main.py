"""The Kaizen operator process (the image's entrypoint): flags and environment → controllers.operator.app.

    python operator/main.py --namespace team-a --metrics-port 8080 --health-port 8081

Every flag has a KAIZEN_* environment variable (the Helm chart sets those); flags win. Without
``--namespace`` (or ``KAIZEN_WATCH_NAMESPACES``) the operator watches every namespace.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from collections.abc import Callable
from dataclasses import MISSING, fields
from pathlib import Path
from typing import Any

# Run as a script from anywhere: the repository (or the image's /app) holds the controllers package.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from controllers.operator.app import LEASE_SECONDS, run
from controllers.reconcile.deps import Settings

# Flags that fill a Settings field of the same name: (flag, environment variable, type, help). Their
# defaults are Settings' own (controllers.reconcile.deps), so the process and ``kaizen up`` agree.
SETTING_FLAGS: list[tuple[str, str, Callable[[str], Any], str | None]] = [
    ("--database-url", "KAIZEN_DATABASE_URL", str, "experience store URL"),
    ("--gateway-url", "KAIZEN_GATEWAY_URL", str, "the router/gateway base URL"),
    ("--gateway-token", "KAIZEN_GATEWAY_TOKEN", str, "bearer token for the gateway"),
    (
        "--gateway-token-file",
        "KAIZEN_GATEWAY_TOKEN_FILE",
        str,
        "file with the gateway token, re-read on every call (the chart mounts the ServiceAccount's)",
    ),
    ("--data-root", "KAIZEN_DATA_ROOT", Path, "where dataset snapshots are written"),
    ("--python", "KAIZEN_TRAINER_PYTHON", str, "interpreter in trainer entrypoints"),
    ("--poll-seconds", "KAIZEN_POLL_SECONDS", float, None),
    ("--policy-poll-seconds", "KAIZEN_POLICY_POLL_SECONDS", float, None),
    ("--experiment-poll-seconds", "KAIZEN_EXPERIMENT_POLL_SECONDS", float, None),
    (
        "--rest-seconds",
        "KAIZEN_REST_SECONDS",
        float,
        "how often finished runs, models and experiments are looked at again",
    ),
    (
        "--loader-image",
        "KAIZEN_LOADER_IMAGE",
        str,
        "image of the LoRA loader beside vLLM in shared bases (the operator's own image)",
    ),
    ("--served-host", "KAIZEN_SERVED_HOST", str, argparse.SUPPRESS),
]
SETTING_DEFAULTS = {f.name: f.default for f in fields(Settings) if f.default is not MISSING}


def field_of(flag: str) -> str:
    return flag.removeprefix("--").replace("-", "_")


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    env = os.environ.get
    parser = argparse.ArgumentParser(prog="kaizen-operator", description="Run the Kaizen operator.")
    parser.add_argument(
        "--namespace",
        action="append",
        default=[],
        help="watch only this namespace (repeatable; env KAIZEN_WATCH_NAMESPACES, comma-separated);"
        " default: every namespace",
    )
    parser.add_argument(
        "--lease-namespace",
        default=env("KAIZEN_OPERATOR_NAMESPACE", "default"),
        help="namespace of the leader-election Lease",
    )
    for flag, variable, type_, help_ in SETTING_FLAGS:
        # argparse converts a string default (the environment's) with ``type``, as it does a flag's value.
        default = env(variable, SETTING_DEFAULTS.get(field_of(flag)))
        parser.add_argument(flag, type=type_, default=default, help=help_)
    parser.add_argument("--lease-seconds", type=float, default=env("KAIZEN_LEASE_SECONDS", LEASE_SECONDS))
    parser.add_argument("--kubeconfig", default=env("KUBECONFIG"))
    parser.add_argument("--metrics-port", type=int, default=env("KAIZEN_METRICS_PORT", 8080))
    parser.add_argument("--health-port", type=int, default=env("KAIZEN_HEALTH_PORT", 8081))
    args = parser.parse_args(argv)
    if not args.database_url:
        parser.error("--database-url (or KAIZEN_DATABASE_URL) is required: the experience store's URL")
    if not args.namespace and env("KAIZEN_WATCH_NAMESPACES"):
        args.namespace = [n for n in env("KAIZEN_WATCH_NAMESPACES", "").split(",") if n]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # One line per request or per timer tick buries the decisions; warnings and errors still show.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    settings = Settings(**{field_of(flag): getattr(args, field_of(flag)) for flag, *_ in SETTING_FLAGS})

    async def serve() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await run(
            settings,
            namespaces=args.namespace,
            lease_namespace=args.lease_namespace,
            kubeconfig=args.kubeconfig,
            health_port=args.health_port or None,
            metrics_port=args.metrics_port or None,
            lease_seconds=args.lease_seconds,
            stop=stop,
        )

    asyncio.run(serve())
    return 0


if __name__ == "__main__":
    sys.exit(main())
