"""Dataset snapshots as the trainer reads them: a folder of Parquet (or JSONL) splits, hashed by content.

A snapshot folder holds ``train.parquet`` and ``eval.parquet`` (zstd; ``.jsonl`` files are accepted
too) and a ``snapshot.json`` with the content hash and row counts. DPO rows carry prompt/chosen/rejected;
SFT rows carry instruction/input/output (per role), or prompt/chosen when they come from pairs. The
content hash is computed from the rows themselves, so the trainer can prove which data it trained on:
same rows in the same order, same hash, whatever the file encoding. Storage goes through fsspec, so
the same code reads a local folder here and s3:// or gs:// in a cluster (trainer.storage opens them).
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from trainer.storage import filesystem

SPLITS = ("train", "eval")
Row = dict[str, Any]


@dataclass(frozen=True)
class Snapshot:
    uri: str
    train: list[Row]
    eval: list[Row]
    content_hash: str


class SnapshotError(ValueError):
    """The snapshot is missing, malformed, or not the one the config names."""


def content_hash(train: Iterable[Row], eval: Iterable[Row]) -> str:
    """sha256 over the splits' rows as canonical JSON lines (sorted keys), train first."""
    digest = hashlib.sha256()
    for name, split in zip(SPLITS, (train, eval), strict=True):
        digest.update(f"#{name}\n".encode())
        for row in split:
            digest.update(json.dumps(row, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode())
            digest.update(b"\n")
    return "sha256:" + digest.hexdigest()


def write_snapshot(folder: Path, train: list[Row], eval: list[Row]) -> Snapshot:
    """Write both splits as zstd Parquet plus snapshot.json (used by tests, benchmarks and the synthetic task)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, split in zip(SPLITS, (train, eval), strict=True):
        pq.write_table(pa.Table.from_pylist(split), folder / f"{name}.parquet", compression="zstd")
    digest = content_hash(train, eval)
    meta = {"contentHash": digest, "trainRows": len(train), "evalRows": len(eval)}
    (folder / "snapshot.json").write_text(json.dumps(meta, indent=2) + "\n")
    return Snapshot(uri=str(folder), train=train, eval=eval, content_hash=digest)


def _read_split(uri: str, name: str) -> list[Row]:
    fs, path = filesystem(uri)
    parquet, jsonl = f"{path.rstrip('/')}/{name}.parquet", f"{path.rstrip('/')}/{name}.jsonl"
    if fs.exists(parquet):
        with fs.open(parquet, "rb") as handle:
            table = pq.read_table(io.BytesIO(handle.read()))
        rows: list[Row] = table.to_pylist()
        return rows
    if fs.exists(jsonl):
        with fs.open(jsonl, "rt", encoding="utf-8") as handle:
            return [json.loads(line) for line in handle if line.strip()]
    raise SnapshotError(f"snapshot {uri!r} has no {name}.parquet or {name}.jsonl")


def read_snapshot(uri: str, expected_hash: str | None = None) -> Snapshot:
    """Read both splits; fail if the rows do not hash to ``expected_hash`` (when one is given)."""
    train, eval = _read_split(uri, "train"), _read_split(uri, "eval")
    if not train:
        raise SnapshotError(f"snapshot {uri!r} has an empty train split")
    digest = content_hash(train, eval)
    if expected_hash is not None and digest != expected_hash:
        raise SnapshotError(f"snapshot {uri!r} hashes to {digest}, but the config expects {expected_hash}")
    return Snapshot(uri=uri, train=train, eval=eval, content_hash=digest)


def sft_prompt(row: Row) -> str:
    """The prompt an SFT row is trained on: the instruction, then the input when there is one."""
    instruction, extra = str(row.get("instruction", "")), str(row.get("input") or "")
    return f"{instruction}{extra}\n" if extra else instruction


def preference_rows(rows: list[Row]) -> list[Row]:
    """prompt/chosen/rejected rows for DPO and for preference evaluation (empty if rows have no rejected)."""
    result = []
    for row in rows:
        if "prompt" in row and "chosen" in row and "rejected" in row:
            result.append({"prompt": row["prompt"], "chosen": row["chosen"], "rejected": row["rejected"]})
        elif "instruction" in row and "output" in row and row.get("rejected"):
            result.append({"prompt": sft_prompt(row), "chosen": row["output"], "rejected": row["rejected"]})
    return result


def completion_rows(rows: list[Row]) -> list[Row]:
    """prompt/completion rows for SFT, from instruction/input/output or from the chosen side of pairs."""
    result = []
    for row in rows:
        if "instruction" in row and "output" in row:
            result.append({"prompt": sft_prompt(row), "completion": row["output"]})
        elif "prompt" in row and "chosen" in row:
            result.append({"prompt": row["prompt"], "completion": row["chosen"]})
        else:
            raise SnapshotError(f"row has neither instruction/output nor prompt/chosen: {sorted(row)}")
    return result
