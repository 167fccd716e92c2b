"""``kaizen db|ingest|pairs|export|gateway``: the experience store and gateway from the command line.

Every command takes ``--database-url`` (or ``KAIZEN_DATABASE_URL``; default: the embedded SQLite
file under ``.kaizen/``). Long work prints progress to stderr; results go to stdout.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError

DatabaseUrl = Annotated[
    str | None,
    typer.Option("--database-url", envvar="KAIZEN_DATABASE_URL", help="SQLAlchemy URL of the store."),
]
Namespace = Annotated[str, typer.Option(help="The namespace whose records this reads or writes.")]
CLI_SCOPE = "kaizen:cli"  # whose Idempotency-Keys ``kaizen ingest`` uses

db_app = typer.Typer(help="Create or upgrade the store's schema.", no_args_is_help=True)
pairs_app = typer.Typer(help="Mine preference pairs from recorded runs and feedback.", no_args_is_help=True)
gateway_app = typer.Typer(help="Run the gateway (ingest API).", no_args_is_help=True)


class Progress:
    """A counter on stderr that rewrites its own line, at most ten times a second."""

    def __init__(self, label: str, total: int | None = None) -> None:
        self.label, self.total, self.done, self._last, self._start = label, total, 0, 0.0, time.monotonic()

    def __call__(self, count: int) -> None:
        self.done += count
        now = time.monotonic()
        if now - self._last > 0.1 and sys.stderr.isatty():
            self._last = now
            of = f"/{self.total}" if self.total else ""
            rate = self.done / max(now - self._start, 1e-9)
            sys.stderr.write(f"\r{self.label}: {self.done}{of} ({rate:,.0f}/s)")
            sys.stderr.flush()

    def close(self) -> None:
        elapsed = time.monotonic() - self._start
        sys.stderr.write(f"\r{self.label}: {self.done} in {elapsed:.1f}s\n")


def _fail(message: str) -> typer.Exit:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    return typer.Exit(1)


@db_app.command("upgrade")
def db_upgrade(database_url: DatabaseUrl = None, revision: str = "head") -> None:
    """Bring the schema to the newest revision (safe to run twice, or from several processes at once)."""
    from controllers.store import migrate
    from controllers.store.db import database_url as resolve

    url = resolve(database_url)
    at = migrate.upgrade(url, revision)
    typer.echo(f"schema at revision {at}")


@db_app.command("current")
def db_current(database_url: DatabaseUrl = None) -> None:
    """Print the schema revision the database is at (and the newest one this version knows)."""
    from controllers.store import migrate
    from controllers.store.db import make_engine

    engine = make_engine(database_url)
    typer.echo(f"current: {migrate.current_revision(engine) or 'empty'}  head: {migrate.head_revision()}")


MODELS = {"runs": "Run", "feedback": "Feedback", "pairs": "Pair", "annotations": "Annotation"}
KINDS = tuple(MODELS)


def _read_records(path: Path, kind: str) -> list[Any]:
    """Every line of the JSONL file validated as the gateway would; the first bad line stops it all."""
    from controllers.gateway import schemas

    model: Any = getattr(schemas, f"{MODELS[kind]}In")
    records = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            records.append(model.model_validate_json(line))
        except ValidationError as error:
            problem = error.errors()[0]
            where = ".".join(str(p) for p in problem["loc"])
            raise _fail(f"{path}:{number}: {where}: {problem['msg']} (nothing was loaded)") from error
    return records


def _batch_writer(
    path: Path, kind: str, batch: list[Any], key: str, start: int, now: datetime, namespace: str
) -> Callable[[Any], dict[str, Any]]:
    """What one batch writes, its records named by their line in the file (``runs.jsonl:4``)."""
    from controllers.gateway import batches

    def where(i: int, _: Any) -> str:
        return f"{path}:{start + i + 1}"

    def write(session: Any) -> dict[str, Any]:
        into = {"namespace": namespace, "scope": CLI_SCOPE}
        if kind == "runs":
            return batches.write_runs(session, batch, key, now, **into)
        if kind == "pairs":
            return batches.write_pairs(session, batch, now, namespace=namespace)
        if kind == "annotations":
            return batches.write_annotations(session, batch, key, now, where, **into)
        return batches.write_feedback(session, batch, key, now, where, namespace=namespace, scope=CLI_SCOPE)

    return write


def ingest(
    path: Annotated[
        Path, typer.Argument(help="JSONL file: one record per line, as the gateway accepts them.")
    ],
    kind: Annotated[str, typer.Option(help=f"Record kind: {', '.join(KINDS)}.")] = "runs",
    database_url: DatabaseUrl = None,
    batch_size: Annotated[int, typer.Option(min=1, max=1000)] = 500,
    namespace: Namespace = "default",
) -> None:
    """Load records from JSONL straight into the store, in idempotent batches (rerunning adds nothing)."""
    from controllers.store.db import make_engine, session_factory
    from controllers.store.idempotency import idempotent_write, request_hash
    from controllers.store.ingest import IdTaken, UnknownReference

    if kind not in KINDS:
        raise _fail(f"--kind must be one of {', '.join(KINDS)}")
    records = _read_records(path, kind)
    factory = session_factory(make_engine(database_url))
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    progress = Progress(f"ingest {kind}", len(records))
    inserted = 0
    now = datetime.now(UTC)
    for start in range(0, len(records), batch_size):
        batch = records[start : start + batch_size]
        key = f"cli:{kind}:{digest}:{start}"
        payload = request_hash([r.model_dump(mode="json") for r in batch])
        write = _batch_writer(path, kind, batch, key, start, now, namespace)
        try:
            result = idempotent_write(
                factory,
                scope=CLI_SCOPE,
                key=f"{namespace}:{key}",
                endpoint=kind,
                payload_hash=payload,
                write=write,
            )
        except (UnknownReference, IdTaken) as error:
            raise _fail(f"{path}: {error} (earlier batches were loaded; fix the line and rerun)") from error
        inserted += 0 if result.replayed else int(result.body.get("inserted", 0))
        progress(len(batch))
    progress.close()
    typer.echo(json.dumps({"records": len(records), "inserted": inserted}))


@pairs_app.command("mine")
def pairs_mine(
    database_url: DatabaseUrl = None,
    agent: str | None = None,
    role: str | None = None,
    human_corrections: bool = True,
    reward_gaps: bool = True,
    min_margin: Annotated[float, typer.Option(min=0.0, max=1.0)] = 0.2,
    error_recoveries: bool = True,
    judge_endpoint: Annotated[
        str | None, typer.Option(help="OpenAI-compatible base URL (…/v1) of an LLM judge.")
    ] = None,
    judge_model: str | None = None,
    judge_rubric: str = "Prefer the answer that is correct, complete and safe; then the shorter one.",
    namespace: Namespace = "default",
) -> None:
    """Mine pairs from corrections, reward gaps, error recoveries (and an LLM judge if given)."""
    import httpx

    from controllers.clients.judge import JudgeSettings, judge
    from controllers.data.pairs import MiningSettings
    from controllers.store.db import make_engine, session_factory, transaction
    from controllers.store.ingest import insert_pairs
    from controllers.store.mining import load_attempts, mine
    from controllers.store.tracks import Track

    factory = session_factory(make_engine(database_url))
    settings = MiningSettings(human_corrections, reward_gaps, min_margin, error_recoveries)
    track = Track(agent, role, namespace=namespace)
    with transaction(factory) as session:
        result = mine(session, settings, track)
    if judge_endpoint:
        if not judge_model:
            raise _fail("--judge-model is required with --judge-endpoint")
        judge_settings = JudgeSettings(
            judge_endpoint,
            judge_model,
            judge_rubric,
            min_margin,
            api_key=os.environ.get("KAIZEN_JUDGE_API_KEY"),
        )
        with transaction(factory) as session:
            attempts, _ = load_attempts(session, track)
        with httpx.Client(timeout=60) as client:
            verdicts, unparsed = judge(client, judge_settings, attempts)
        now = datetime.now(UTC)
        with transaction(factory) as session:
            stored = insert_pairs(session, [{**p.row(), "created_at": now} for p in verdicts], namespace)
        result.update(
            llmJudge=len(verdicts), judgeUnparsed=unparsed, inserted=result["inserted"] + stored["inserted"]
        )
    typer.echo(json.dumps(result))


def export(
    out_dir: Annotated[Path, typer.Argument(help="Folder for the snapshot's files.")],
    method: Annotated[str, typer.Option(help="DPO (pairs) or SFT (accepted runs per role).")] = "DPO",
    database_url: DatabaseUrl = None,
    agent: str | None = None,
    role: str | None = None,
    task_family: str | None = None,
    require_review: bool = False,
    min_reward: Annotated[
        float | None, typer.Option(help="SFT: lowest reward that makes an example (0.7).")
    ] = None,
    seed: int = 42,
    eval_fraction: Annotated[float, typer.Option(min=0.01, max=0.5)] = 0.1,
    scrub_pii: bool = True,
    namespace: Namespace = "default",
) -> None:
    """Export a training snapshot (Parquet + JSONL) with a content hash; prints its manifest."""
    from controllers.store.db import make_engine
    from controllers.store.snapshot import SnapshotFilter, export_dpo, export_sft

    if method.upper() not in ("DPO", "SFT"):
        raise _fail("--method must be DPO or SFT")
    flt = SnapshotFilter(namespace, agent, role, task_family, require_review, min_reward=min_reward)
    progress = Progress(f"export {method.upper()}")
    run = export_dpo if method.upper() == "DPO" else export_sft
    snapshot = run(
        make_engine(database_url),
        out_dir,
        flt,
        seed=seed,
        eval_fraction=eval_fraction,
        scrub_pii=scrub_pii,
        progress=progress,
    )
    progress.close()
    typer.echo(json.dumps(snapshot.manifest(), indent=2))


@gateway_app.command("serve")
def gateway_serve(
    database_url: DatabaseUrl = None,
    host: str = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8080,
    workers: Annotated[int, typer.Option(min=1, max=64)] = 1,
) -> None:
    """Serve the ingest API and the router (needs KAIZEN_TOKEN_SECRET or KAIZEN_TOKEN_KEYS_DIR)."""
    import uvicorn

    if database_url:
        os.environ["KAIZEN_DATABASE_URL"] = database_url
    if not os.environ.get("KAIZEN_TOKEN_SECRET") and not os.environ.get("KAIZEN_TOKEN_KEYS_DIR"):
        raise _fail(
            "set KAIZEN_TOKEN_SECRET or KAIZEN_TOKEN_KEYS_DIR (the keys that sign tokens; "
            "`kaizen token create` uses them too)"
        )
    uvicorn.run(
        "controllers.gateway.serve:app",
        host=host,
        port=port,
        workers=workers,
        log_level="warning",
        access_log=False,
    )
