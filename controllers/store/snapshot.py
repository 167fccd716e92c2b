"""Training snapshots: stream trainable pairs out of the store into Parquet (zstd) and TRL-ready JSONL.

The export never holds the dataset in memory: rows come through a server-side cursor in partitions,
each partition is scrubbed column-at-once in Arrow (RE2), split, hashed and appended to the open
files. The watermark (newest pair included) is fixed before reading, so pairs that arrive during an
export wait for the next one. The split is by a seeded hash of the *scrubbed* prompt, so a prompt
lands in exactly one split; the content hash covers the exported rows in id order plus the split
settings, so the same data gives the same hash.

Files written into ``out_dir``: ``train.parquet``/``eval.parquet`` and ``train.jsonl``/``eval.jsonl``
(DPO: prompt, chosen, rejected) or ``sft-<role>.jsonl`` (SFT: instruction, input, output), plus
``snapshot.json`` with the hash, watermark, row counts and scrubbed counts.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session
from sqlalchemy.sql import ColumnElement

from controllers.data.pii import scrub_column
from controllers.store.ingest import insert_ignoring_duplicates
from controllers.store.models import DatasetSnapshot, PreferencePair, ReviewState, Run
from controllers.store.streaming import stream_tables

Progress = Callable[[int], None]

# The seeds' roles and what each is asked to do in SFT rows.
SFT_INSTRUCTIONS = {
    "coder": "Write code that solves the task. Make it compile and pass its tests.",
    "fixer": "Fix the code below so that it compiles and passes its tests. Return the corrected code.",
    "judge": "Compare the candidate answers to the task and say which is better, and why.",
}
DEFAULT_INSTRUCTION = "Complete the task."


@dataclass(frozen=True)
class SnapshotFilter:
    """Which experience may train: the LearningPolicy's track and data settings."""

    agent: str | None = None
    role: str | None = None
    task_family: str | None = None
    require_review: bool = False
    sources: tuple[str, ...] | None = None
    min_reward: float | None = None  # SFT only: runs under it are not examples (default 0.7)
    since: datetime | None = None


EVERYTHING = SnapshotFilter()


@dataclass
class Snapshot:
    content_hash: str
    uri: str
    watermark: datetime | None
    train_rows: int
    eval_rows: int
    split_seed: int
    eval_fraction: float
    scrubbed: dict[str, int] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)

    def manifest(self) -> dict[str, Any]:
        data = asdict(self)
        data["watermark"] = self.watermark.isoformat() if self.watermark else None
        return data


def in_eval(prompt: str, seed: int, eval_fraction: float) -> bool:
    digest = hashlib.blake2b(f"{seed}\x00{prompt}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") < eval_fraction * 2**64


def _pair_conditions(flt: SnapshotFilter) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if flt.require_review:
        conditions.append(PreferencePair.review_state == ReviewState.APPROVED.value)
    else:
        conditions.append(PreferencePair.review_state != ReviewState.REJECTED.value)
    for column, wanted in (
        (PreferencePair.agent, flt.agent),
        (PreferencePair.role, flt.role),
        (PreferencePair.task_family, flt.task_family),
    ):
        if wanted:
            conditions.append(column == wanted)
    if flt.sources is not None:
        conditions.append(PreferencePair.source.in_(flt.sources))
    if flt.since is not None:
        conditions.append(PreferencePair.created_at >= flt.since)
    return conditions


class _Hasher:
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


# JSON string escapes that text commonly needs; other control characters are rare and handled apart.
_JSON_ESCAPES = [("\\", "\\\\"), ('"', '\\"'), ("\n", "\\n"), ("\r", "\\r"), ("\t", "\\t")]
_RARE_CONTROL = "[\x00-\x08\x0b\x0c\x0e-\x1f]"


def _json_strings(column: pa.Array) -> pa.Array:
    """Each string as a JSON string literal (quoted, escaped), computed in Arrow: no Python object per row."""
    for raw, escaped in _JSON_ESCAPES:
        column = pc.replace_substring(column, raw, escaped)
    if pc.any(pc.match_substring_regex(column, _RARE_CONTROL)).as_py():
        for code in (*range(0x09), 0x0B, 0x0C, *range(0x0E, 0x20)):
            column = pc.replace_substring(column, chr(code), f"\\u{code:04x}")
    return pc.binary_join_element_wise('"', column, '"', "")


