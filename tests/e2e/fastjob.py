"""A trainer stand-in for the chaos suite: the trainer's CLI and outputs, done in about a second.

The operator submits ``<python> -m trainer --config <json>`` as a real Ray job; with ``--python``
pointing at the shim ``write_shim`` makes, this module runs instead of TRL: it publishes a real LoRA
adapter (made once per session with PEFT, so model servers can load it) under the config's output
URI and writes a TrainerManifest exactly where and how the real driver does. Everything around it —
the Ray job, the RayJob object, the manifest the operator reads — is the real thing. Like the real
trainer it reaches storage only through ``trainer.storage`` (the URIs in the config, the credentials
in the environment) and reads nothing the operator wrote locally: the dataset's ``snapshot.json`` at
the dataset URI must be there, and its hash must be the one the config names. A run whose name
contains "fail" fails, for retry tests, until a file named FIXED is in its output folder (a test
mending the cause before a person retries the run).
"""

from __future__ import annotations

import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from trainer.config import DatasetRecord, TrainerConfig

ADAPTER_ENV = "KAIZEN_FAST_ADAPTER"


def write_shim(folder: Path, adapter: Path) -> Path:
    """An executable that behaves like ``python -m trainer`` but runs this module."""
    root = Path(__file__).resolve().parents[2]
    shim = folder / "fast-python"
    shim.write_text(
        f"#!{sys.executable}\n"
        "import os, sys\n"
        f"sys.path.insert(0, {str(root)!r})\n"
        f"os.environ.setdefault({ADAPTER_ENV!r}, {str(adapter)!r})\n"
        "from tests.e2e.fastjob import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    shim.chmod(0o755)
    return shim


def _fixed(output_uri: str) -> bool:
    from trainer.storage import filesystem

    fs, path = filesystem(output_uri)
    return bool(fs.exists(f"{path.rstrip('/')}/FIXED"))


def dataset_record(config: TrainerConfig) -> DatasetRecord:
    """What the dataset's snapshot.json says (snake_case as the operator writes it, or camelCase as
    trainer.data does); a missing file or another hash than the config's is bad input, as for the trainer."""
    from trainer.config import DatasetRecord, join_uri
    from trainer.data import SnapshotError
    from trainer.storage import filesystem

    uri = join_uri(config.dataset.uri, "snapshot.json")
    fs, path = filesystem(uri)
    try:
        meta = json.loads(fs.cat_file(path))
    except FileNotFoundError:
        raise SnapshotError(f"no snapshot.json at {uri}") from None
    digest = meta.get("content_hash") or meta.get("contentHash")
    if config.dataset.content_hash is not None and digest != config.dataset.content_hash:
        raise SnapshotError(
            f"snapshot {uri} records {digest}, but the config expects {config.dataset.content_hash}"
        )
    return DatasetRecord(
        uri=config.dataset.uri,
        content_hash=digest,
        train_rows=meta.get("train_rows", meta.get("trainRows", 0)),
        eval_rows=meta.get("eval_rows", meta.get("evalRows", 0)),
    )


def main(argv: list[str]) -> int:
    from trainer.__main__ import EXIT_INVALID, storage_failed
    from trainer.config import TrainerConfig
    from trainer.data import SnapshotError
    from trainer.storage import StorageError, explained

    if argv[:2] != ["-m", "trainer"] or "--config" not in argv:
        print(f"fastjob: expected '-m trainer --config <json>', got {argv[:3]}", file=sys.stderr)
        return EXIT_INVALID
    config = TrainerConfig.model_validate_json(argv[argv.index("--config") + 1])
    try:
        with explained("publishing to", config.output_uri):
            return publish(config)
    except SnapshotError as error:
        print(f"[kaizen-trainer] invalid dataset: {error}", file=sys.stderr, flush=True)
        return EXIT_INVALID
    except StorageError as error:
        return storage_failed(error)


def publish(config: TrainerConfig) -> int:
    from trainer.config import Metrics, ResumeRecord, Timings, TrainerManifest
    from trainer.outputs import publish_adapter, versions, write_manifest

    if "fail" in config.run_name and not _fixed(config.output_uri):  # fails as a lost node would
        print(f"fastjob: {config.run_name} fails on purpose", file=sys.stderr)
        return 1
    started = datetime.now(UTC)
    dataset = dataset_record(config)
    adapter = publish_adapter(Path(os.environ[ADAPTER_ENV]), config.adapter_uri)
    manifest = TrainerManifest(
        run_name=config.run_name,
        method=config.method,
        config_hash=config.config_hash(),
        base_model=config.base_model,
        dataset=dataset,
        adapter=adapter,
        metrics=Metrics(preference_accuracy=0.9, reward_margin=0.5, steps=1, eval_pairs=1),
        resume=ResumeRecord(),
        timings=Timings(
            started_at=started,
            finished_at=datetime.now(UTC),
            train_seconds=0.0,
            eval_seconds=0.0,
            total_seconds=0.1,
        ),
        scaling=config.scaling,
        device="cpu",
        versions=versions(),
    )
    write_manifest(manifest, config.manifest_uri)
    print(f"fastjob: wrote {config.manifest_uri}")
    return 0
