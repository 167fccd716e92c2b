"""``python -m trainer --config <file|URI|JSON>``: the Ray job's entrypoint.

Exit codes tell the operator what to do next: 0 trained (or had already trained) and wrote the
manifest; 2 the config or the data is wrong, so retrying cannot help; 1 anything else, which a
retry with the next attempt may fix (it resumes from the newest checkpoint). A storage failure (a
refused key, an unreachable store) exits 1 with ``StorageError: <what and what to do>`` as the log's
last line, the line the operator shows in the run's condition.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from pydantic import ValidationError

from trainer.config import TrainerConfig
from trainer.data import SnapshotError
from trainer.storage import StorageError, explained, filesystem

EXIT_INVALID = 2
EXIT_RETRYABLE = 1


def storage_failed(error: StorageError) -> int:
    """Say what the store did as the log's last line: Ray's own log lines (its summaries of repeated
    worker lines among them) are flushed first, by shutting Ray down."""
    if "ray" in sys.modules:
        import ray

        ray.shutdown()
    print(f"StorageError: {error}", file=sys.stderr, flush=True)
    return EXIT_RETRYABLE


def load_config(value: str) -> TrainerConfig:
    """Inline JSON (starts with ``{``), or a local path or fsspec URI of a JSON file."""
    if value.lstrip().startswith("{"):
        return TrainerConfig.parse(value)
    fs, path = filesystem(value)
    with explained("reading the config", value):
        text = fs.cat_file(path).decode()
    return TrainerConfig.parse(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m trainer", description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="TrainerConfig as JSON, or a file/URI holding it")
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config)
    except StorageError as error:
        return storage_failed(error)
    except (ValidationError, ValueError, OSError) as error:
        print(f"[kaizen-trainer] invalid config: {error}", file=sys.stderr, flush=True)
        return EXIT_INVALID
    print(f"{time.strftime('%H:%M:%S')} [kaizen-trainer] config {config.run_name} parsed", flush=True)
    from trainer.driver import run  # imported late: config errors are reported without loading torch

    try:
        manifest = run(config)
    except SnapshotError as error:
        print(f"[kaizen-trainer] invalid dataset: {error}", file=sys.stderr, flush=True)
        return EXIT_INVALID
    except StorageError as error:
        return storage_failed(error)
    print(json.dumps({"manifest": config.manifest_uri, "metrics": manifest.metrics.to_wire()}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