def _jsonl_lines(prompts: pa.Array, chosen: pa.Array, rejected: pa.Array) -> pa.Array:
    """DPO JSONL lines (with their newline) as one Arrow string array."""
    parts = [
        '{"prompt": ',
        _json_strings(prompts),
        ', "chosen": ',
        _json_strings(chosen),
        ', "rejected": ',
        _json_strings(rejected),
        "}\n",
    ]
    return pc.binary_join_element_wise(*parts, "")


def _text_bytes(lines: pa.Array) -> memoryview:
    """The concatenated characters of a string array, straight from its data buffer."""
    if lines.offset != 0 or lines.null_count:
        lines = pa.concat_arrays([lines.fill_null("")])  # a fresh array whose characters start at 0
    data = lines.buffers()[2]
    if data is None or len(lines) == 0:
        return memoryview(b"")
    return memoryview(data)[: pc.sum(pc.binary_length(lines)).as_py()]


def export_dpo(
    engine: Engine,
    out_dir: Path,
    flt: SnapshotFilter = EVERYTHING,
    *,
    seed: int = 42,
    eval_fraction: float = 0.1,
    scrub_pii: bool = True,
    batch_rows: int = 20_000,
    progress: Progress | None = None,
) -> Snapshot:
    """Export trainable pairs as a DPO snapshot; see the module docstring for the files."""
    out_dir.mkdir(parents=True, exist_ok=True)
    conditions = _pair_conditions(flt)
    with engine.connect() as connection:
        watermark = connection.scalar(select(func.max(PreferencePair.created_at)).where(*conditions))
    schema = pa.schema(
        [
            ("id", pa.string()),
            ("prompt", pa.string()),
            ("chosen", pa.string()),
            ("rejected", pa.string()),
            ("source", pa.string()),
            ("margin", pa.float64()),
        ]
    )
    hasher = _Hasher("dpo", seed, eval_fraction, scrub_pii)
    scrubbed: Counter[str] = Counter()
    counts = {"train": 0, "eval": 0}
    with ExitStack() as stack:
        parquet = {
            s: stack.enter_context(pq.ParquetWriter(out_dir / f"{s}.parquet", schema, compression="zstd"))
            for s in counts
        }
        jsonl = {s: stack.enter_context((out_dir / f"{s}.jsonl").open("wb")) for s in counts}
        if watermark is not None:
            query = (
                select(
                    PreferencePair.id,
                    PreferencePair.prompt,
                    PreferencePair.chosen,
                    PreferencePair.rejected,
                    PreferencePair.source,
                    PreferencePair.margin,
                )
                .where(*conditions, PreferencePair.created_at <= watermark)
                .order_by(PreferencePair.id)
            )
            for table in stream_tables(engine, query, batch_rows):
                columns = [table.column(name) for name in ("prompt", "chosen", "rejected")]
                if scrub_pii:
                    columns = [scrub_column(column, scrubbed) for column in columns]
                columns = [c.combine_chunks() if isinstance(c, pa.ChunkedArray) else c for c in columns]
                lines = _jsonl_lines(*columns)
                # The hash covers the exported lines in id order: partition boundaries cannot change it.
                hasher.update_bytes(_text_bytes(lines))
                mask = pa.array([in_eval(p, seed, eval_fraction) for p in columns[0].to_pylist()], pa.bool_())
                table = pa.table(
                    [table.column("id"), *columns, table.column("source"), table.column("margin")],
                    schema=schema,
                )
                for split, split_mask in (("eval", mask), ("train", pc.invert(mask))):
                    part = table.filter(split_mask)
                    parquet[split].write_table(part)
                    counts[split] += part.num_rows
                    jsonl[split].write(_text_bytes(lines.filter(split_mask)))
                if progress:
                    progress(table.num_rows)
    snapshot = Snapshot(
        hasher.digest(),
        str(out_dir),
        watermark,
        counts["train"],
        counts["eval"],
        seed,
        eval_fraction,
        dict(scrubbed),
        ["train.parquet", "eval.parquet", "train.jsonl", "eval.jsonl"],
    )
    _finish(engine, out_dir, snapshot, flt)
    return snapshot


