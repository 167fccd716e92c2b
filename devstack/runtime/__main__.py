"""``python -m devstack.runtime --kubeconfig FILE [--ray-address URL] [--state-dir DIR] ...``"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
from pathlib import Path

from devstack.runtime.app import Settings, serve


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m devstack.runtime",
        description="Stand-in controllers for RayJob (on a local Ray head) and InferenceService (local model servers).",
    )
    parser.add_argument(
        "--kubeconfig",
        type=Path,
        default=os.environ.get("KUBECONFIG"),
        required=not os.environ.get("KUBECONFIG"),
    )
    parser.add_argument("--ray-address", help="dashboard URL of the Ray head, e.g. http://127.0.0.1:8265")
    parser.add_argument(
        "--ray-token",
        default=os.environ.get("KAIZEN_RAY_TOKEN"),
        help="Ray's auth token (or KAIZEN_RAY_TOKEN)",
    )
    parser.add_argument(
        "--state-dir", type=Path, default=Path(".kaizen/runtime"), help="state file and server logs"
    )
    parser.add_argument(
        "--upstream-crds", type=Path, help="folder with the upstream CRDs (default ../shared/upstream-crds)"
    )
    parser.add_argument("--no-install-crds", action="store_true", help="the CRDs are installed already")
    parser.add_argument("--max-tokens", type=int, default=64, help="cap on tokens per generated answer")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request otherwise
    settings = Settings(
        kubeconfig=args.kubeconfig,
        state_dir=args.state_dir,
        ray_address=args.ray_address,
        ray_token=args.ray_token,
        upstream_crds=args.upstream_crds,
        install_crds=not args.no_install_crds,
        max_tokens=args.max_tokens,
    )

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await serve(settings, stop)

    asyncio.run(run())


if __name__ == "__main__":
    main()
