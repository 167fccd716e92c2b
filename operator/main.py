"""The Kaizen operator process (the image's entrypoint): flags and environment → controllers.operator.app.

    python operator/main.py --namespace team-a --metrics-port 8080 --health-port 8081

Every flag has a KAIZEN_* environment variable (the Helm chart sets those); flags win.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from pathlib import Path

# Run as a script from anywhere: the repository (or the image's /app) holds the controllers package.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from controllers.operator.app import run
from controllers.reconcile.deps import Settings


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    env = os.environ.get
    parser = argparse.ArgumentParser(prog="kaizen-operator", description="Run the Kaizen operator.")
    parser.add_argument(
        "--namespace", action="append", default=[], help="watch only this namespace (repeatable); default all"
    )
    parser.add_argument(
        "--lease-namespace",
        default=env("KAIZEN_OPERATOR_NAMESPACE", "default"),
        help="namespace of the leader-election Lease",
    )
    parser.add_argument("--database-url", default=env("KAIZEN_DATABASE_URL"), help="experience store URL")
    parser.add_argument(
        "--gateway-url",
        default=env("KAIZEN_GATEWAY_URL", "http://kaizen-gateway:8000"),
        help="the router/gateway base URL",
    )
    parser.add_argument(
        "--gateway-token", default=env("KAIZEN_GATEWAY_TOKEN", ""), help="bearer token for the gateway"
    )
    parser.add_argument(
        "--data-root",
        default=env("KAIZEN_DATA_ROOT", "/var/lib/kaizen"),
        help="where dataset snapshots are written",
    )
    parser.add_argument(
        "--python", default=env("KAIZEN_TRAINER_PYTHON", "python"), help="interpreter in trainer entrypoints"
    )
    parser.add_argument("--poll-seconds", type=float, default=float(env("KAIZEN_POLL_SECONDS", "5")))
    parser.add_argument(
        "--policy-poll-seconds", type=float, default=float(env("KAIZEN_POLICY_POLL_SECONDS", "30"))
    )
    parser.add_argument(
        "--experiment-poll-seconds", type=float, default=float(env("KAIZEN_EXPERIMENT_POLL_SECONDS", "1"))
    )
    parser.add_argument(
        "--rest-seconds",
        type=float,
        default=float(env("KAIZEN_REST_SECONDS", "60")),
        help="how often finished runs, models and experiments are looked at again",
    )
    parser.add_argument("--lease-seconds", type=float, default=float(env("KAIZEN_LEASE_SECONDS", "15")))
    parser.add_argument("--kubeconfig", default=env("KUBECONFIG"))
    parser.add_argument("--metrics-port", type=int, default=int(env("KAIZEN_METRICS_PORT", "8080")))
    parser.add_argument("--health-port", type=int, default=int(env("KAIZEN_HEALTH_PORT", "8081")))
    parser.add_argument("--served-host", default=env("KAIZEN_SERVED_HOST"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if not args.database_url:
        parser.error("--database-url (or KAIZEN_DATABASE_URL) is required: the experience store's URL")
    if not args.namespace and env("KAIZEN_WATCH_NAMESPACES"):
        args.namespace = [n for n in env("KAIZEN_WATCH_NAMESPACES", "").split(",") if n]
    return args


TOKEN_TTL_SECONDS = 400 * 24 * 3600  # the pod restarts long before; a restart mints a new one


def env_secret() -> str:
    return os.environ.get("KAIZEN_TOKEN_SECRET", "")


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # One line per request or per timer tick buries the decisions; warnings and errors still show.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    if not args.gateway_token and env_secret():
        # The chart hands the operator the gateway's signing secret, not a token: mint one.
        from controllers.gateway import auth

        args.gateway_token = auth.issue(env_secret(), "kaizen-operator", TOKEN_TTL_SECONDS)
    settings = Settings(
        database_url=args.database_url,
        data_root=Path(args.data_root),
        gateway_url=args.gateway_url,
        gateway_token=args.gateway_token,
        python=args.python,
        poll_seconds=args.poll_seconds,
        policy_poll_seconds=args.policy_poll_seconds,
        experiment_poll_seconds=args.experiment_poll_seconds,
        rest_seconds=args.rest_seconds,
        served_host=args.served_host,
    )

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
