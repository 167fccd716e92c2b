"""Mining one learning track for its LearningPolicy: has anything changed, mine, what to ask the judge.

The selection itself is ``controllers.store.pairs`` (pure); this is the I/O around it for the
operator, which mines on every policy poll where the track's runs or feedback changed. Pair ids
are hashes of source and lineage, so mining the same experience again — after an operator
restart, say — inserts nothing twice.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from controllers.store.ingest import insert_pairs
from controllers.store.judge import comparison, undecided_pairs
from controllers.store.models import Feedback, PairSource, PreferencePair, Run
from controllers.store.pairs import Attempt, MinedPair, MiningSettings, load_attempts, mine_attempts


@dataclass(frozen=True)
class Track:
    """A LearningPolicy's track: its runs and pairs match every field that is set."""

    agent: str | None = None
    role: str | None = None
    task_family: str | None = None

    def runs(self) -> list[ColumnElement[bool]]:
        return [
            column == wanted
            for column, wanted in (
                (Run.agent, self.agent),
                (Run.role, self.role),
                (Run.task_family, self.task_family),
            )
            if wanted
        ]

    def pairs(self) -> list[ColumnElement[bool]]:
        return [
            column == wanted
            for column, wanted in (
                (PreferencePair.agent, self.agent),
                (PreferencePair.role, self.role),
                (PreferencePair.task_family, self.task_family),
            )
            if wanted
        ]


def activity_mark(session: Session, track: Track) -> tuple[Any, ...]:
    """Changes whenever a run or a feedback of the track arrives. Counts besides the newest
    timestamps, because agents may report a run with an old ``createdAt``."""
    runs = session.execute(select(func.count(), func.max(Run.created_at)).where(*track.runs())).one()
    feedback = session.execute(
        select(func.count(), func.max(Feedback.created_at))
        .join(Run, Run.id == Feedback.run_id)
        .where(*track.runs())
    ).one()
    return (*runs, *feedback)


@dataclass
class Mined:
    found: dict[str, int]  # pairs per source this mining found (new or not)
    inserted: dict[str, int]  # of those, how many the store did not have yet
    to_judge: list[tuple[Attempt, Attempt]] = field(default_factory=list)  # at most the limit asked for
    judge_backlog: int = 0  # comparisons left for later polls by that limit


def judged(session: Session, track: Track) -> set[frozenset[str]]:
    """Comparisons the judge already decided for this track (a verdict is stored as a pair)."""
    rows = session.execute(
        select(PreferencePair.chosen_run_id, PreferencePair.rejected_run_id).where(
            PreferencePair.source == PairSource.LLM_JUDGE.value, *track.pairs()
        )
    )
    return {frozenset((chosen, rejected)) for chosen, rejected in rows if chosen and rejected}


def store_pairs(session: Session, pairs: Iterable[MinedPair]) -> dict[str, int]:
    """Insert pairs (ids already stored are left alone); returns how many were new, per source."""
    now = datetime.now(UTC)
    by_source: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for pair in pairs:
        by_source[pair.source.value].append({**pair.row(), "created_at": now})
    inserted = {source: insert_pairs(session, rows)["inserted"] for source, rows in by_source.items()}
    return {source: count for source, count in inserted.items() if count}


def mine_track(
    session: Session,
    track: Track,
    settings: MiningSettings,
    *,
    since: datetime | None,
    judge_limit: int = 0,
    judge_margin: float = 0.2,
    skip: Collection[frozenset[str]] = (),
) -> Mined:
    """Mine the track's runs from ``since`` on with the enabled sources and store what is new.

    With ``judge_limit`` > 0 it also picks up to that many comparisons for the judge, leaving out
    those already decided (stored llmJudge pairs, in either order) and those in ``skip``.
    """
    attempts, corrections = load_attempts(session, track.agent, track.role, since, track.task_family)
    found = mine_attempts(attempts, corrections, settings)
    mined = Mined(dict(Counter(p.source.value for p in found)), store_pairs(session, found))
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
