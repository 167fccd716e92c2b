"""Mining one learning track for its LearningPolicy: has anything changed, mine, what to ask the judge.

The selection itself is ``controllers.data.pairs`` and ``controllers.data.judging`` (pure); this is
the I/O around it: reading a track's attempts and storing the pairs found, for ``kaizen pairs mine``
and for the operator, which mines on every policy poll where the track's runs or feedback changed. A policy's
first mining reads its whole data window; later ones only the tasks whose runs changed since the
progress the policy's store row keeps, so an operator restart does not read the window again. Pair
ids are hashes of source and lineage, so mining the same experience twice inserts nothing twice.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, func, select, update
from sqlalchemy.orm import Session

from controllers.data.judging import comparison, undecided_pairs
from controllers.data.pairs import Attempt, MinedPair, MiningSettings, PairSource, mine_attempts, succeeded
from controllers.store.ingest import insert_pairs
from controllers.store.models import Feedback, Policy, PreferencePair, Run
from controllers.store.tracks import EVERY_TRACK, Track


def to_attempt(run: Run) -> Attempt:
    return Attempt(
        run.id,
        run.agent,
        run.role,
        run.task_family,
        run.task_id,
        run.attempt,
        run.created_at,
        run.prompt,
        run.output,
        run.reward,
        succeeded(run.compile_ok, run.tests_passed, run.tests_total),
    )


def load_attempts(
    session: Session,
    track: Track = EVERY_TRACK,
    since: datetime | None = None,
    tasks: ColumnElement[bool] | None = None,
) -> tuple[list[Attempt], list[tuple[Attempt, str]]]:
    """The runs of a track (all runs for the empty track), from ``since`` on, and the corrections
    people made to them; ``tasks`` narrows them further (to some task ids, say)."""
    wanted = track.runs()
    if since:
        wanted.append(Run.created_at >= since)
    if tasks is not None:
        wanted.append(tasks)
    query = select(Run).where(*wanted).execution_options(yield_per=2000)
    runs = {run.id: to_attempt(run) for run in session.execute(query).scalars()}
    # Only the track's corrections leave the database, not every correction ever made.
    corrected = (
        select(Feedback.run_id, Feedback.correction)
        .join(Run, (Run.namespace == Feedback.namespace) & (Run.id == Feedback.run_id))
        .where(Feedback.correction.is_not(None), *wanted)
    )
    corrections = [
        (runs[run_id], text) for run_id, text in session.execute(corrected) if run_id in runs and text
    ]
    return list(runs.values()), corrections


def activity_mark(session: Session, track: Track) -> tuple[Any, ...]:
    """Changes whenever a run of the track arrives or changes (a feedback on it, a new reward).
    The count besides the newest change time, for writers whose clocks run behind."""
    return tuple(session.execute(select(func.count(), func.max(Run.changed_at)).where(*track.runs())).one())


# A mining rereads the changes of this long before the newest one it saw: a run written by a slower
# transaction, or by a gateway replica whose clock runs behind, lands there and is still mined.
# Rereading costs little (pair ids are deterministic, known pairs are skipped).
REREAD = timedelta(minutes=5)


@dataclass(frozen=True)
class Progress:
    """How far a policy's mining got: with which settings, and through which run change time."""

    fingerprint: str | None = None
    through: datetime | None = None

    def resume_after(self, fingerprint: str) -> datetime | None:
        """Where the next mining with these settings starts; None: mine the whole window."""
        return self.through if fingerprint == self.fingerprint else None


def progress(session: Session, namespace: str, policy: str) -> Progress:
    row = session.get(Policy, (namespace, policy))
    return Progress(row.mined_fingerprint, row.mined_through) if row else Progress()


def keep_progress(session: Session, namespace: str, policy: str, kept: Progress) -> None:
    """Remember how far a complete mining got (the policy's row exists: its reconcile upserts it first)."""
    session.execute(
        update(Policy)
        .where(Policy.namespace == namespace, Policy.name == policy)
        .values(mined_fingerprint=kept.fingerprint, mined_through=kept.through)
    )


