"""Writing a run's results: the adapter files with their digests, and the manifest, through fsspec.

The adapter folder is what serving loads (``adapter_model.safetensors`` + ``adapter_config.json``); the
manifest next to it is what the operator records. The manifest is written last and in one piece, so
its presence means the adapter beside it is complete; a rerun that finds a manifest with its own
config hash has nothing left to do.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
from pathlib import Path

from trainer.config import ADAPTER_WEIGHTS, AdapterFile, AdapterRecord, TrainerManifest
from trainer.storage import filesystem, is_local

RESULT_NAME = "result.json"  # the worker's metrics, carried inside the final Ray checkpoint
_PACKAGES = ("kaizen", "trl", "peft", "transformers", "torch", "ray")


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return "sha256:" + digest.hexdigest()


def adapter_files(folder: Path) -> tuple[AdapterFile, ...]:
    """Digests of the adapter files in ``folder`` (everything except the worker's result.json)."""
    return tuple(
        AdapterFile(name=path.name, sha256=sha256_file(path), size=path.stat().st_size)
        for path in sorted(folder.iterdir())
        if path.is_file() and path.name != RESULT_NAME
    )


def publish_adapter(folder: Path, uri: str) -> AdapterRecord:
    """Copy the adapter files from a local folder to ``uri`` and describe them."""
    files = adapter_files(folder)
    if ADAPTER_WEIGHTS not in {f.name for f in files}:
        raise FileNotFoundError(f"{folder} holds no {ADAPTER_WEIGHTS}")
    fs, root = filesystem(uri)
    fs.makedirs(root, exist_ok=True)
    for item in files:
        fs.put_file(str(folder / item.name), f"{root.rstrip('/')}/{item.name}")
    digest = next(f.sha256 for f in files if f.name == ADAPTER_WEIGHTS)
    return AdapterRecord(uri=uri, digest=digest, files=files)


def write_manifest(manifest: TrainerManifest, uri: str) -> None:
    """Write the manifest in one piece: a temporary name then a rename on a local disk, one PUT on an
    object store (which makes an object visible whole or not at all)."""
    text = manifest.model_dump_json(by_alias=True, indent=2) + "\n"
    fs, path = filesystem(uri)
    if is_local(uri):
        temporary = Path(path).with_suffix(".tmp")
        temporary.parent.mkdir(parents=True, exist_ok=True)
        temporary.write_text(text)
        temporary.replace(path)
    else:
        fs.pipe_file(path, text.encode())


def read_manifest(uri: str) -> TrainerManifest | None:
    """The manifest at ``uri``, or None if there is none. Read in one request: only "not found" means
    none; any other failure (a refused key, an unreachable store) is raised, never taken for absence."""
    fs, path = filesystem(uri)
    try:
        text = fs.cat_file(path)
    except FileNotFoundError:
        return None
    return TrainerManifest.model_validate_json(text)


def versions() -> dict[str, str]:
    found = {}
    for package in _PACKAGES:
        try:
            found[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            found[package] = "unknown"
    return found
