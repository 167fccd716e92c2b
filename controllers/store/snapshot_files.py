"""The files a snapshot writes, one partition at a time: DPO as Parquet and JSONL, SFT as JSONL per role.

Every row goes to the train or the eval split by a seeded hash of its (scrubbed) prompt, so a prompt
lands in exactly one split; every line written is hashed in id order, with the split settings, so the
same data gives the same content hash however it was partitioned.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from controllers.data.jsonl import dpo_jsonl_lines, text_bytes
from controllers.data.pii import scrub_column

# The seeds' roles and what each is asked to do in SFT rows.
SFT_INSTRUCTIONS = {
    "coder": "Write code that solves the task. Make it compile and pass its tests.",
    "fixer": "Fix the code below so that it compiles and passes its tests. Return the corrected code.",
    "judge": "Compare the candidate answers to the task and say which is better, and why.",
}
DEFAULT_INSTRUCTION = "Complete the task."


_PLAIN_NAME = re.compile(r"[a-z0-9][a-z0-9.-]{0,62}")


def file_part(name: str) -> str:
    """A role (or agent) as part of a file name: itself when it is a short lowercase name, else a slug
    of it and a hash of the whole name after ``_``, which a plain name never holds — so two names never
    share a file, and a ``/``, a ``..`` or a 300-character name cannot escape or break the folder."""
    if _PLAIN_NAME.fullmatch(name):
        return name
    slug = re.sub(r"[^a-z0-9.-]+", "-", name.lower()).strip(".-")[:40] or "x"
    return f"{slug}_{hashlib.blake2b(name.encode(), digest_size=6).hexdigest()}"


def in_eval(prompt: str, seed: int, eval_fraction: float) -> bool:
    digest = hashlib.blake2b(f"{seed}\x00{prompt}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") < eval_fraction * 2**64


class Hasher:
    """sha256 over the exported lines in id order, seeded with the export settings.

    Streaming sha256 is the same over any split of the same bytes, so partition sizes cannot
    change the hash; identical data and settings always give identical hashes.
    """

    def __init__(self, *settings: object) -> None:
        self._sha = hashlib.sha256(json.dumps(settings, default=str).encode())

    def update(self, text: str) -> None:
        self._sha.update(text.encode())

    def update_bytes(self, data: memoryview) -> None:
        self._sha.update(data)

    def digest(self) -> str:
        return f"sha256:{self._sha.hexdigest()}"


@dataclass(frozen=True)
class Split:
    """How an export splits and scrubs: the settings its hash covers."""

    seed: int
    eval_fraction: float
    scrub_pii: bool

    def of(self, prompt: str) -> str:
        return "eval" if in_eval(prompt, self.seed, self.eval_fraction) else "train"


@dataclass
class Written:
    """What an export has written so far: the hash of its lines, its rows per split, what it scrubbed."""

    split: Split
    hasher: Hasher
    counts: dict[str, int] = field(default_factory=lambda: {"train": 0, "eval": 0})
    scrubbed: Counter[str] = field(default_factory=Counter)

    def scrub(self, columns: list[Any]) -> list[Any]:
        return (
            [scrub_column(column, self.scrubbed) for column in columns] if self.split.scrub_pii else columns
        )


class DpoFiles:
    """Pairs as Parquet and TRL's DPO JSONL, one file of each per split (written even when empty)."""

    SCHEMA = pa.schema(
        [
            ("id", pa.string()),
            ("prompt", pa.string()),
            ("chosen", pa.string()),
            ("rejected", pa.string()),
            ("source", pa.string()),
            ("margin", pa.float64()),
        ]
    )

    def __init__(self, out_dir: Path, stack: ExitStack, written: Written) -> None:
        self.written = written
        self.parquet = {
            s: stack.enter_context(
                pq.ParquetWriter(out_dir / f"{s}.parquet", self.SCHEMA, compression="zstd")
            )
            for s in written.counts
        }
        self.jsonl = {s: stack.enter_context((out_dir / f"{s}.jsonl").open("wb")) for s in written.counts}

    def write(self, table: pa.Table) -> None:
        written = self.written
        columns = written.scrub([table.column(name) for name in ("prompt", "chosen", "rejected")])
        columns = [c.combine_chunks() if isinstance(c, pa.ChunkedArray) else c for c in columns]
        lines = dpo_jsonl_lines(*columns)
        # The hash covers the exported lines in id order: partition boundaries cannot change it.
        written.hasher.update_bytes(text_bytes(lines))
        split = written.split
        mask = pa.array(
            [in_eval(p, split.seed, split.eval_fraction) for p in columns[0].to_pylist()], pa.bool_()
        )
        table = pa.table(
            [table.column("id"), *columns, table.column("source"), table.column("margin")], schema=self.SCHEMA
        )
        for name, split_mask in (("eval", mask), ("train", pc.invert(mask))):
            part = table.filter(split_mask)
            self.parquet[name].write_table(part)
            written.counts[name] += part.num_rows
            self.jsonl[name].write(text_bytes(lines.filter(split_mask)))

    def names(self) -> list[str]:
        return ["train.parquet", "eval.parquet", "train.jsonl", "eval.jsonl"]


class SftFiles:
    """Runs as SFT JSONL (instruction, input, output), one file per role and split, opened on first use
    (``sft-<role>-<split>.jsonl``, the role made safe for a file name by ``file_part``)."""

    def __init__(self, out_dir: Path, stack: ExitStack, written: Written) -> None:
        self.out_dir, self.stack, self.written = out_dir, stack, written
        self.files: dict[str, IO[str]] = {}

    def write(self, table: pa.Table) -> None:
        written = self.written
        inputs, answers = (
            column.to_pylist() for column in written.scrub([table.column("prompt"), table.column("output")])
        )
        for role, text, answer in zip(table.column("role").to_pylist(), inputs, answers, strict=True):
            split = written.split.of(text)
            instruction = SFT_INSTRUCTIONS.get(role, DEFAULT_INSTRUCTION)
            line = json.dumps(
                {"instruction": instruction, "input": text, "output": answer}, ensure_ascii=False
            )
            self._file(f"sft-{file_part(role or 'default')}-{split}.jsonl").write(line + "\n")
            written.hasher.update(f"{role}\t{line}\n")
            written.counts[split] += 1

    def _file(self, name: str) -> IO[str]:
        if name not in self.files:
            self.files[name] = self.stack.enter_context((self.out_dir / name).open("w", encoding="utf-8"))
        return self.files[name]

    def names(self) -> list[str]:
        return sorted(self.files)
