"""Snapshot export: content-addressed, split without leaks, filtered, scrubbed — on both databases."""

from __future__ import annotations

import json
import random
from datetime import datetime, timedelta
from pathlib import Path

import pyarrow.parquet as pq
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session, sessionmaker

from controllers.store import ingest
from controllers.store.db import transaction
from controllers.store.models import DatasetSnapshot, PreferencePair
from controllers.store.snapshot import SnapshotFilter, export_dpo, export_sft
from controllers.store.streaming import stream_tables
from tests.store.helpers import T0, run


def _pairs(
    factory: sessionmaker[Session],
    count: int,
    *,
    prompts: int | None = None,
    state: str = "pending",
    agent: str = "coder",
    start: datetime = T0,
) -> None:
    rows = [
        {
            "source": "explicit",
            "prompt": f"task {i % (prompts or count)}",
            "chosen": f"good {i} {start:%j%H}",
            "rejected": f"bad {i} {start:%j%H}",
            "created_at": start + timedelta(seconds=i),
            "agent": agent,
            "review_state": state,
        }
        for i in range(count)
    ]
    with transaction(factory) as session:
        ingest.insert_pairs(session, rows)


def _jsonl(path: Path) -> list[dict[str, str]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_same_data_gives_the_same_hash_whatever_the_batching(
    engine: Engine, factory: sessionmaker[Session], tmp_path: Path
) -> None:
    _pairs(factory, 500, prompts=120)
    first = export_dpo(engine, tmp_path / "a", batch_rows=64)
    second = export_dpo(engine, tmp_path / "b", batch_rows=10_000)
    assert first.content_hash == second.content_hash
    assert (first.train_rows, first.eval_rows) == (second.train_rows, second.eval_rows)
    assert first.train_rows + first.eval_rows == 500
    assert export_dpo(engine, tmp_path / "c", seed=7).content_hash != first.content_hash
    _pairs(factory, 1, start=T0 + timedelta(days=1))
    assert export_dpo(engine, tmp_path / "d").content_hash != first.content_hash
    with transaction(factory) as session:
        hashes = set(session.execute(select(DatasetSnapshot.content_hash)).scalars())
    assert first.content_hash in hashes


def test_a_long_read_comes_in_tables_of_at_least_batch_rows_in_id_order(
    engine: Engine, factory: sessionmaker[Session]
) -> None:
    # ~3.6 MB of multi-line, quoted code: several of PostgreSQL's CSV blocks, each smaller than a batch.
    code = 'def f():\n    return "a, b"\n' * 40
    _pairs(factory, 3000)
    with transaction(factory) as session:
        session.execute(update(PreferencePair).values(chosen=PreferencePair.chosen + "\n" + code))
    query = select(PreferencePair.id, PreferencePair.chosen).order_by(PreferencePair.id)
    tables = list(stream_tables(engine, query, batch_rows=1000))
    sizes = [table.num_rows for table in tables]
    assert sum(sizes) == 3000
    assert all(size >= 1000 for size in sizes[:-1])
    ids = [i for table in tables for i in table.column("id").to_pylist()]
    with engine.connect() as connection:
        assert ids == list(
            connection.execute(select(PreferencePair.id).order_by(PreferencePair.id)).scalars()
        )
    assert all(text.endswith(code) for table in tables for text in table.column("chosen").to_pylist())


def test_no_prompt_lands_in_both_splits(
    engine: Engine, factory: sessionmaker[Session], tmp_path: Path
) -> None:
    _pairs(factory, 1000, prompts=97)
    snapshot = export_dpo(engine, tmp_path, eval_fraction=0.2, seed=3)
    train = {r["prompt"] for r in _jsonl(tmp_path / "train.jsonl")}
    held_out = {r["prompt"] for r in _jsonl(tmp_path / "eval.jsonl")}
    assert train
    assert held_out
    assert not train & held_out
    assert 0.08 < snapshot.eval_rows / 1000 < 0.35
    table = pq.read_table(tmp_path / "train.parquet")
    assert table.num_rows == snapshot.train_rows
    assert pq.ParquetFile(tmp_path / "train.parquet").metadata.row_group(0).column(1).compression == "ZSTD"
    assert set(table.column("prompt").to_pylist()) == train


def test_watermark_filters_and_review_state(
    engine: Engine, factory: sessionmaker[Session], tmp_path: Path
) -> None:
    _pairs(factory, 10, state="approved")
    _pairs(factory, 5, state="pending", start=T0 + timedelta(hours=1))
    _pairs(factory, 5, state="rejected", start=T0 + timedelta(hours=2))
    _pairs(factory, 7, state="approved", agent="fixer", start=T0 + timedelta(hours=3))
    everything = export_dpo(engine, tmp_path / "all")
    assert everything.train_rows + everything.eval_rows == 22  # every agent; rejected pairs never train
    reviewed = export_dpo(engine, tmp_path / "rev", SnapshotFilter(agent="coder", require_review=True))
    assert reviewed.train_rows + reviewed.eval_rows == 10
    unreviewed = export_dpo(engine, tmp_path / "unrev", SnapshotFilter(agent="coder"))
    assert unreviewed.train_rows + unreviewed.eval_rows == 15  # pending counts, rejected never does
    assert unreviewed.watermark == T0 + timedelta(hours=1, seconds=4)
    manifest = json.loads((tmp_path / "unrev" / "snapshot.json").read_text())
    assert manifest["content_hash"] == unreviewed.content_hash
    assert manifest["watermark"] == unreviewed.watermark.isoformat()  # type: ignore[union-attr]
    # Pair sources as a policy enables them (an IN list, which PostgreSQL's COPY path must expand)
    explicit = export_dpo(
        engine, tmp_path / "src", SnapshotFilter(agent="coder", sources=("explicit", "rewardGap"))
    )
    assert explicit.train_rows + explicit.eval_rows == 15
    judged = export_dpo(engine, tmp_path / "judge", SnapshotFilter(agent="coder", sources=("llmJudge",)))
    assert judged.train_rows + judged.eval_rows == 0


def test_sft_rows_per_role_from_accepted_runs(
    engine: Engine, factory: sessionmaker[Session], tmp_path: Path
) -> None:
    with transaction(factory) as session:
        ingest.insert_runs(
            session,
            [
                run("c1", "t1", "def ok(): pass", ok=True),
                run("c2", "t2", "def broken(:", ok=False),
                run("f1", "t3", "fixed code", ok=True, role="fixer"),
                run(
                    "j1",
                    "t4",
                    "A is better: it handles empty input",
                    ok=True,
                    role="judge",
                    human_accepted=False,
                ),
            ],
        )
    snapshot = export_sft(engine, tmp_path, eval_fraction=0.01)
    rows = {p.name: _jsonl(p) for p in tmp_path.glob("sft-*.jsonl")}
    outputs = {r["output"] for rs in rows.values() for r in rs}
    assert outputs == {"def ok(): pass", "fixed code"}  # failed and human-rejected runs never teach
    fixer = next(rs for name, rs in rows.items() if name.startswith("sft-fixer"))
    assert fixer[0]["instruction"].startswith("Fix the code")
    assert fixer[0]["input"] == "solve t3"
    assert snapshot.train_rows + snapshot.eval_rows == 2


def test_planted_secrets_and_pii_never_reach_a_snapshot(
    engine: Engine, factory: sessionmaker[Session], tmp_path: Path
) -> None:
    rng = random.Random(11)
    planted: list[str] = []

    def secret() -> str:
        kind = rng.randrange(8)
        value = [
            lambda: f"user{rng.randrange(10**6)}@corp{rng.randrange(99)}.example.com",
            lambda: f"+44 20 7{rng.randrange(100, 999)} {rng.randrange(1000, 9999)}",
            lambda: f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}",
            lambda: "4111 1111 1111 " + f"{rng.randrange(1000, 9999)}",
            lambda: "AKIA" + "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567") for _ in range(16)),
            lambda: "ghp_" + "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(36)),
            lambda: "sk-"
            + "".join(rng.choice("abcdefghijklmnopqrstuvwxyzABCDEFGH0123456789") for _ in range(40)),
            lambda: "".join(rng.choice("0123456789abcdef") for _ in range(64)),
        ][kind]()
        planted.append(value)
        return value

    rows = [
        {
            "source": "explicit",
            "prompt": f"Fix the login for {secret()} (ticket {i})",
            "chosen": f"use the key {secret()} from the vault",
            "rejected": f"hardcode {secret()} in config.py",
            "created_at": T0 + timedelta(seconds=i),
            "agent": "coder",
        }
        for i in range(1000)
    ]
    with transaction(factory) as session:
        ingest.insert_pairs(session, rows)
    snapshot = export_dpo(engine, tmp_path)
    assert snapshot.train_rows + snapshot.eval_rows == 1000
    exported = "".join(p.read_text() for p in tmp_path.glob("*.jsonl"))
    exported += "".join(str(pq.read_table(p).to_pylist()) for p in tmp_path.glob("*.parquet"))
    leaked = [value for value in planted if value in exported]
    assert leaked == []
    assert sum(snapshot.scrubbed.values()) >= 3000
    assert "ticket 999" in exported  # the rest of the text survives
