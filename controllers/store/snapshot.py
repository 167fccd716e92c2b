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

import json
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypedDict, Unpack

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session
from sqlalchemy.sql import ColumnElement

from controllers.store.db import insert_ignoring_duplicates
from controllers.store.models import DEFAULT_NAMESPACE, DatasetSnapshot, PreferencePair, Run
from controllers.store.snapshot_files import DpoFiles, Hasher, SftFiles, Split, Written
from controllers.store.streaming import stream_tables
from controllers.store.tracks import Track, trainable_pairs

Progress = Callable[[int], None]


@dataclass(frozen=True)
class SnapshotFilter:
    """Which experience may train: the LearningPolicy's namespace, track and data settings."""

    namespace: str = DEFAULT_NAMESPACE  # an export never reads another namespace
    agent: str | None = None
    role: str | None = None
    task_family: str | None = None
    require_review: bool = False
    sources: tuple[str, ...] | None = None
    min_reward: float | None = None  # SFT only: runs under it are not examples (default 0.7)
    since: datetime | None = None


EVERYTHING = SnapshotFilter()  # everything of the default namespace


class ExportOptions(TypedDict, total=False):
    """How an export splits, scrubs and reads; every option has its default."""

    seed: int  # of the train/eval split (42)
    eval_fraction: float  # of the prompts that go to eval (0.1)
    scrub_pii: bool  # replace PII and secrets with typed placeholders (True)
    batch_rows: int  # rows per partition read from the store (20 000)
    progress: Progress | None  # told how many rows each partition had (None)
    uri: str  # where the files are published, recorded with the snapshot (the folder written)


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


def _track(flt: SnapshotFilter) -> Track:
    return Track(flt.agent, flt.role, flt.task_family, flt.namespace)


def _pair_conditions(flt: SnapshotFilter) -> list[ColumnElement[bool]]:
    conditions = [trainable_pairs(flt.require_review), *_track(flt).pairs()]
    if flt.sources is not None:
        conditions.append(PreferencePair.source.in_(flt.sources))
    if flt.since is not None:
        conditions.append(PreferencePair.created_at >= flt.since)
    return conditions


@dataclass(frozen=True)
class _Source:
    """What an export reads: its rows' columns (id first), which rows, and when each was created."""

    kind: str
    columns: tuple[Any, ...]
    conditions: list[ColumnElement[bool]]
    created_at: Any
    files: type[DpoFiles] | type[SftFiles]


def _export(
    engine: Engine, out_dir: Path, flt: SnapshotFilter, source: _Source, options: ExportOptions
) -> Snapshot:
    """Stream the source's rows up to a watermark fixed first into its files, then record the snapshot."""
    split = Split(options.get("seed", 42), options.get("eval_fraction", 0.1), options.get("scrub_pii", True))
    progress = options.get("progress")
    out_dir.mkdir(parents=True, exist_ok=True)
    with engine.connect() as connection:
        watermark = connection.scalar(select(func.max(source.created_at)).where(*source.conditions))
    written = Written(split, Hasher(source.kind, split.seed, split.eval_fraction, split.scrub_pii))
    with ExitStack() as stack:
        files = source.files(out_dir, stack, written)
        if watermark is not None:
            query = (
                select(*source.columns)
                .where(*source.conditions, source.created_at <= watermark)
                .order_by(source.columns[0])
            )
            for table in stream_tables(engine, query, options.get("batch_rows", 20_000)):
                files.write(table)
                if progress:
                    progress(table.num_rows)
    snapshot = Snapshot(
        content_hash=written.hasher.digest(),
        uri=options.get("uri") or str(out_dir),
        watermark=watermark,
        train_rows=written.counts["train"],
        eval_rows=written.counts["eval"],
        split_seed=split.seed,
        eval_fraction=split.eval_fraction,
        scrubbed=dict(written.scrubbed),
        files=files.names(),
    )
    _finish(engine, out_dir, snapshot, flt)
    return snapshot


def export_dpo(
    engine: Engine, out_dir: Path, flt: SnapshotFilter = EVERYTHING, **options: Unpack[ExportOptions]
) -> Snapshot:
    """Export trainable pairs as a DPO snapshot; see the module docstring for the files."""
    p = PreferencePair
    columns = (p.id, p.prompt, p.chosen, p.rejected, p.source, p.margin)
    source = _Source("dpo", columns, _pair_conditions(flt), p.created_at, DpoFiles)
    return _export(engine, out_dir, flt, source, options)


def export_sft(
    engine: Engine, out_dir: Path, flt: SnapshotFilter = EVERYTHING, **options: Unpack[ExportOptions]
) -> Snapshot:
    """Export accepted runs as SFT rows per role (instruction, input, output) — the seeds' per-role export."""
    min_reward = 0.7 if flt.min_reward is None else flt.min_reward
    conditions = [Run.reward >= min_reward, Run.human_accepted.is_not(False)]
    conditions += _track(flt).runs()
    if flt.since is not None:
        conditions.append(Run.created_at >= flt.since)
    source = _Source("sft", (Run.id, Run.role, Run.prompt, Run.output), conditions, Run.created_at, SftFiles)
    return _export(engine, out_dir, flt, source, options)


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
