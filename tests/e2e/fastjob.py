"""A trainer stand-in for the chaos suite: the trainer's CLI and outputs, done in about a second.

The operator submits ``<python> -m trainer --config <json>`` as a real Ray job; with ``--python``
pointing at the shim ``write_shim`` makes, this module runs instead of TRL: it publishes a real LoRA
adapter (made once per session with PEFT, so model servers can load it) under the config's output
URI and writes a TrainerManifest exactly where and how the real driver does. Everything around it —
the Ray job, the RayJob object, the manifest the operator reads — is the real thing. A run whose name
contains "fail" fails, for retry tests, until a file named FIXED is in its output folder (a test
mending the cause before a person retries the run).
"""

from __future__ import annotations

import os
import sys
from datetime import UTC, datetime
from pathlib import Path

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
    import fsspec

    fs, path = fsspec.core.url_to_fs(output_uri)
    return bool(fs.exists(f"{path}/FIXED"))


def main(argv: list[str]) -> int:
    from trainer.config import DatasetRecord, Metrics, ResumeRecord, Timings, TrainerConfig, TrainerManifest
    from trainer.outputs import publish_adapter, versions, write_manifest

    if argv[:2] != ["-m", "trainer"] or "--config" not in argv:
        print(f"fastjob: expected '-m trainer --config <json>', got {argv[:3]}", file=sys.stderr)
        return 2
    config = TrainerConfig.model_validate_json(argv[argv.index("--config") + 1])
    if "fail" in config.run_name and not _fixed(config.output_uri):  # fails as a lost node would
        print(f"fastjob: {config.run_name} fails on purpose", file=sys.stderr)
        return 1
    started = datetime.now(UTC)
    adapter = publish_adapter(Path(os.environ[ADAPTER_ENV]), config.adapter_uri)
    manifest = TrainerManifest(
        run_name=config.run_name,
        method=config.method,
        config_hash=config.config_hash(),
        base_model=config.base_model,
        dataset=DatasetRecord(
            uri=config.dataset.uri, content_hash="sha256:" + "0" * 64, train_rows=1, eval_rows=1
        ),
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