@dataclass
class Mined:
    found: dict[str, int]  # pairs per source this mining found (new or not)
    inserted: dict[str, int]  # of those, how many the store did not have yet
    to_judge: list[tuple[Attempt, Attempt]] = field(default_factory=list)  # at most the limit asked for
    judge_backlog: int = 0  # comparisons left for later polls by that limit
    tasks: int | None = None  # how many changed tasks were mined; None: the whole window
    through: datetime | None = None  # the newest run change this mining saw


def judged(session: Session, track: Track) -> set[frozenset[str]]:
    """Comparisons the judge already decided for this track (a verdict is stored as a pair)."""
    rows = session.execute(
        select(PreferencePair.chosen_run_id, PreferencePair.rejected_run_id).where(
            PreferencePair.source == PairSource.LLM_JUDGE.value, *track.pairs()
        )
    )
    return {frozenset((chosen, rejected)) for chosen, rejected in rows if chosen and rejected}


def store_pairs(session: Session, pairs: Iterable[MinedPair], namespace: str) -> dict[str, int]:
    """Insert pairs into ``namespace`` (ids stored there are left alone); returns how many were new,
    per source."""
    now = datetime.now(UTC)
    by_source: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for pair in pairs:
        by_source[pair.source.value].append({**pair.row(), "created_at": now})
    inserted = {
        source: insert_pairs(session, rows, namespace)["inserted"] for source, rows in by_source.items()
    }
    return {source: count for source, count in inserted.items() if count}


def mine_track(
    session: Session,
    track: Track,
    settings: MiningSettings,
    *,
    since: datetime | None,
    changed_after: datetime | None = None,
    judge_limit: int = 0,
    judge_margin: float = 0.2,
    skip: Collection[frozenset[str]] = (),
) -> Mined:
    """Mine the track's runs from ``since`` on with the enabled sources and store what is new.

    With ``changed_after``, only the tasks with a run changed after it (less ``REREAD``) are mined:
    every source pairs attempts of one task, so the other tasks' pairs are all stored already.
    With ``judge_limit`` > 0 it also picks up to that many comparisons for the judge, leaving out
    those already decided (stored llmJudge pairs, in either order) and those in ``skip``.
    """
    through = session.execute(select(func.max(Run.changed_at)).where(*track.runs())).scalar()
    tasks = None
    if changed_after is not None:
        changed = [*track.runs(), Run.changed_at > changed_after - REREAD]
        if since is not None:
            changed.append(Run.created_at >= since)
        tasks = Run.task_id.in_(select(Run.task_id).where(*changed).distinct().scalar_subquery())
    attempts, corrections = load_attempts(session, track, since, tasks)
    found = mine_attempts(attempts, corrections, settings)
    mined = Mined(dict(Counter(p.source.value for p in found)), store_pairs(session, found, track.namespace))
    mined.through = through
    if tasks is not None:
        mined.tasks = len({a.task_id for a in attempts})
    if judge_limit > 0:
        done = judged(session, track)
        open_questions = [
            (a, b)
            for a, b in undecided_pairs(attempts, judge_margin)
            if comparison(a, b) not in done and comparison(a, b) not in skip
        ]
        mined.to_judge = open_questions[:judge_limit]
        mined.judge_backlog = len(open_questions) - len(mined.to_judge)
    return mined


def mine(
    session: Session, settings: MiningSettings, track: Track = EVERY_TRACK, since: datetime | None = None
) -> dict[str, int]:
    """Mine the track's runs from ``since`` on and store the pairs; returns how many were found in
    all, how many were new, and how many each source found."""
    mined = mine_track(session, track, settings, since=since)
    return {"found": sum(mined.found.values()), "inserted": sum(mined.inserted.values()), **mined.found}
