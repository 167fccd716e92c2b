"""``python -m controllers.loader --vllm URL --listen HOST:PORT --adapters DIR``: the loader process.

The shared base's predictor runs it beside vLLM (``controllers.builders.loader_sidecar``); the
operator calls its port on every replica (``controllers.reconcile.lora``).
"""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

import uvicorn

from controllers.builders.loader_sidecar import LOADER_TOKEN_ENV
from controllers.loader.app import LoaderSettings, create_app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m controllers.loader", description=__doc__)
    parser.add_argument("--vllm", default="http://127.0.0.1:8080", help="vLLM's base URL in this pod")
    parser.add_argument("--listen", default="0.0.0.0:8090", help="HOST:PORT to answer on")
    parser.add_argument(
        "--adapters",
        type=Path,
        default=Path("/mnt/kaizen-adapters"),
        help="the volume vLLM reads adapters from",
    )
    args = parser.parse_args(argv)
    host, _, port = args.listen.rpartition(":")
    if not host or not port.isdigit():
        parser.error(f"--listen {args.listen!r}: expected HOST:PORT, e.g. 0.0.0.0:8090")
    token = os.environ.get(LOADER_TOKEN_ENV, "")
    if len(token) < 16:
        parser.error(
            f"{LOADER_TOKEN_ENV} must hold the operator's token (16 characters or more): the shared base's"
            " predictor takes it from the Secret <inference service>-kaizen-loader that the operator makes"
        )
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per call to vLLM says nothing new
    app = create_app(LoaderSettings(vllm=args.vllm.rstrip("/"), adapters=args.adapters, token=token))
    uvicorn.run(app, host=host, port=int(port), log_level="info")


if __name__ == "__main__":
    main()