def export_sft(
    engine: Engine,
    out_dir: Path,
    flt: SnapshotFilter = EVERYTHING,
    *,
    seed: int = 42,
    eval_fraction: float = 0.1,
    scrub_pii: bool = True,
    batch_rows: int = 20_000,
    progress: Progress | None = None,
) -> Snapshot:
    """Export accepted runs as SFT rows per role (instruction, input, output) — the seeds' per-role export."""
    out_dir.mkdir(parents=True, exist_ok=True)
    min_reward = 0.7 if flt.min_reward is None else flt.min_reward
    conditions: list[ColumnElement[bool]] = [Run.reward >= min_reward, Run.human_accepted.is_not(False)]
    for column, wanted in ((Run.agent, flt.agent), (Run.role, flt.role), (Run.task_family, flt.task_family)):
        if wanted:
            conditions.append(column == wanted)
    if flt.since is not None:
        conditions.append(Run.created_at >= flt.since)
    with engine.connect() as connection:
        watermark = connection.scalar(select(func.max(Run.created_at)).where(*conditions))
    hasher = _Hasher("sft", seed, eval_fraction, scrub_pii)
    scrubbed: Counter[str] = Counter()
    counts = {"train": 0, "eval": 0}
    files: dict[str, IO[str]] = {}
    with ExitStack() as stack:
        if watermark is not None:
            query = (
                select(Run.id, Run.role, Run.prompt, Run.output)
                .where(*conditions, Run.created_at <= watermark)
                .order_by(Run.id)
            )
            for table in stream_tables(engine, query, batch_rows):
                columns = [table.column("prompt"), table.column("output")]
                if scrub_pii:
                    columns = [scrub_column(column, scrubbed) for column in columns]
                roles = table.column("role").to_pylist()
                inputs, answers = (column.to_pylist() for column in columns)
                for role, text, answer in zip(roles, inputs, answers, strict=True):
                    split = "eval" if in_eval(text, seed, eval_fraction) else "train"
                    name = f"sft-{role or 'default'}-{split}.jsonl"
                    if name not in files:
                        files[name] = stack.enter_context((out_dir / name).open("w", encoding="utf-8"))
                    instruction = SFT_INSTRUCTIONS.get(role, DEFAULT_INSTRUCTION)
                    line = json.dumps(
                        {"instruction": instruction, "input": text, "output": answer}, ensure_ascii=False
                    )
                    files[name].write(line + "\n")
                    hasher.update(f"{role}\t{line}\n")
                    counts[split] += 1
                if progress:
                    progress(table.num_rows)
    snapshot = Snapshot(
        hasher.digest(),
        str(out_dir),
        watermark,
        counts["train"],
        counts["eval"],
        seed,
        eval_fraction,
        dict(scrubbed),
        sorted(files),
    )
    _finish(engine, out_dir, snapshot, flt)
    return snapshot


def _finish(engine: Engine, out_dir: Path, snapshot: Snapshot, flt: SnapshotFilter) -> None:
    (out_dir / "snapshot.json").write_text(json.dumps(snapshot.manifest(), indent=2) + "\n")
    filters = {k: v for k, v in asdict(flt).items() if v not in (None, False)}
    with engine.begin() as connection, Session(bind=connection) as session:
        statement = insert_ignoring_duplicates(session, DatasetSnapshot).values(
            content_hash=snapshot.content_hash,
            created_at=datetime.now(UTC),
            uri=snapshot.uri,
            watermark=snapshot.watermark,
            train_rows=snapshot.train_rows,
            eval_rows=snapshot.eval_rows,
            split_seed=snapshot.split_seed,
            scrubbed=snapshot.scrubbed,
            filters=json.loads(json.dumps(filters, default=str)),
        )
        session.execute(statement)
        session.commit()
