"""Mining one policy's track (controllers.store.mining) and counting what it may train, on both databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from controllers.api.learningpolicy import PairSources
from controllers.api.trainingrun import TrainingRun
from controllers.data.judging import comparison
from controllers.data.pairs import MinedPair, MiningSettings, PairSource
from controllers.reconcile.mining import trainable_sources
from controllers.reconcile.runs import snapshot_filter
from controllers.store import ingest, policies
from controllers.store.db import transaction
from controllers.store.health import track_health
from controllers.store.mining import (
    REREAD,
    Mined,
    Progress,
    activity_mark,
    keep_progress,
    mine_track,
    progress,
    store_pairs,
)
from controllers.store.models import PreferencePair, Run
from controllers.store.snapshot import export_dpo
from controllers.store.tracks import Track
from tests.store.helpers import T0, run

CODER = Track(agent="coder")


def _feedback(id: str, run_id: str, correction: str, when: datetime = T0) -> dict[str, Any]:
    return {"id": id, "created_at": when, "run_id": run_id, "correction": correction, "categories": []}


def _experience(factory: sessionmaker[Session]) -> None:
    """One pair per source for agent coder, and the same again for agent other (another track)."""
    with transaction(factory) as session:
        for agent in ("coder", "other"):
            ingest.insert_runs(
                session,
                [
                    run(f"{agent}-e1", "t1", "bad", ok=False, agent=agent),
                    run(f"{agent}-e2", "t1", "fixed", ok=True, attempt=2, agent=agent, minutes=1),
                    run(f"{agent}-g1", "t2", "good", ok=True, agent=agent),
                    run(f"{agent}-g2", "t2", "meh", ok=False, attempt=2, agent=agent, minutes=1),
                    run(f"{agent}-h1", "t3", "wrong", agent=agent),
                ],
            )
            ingest.insert_feedback(session, [_feedback(f"{agent}-f", f"{agent}-h1", "right")])


def _mine(factory: sessionmaker[Session], since: datetime | None = None, **kwargs: Any) -> Mined:
    with transaction(factory) as session:
        return mine_track(session, CODER, MiningSettings(), since=since, **kwargs)


def _count(factory: sessionmaker[Session], agent: str = "coder") -> int:
    with transaction(factory) as session:
        return int(
            session.scalar(
                select(func.count()).select_from(PreferencePair).where(PreferencePair.agent == agent)
            )
            or 0
        )


def test_mining_a_track_twice_inserts_nothing_the_second_time(factory: sessionmaker[Session]) -> None:
    _experience(factory)
    first = _mine(factory)
    assert first.found == {"errorRecovery": 1, "rewardGap": 1, "humanCorrection": 1}
    assert first.inserted == first.found
    assert _count(factory) == 3
    assert _count(factory, "other") == 0  # only the policy's track is mined
    # Mining the same experience again (the next poll, or after an operator restart) adds nothing
    again = _mine(factory)
    assert again.found == first.found
    assert again.inserted == {}
    assert _count(factory) == 3


def test_the_activity_mark_moves_only_when_the_tracks_runs_or_feedback_change(
    factory: sessionmaker[Session],
) -> None:
    _experience(factory)

    def mark() -> tuple[Any, ...]:
        with transaction(factory) as session:
            return activity_mark(session, CODER)

    before = mark()
    _mine(factory)
    assert mark() == before  # mining itself is not activity
    with transaction(factory) as session:
        ingest.insert_runs(session, [run("other-x", "t9", "x", agent="other")])
    assert mark() == before  # another track's run
    with transaction(factory) as session:
        ingest.insert_runs(session, [run("late", "t9", "x", minutes=-600)])  # reported late, dated early
    after_run = mark()
    assert after_run != before
    with transaction(factory) as session:
        ingest.insert_feedback(session, [_feedback("f2", "coder-g2", "better", T0 - timedelta(days=1))])
    assert mark() != after_run


def test_only_runs_inside_the_max_age_window_are_mined(factory: sessionmaker[Session]) -> None:
    with transaction(factory) as session:
        ingest.insert_runs(
            session,
            [
                # an old reward gap and an old corrected run, then the same kinds a day later
                run("old-good", "t1", "good", ok=True),
                run("old-bad", "t1", "bad", ok=False, attempt=2),
                run("old-wrong", "t2", "wrong"),
                run("new-good", "t3", "good", ok=True, minutes=1440),
                run("new-bad", "t3", "bad", ok=False, attempt=2, minutes=1440),
                run("new-wrong", "t4", "wrong", minutes=1440),
            ],
        )
        ingest.insert_feedback(
            session, [_feedback("f-old", "old-wrong", "right"), _feedback("f-new", "new-wrong", "right")]
        )
    mined = _mine(factory, since=T0 + timedelta(hours=12))
    assert mined.found == {"rewardGap": 1, "humanCorrection": 1}
    with transaction(factory) as session:
        lineage = {p.rejected_run_id for p in session.execute(select(PreferencePair)).scalars()}
    assert lineage == {"new-bad", "new-wrong"}
    # a wider window finds the older ones too
    assert _mine(factory, since=T0 - timedelta(hours=1)).inserted == {"rewardGap": 1, "humanCorrection": 1}


def test_judged_comparisons_are_not_offered_to_the_judge_again_in_either_order(
    factory: sessionmaker[Session],
) -> None:
    with transaction(factory) as session:
        ingest.insert_runs(
            session,
            [run(f"{t}{v}", f"t{t}", f"answer {v}", compile_ok=True) for t in range(3) for v in "ab"],
        )
    first = _mine(factory, judge_limit=2)
    assert len(first.to_judge) == 2
    assert first.judge_backlog == 1
    # a verdict stored with chosen and rejected the other way round than the question was put
    a, b = first.to_judge[0]
    verdict = MinedPair(
        PairSource.LLM_JUDGE, a.prompt, b.output, a.output, None, b.id, a.id, "coder", "coder", ""
    )
    with transaction(factory) as session:
        assert store_pairs(session, [verdict], "default") == {"llmJudge": 1}
    second = _mine(factory, judge_limit=5, skip={comparison(*first.to_judge[1])})
    offered = {comparison(*q) for q in second.to_judge}
    assert comparison(a, b) not in offered  # decided
    assert comparison(*first.to_judge[1]) not in offered  # skipped by the caller (an unclear answer)
    assert len(offered) == 1
    assert second.judge_backlog == 0
    assert len(_mine(factory, judge_limit=5).to_judge) == 2  # without the skip: all but the decided one


def _explicit(factory: sessionmaker[Session], count: int) -> None:
    rows = [
        {
            "source": "explicit",
            "prompt": f"p{i}",
            "chosen": "c",
            "rejected": "r",
            "agent": "coder",
            "created_at": datetime.now(UTC),
        }
        for i in range(count)
    ]
    with transaction(factory) as session:
        ingest.insert_pairs(session, rows)


def test_explicit_false_leaves_explicit_pairs_out_of_the_count_and_the_snapshot_alike(
    engine: Engine, factory: sessionmaker[Session], tmp_path: Path
) -> None:
    _experience(factory)
    _mine(factory)
    _explicit(factory, 5)
    now = datetime.now(UTC)
    policy_spec: dict[str, Any] = {"track": {"agent": "coder"}, "pairSources": {"explicit": False}}
    sources = trainable_sources(PairSources.model_validate(policy_spec["pairSources"]))
    assert "explicit" not in sources

    def health(enabled: tuple[str, ...] | None) -> Any:
        with transaction(factory) as session:
            return track_health(
                session, agent="coder", role=None, task_family=None, require_review=False,
                since=None, sources=enabled, window_start=now - timedelta(days=30),
            )  # fmt: skip

    counted = health(sources)
    assert counted.approved_pairs == counted.new_approved_pairs == 3
    # every source stays visible, so a person sees what the policy leaves out
    assert counted.pairs_by_source == {
        "explicit": 5,
        "errorRecovery": 1,
        "rewardGap": 1,
        "humanCorrection": 1,
    }
    assert health(None).approved_pairs == 8
    # and the TrainingRun's snapshot exports exactly what was counted
    training = {"baseModel": {"name": "m", "uri": "file:///m"}}
    training_run = TrainingRun.model_validate({"spec": {"policyRef": "p", "training": training}})
    flt = snapshot_filter(training_run, {"spec": policy_spec}, now, "default")
    snapshot = export_dpo(engine, tmp_path / "snap", flt)
    assert snapshot.train_rows + snapshot.eval_rows == counted.approved_pairs
    everything = export_dpo(engine, tmp_path / "all", snapshot_filter(training_run, None, now, "default"))
    assert everything.train_rows + everything.eval_rows == 8


def test_pairs_older_than_max_age_do_not_count(factory: sessionmaker[Session]) -> None:
    _explicit(factory, 2)
    with transaction(factory) as session:
        later = track_health(
            session, agent="coder", role=None, task_family=None, require_review=False, since=None,
            window_start=datetime.now(UTC) + timedelta(minutes=1),
        )  # fmt: skip
    assert later.approved_pairs == 0
    assert later.pairs_by_source == {"explicit": 2}


def _age_every_change(factory: sessionmaker[Session], to: datetime) -> None:
    """Date every run's last change back, as if the track had been quiet since ``to``."""
    with transaction(factory) as session:
        session.execute(update(Run).values(changed_at=to))


def test_a_resumed_mining_reads_only_the_tasks_changed_since_and_still_finds_late_arrivals(
    factory: sessionmaker[Session],
) -> None:
    _experience(factory)
    first = _mine(factory)
    assert first.tasks is None  # no progress yet: the whole window
    assert first.through is not None
    _age_every_change(factory, T0 - timedelta(days=1))
    with transaction(factory) as session:
        ingest.insert_runs(
            session,
            [
                run("awful", "t2", "awful", ok=False, attempt=3, minutes=2),  # a third attempt at t2
                run("late", "t9", "late", minutes=-600),  # reported now, dated hours before the others
            ],
        )
        # a person corrects an old run of t1: t1 changed too, though none of its runs is new
        ingest.insert_feedback(session, [_feedback("f-e1", "coder-e1", "better fix")])
    resumed = _mine(factory, changed_after=T0)
    assert resumed.tasks == 3  # t1, t2 and t9; t3 is left alone
    assert resumed.found == {"humanCorrection": 1, "rewardGap": 2, "errorRecovery": 1}
    assert resumed.inserted == {"humanCorrection": 1, "rewardGap": 1}  # the correction, good over awful
    assert resumed.through is not None
    assert resumed.through > T0
    # With the whole window read again, nothing more is found: the resumed mining missed nothing.
    assert _mine(factory).inserted == {}


def test_a_change_written_a_little_before_the_progress_is_reread(factory: sessionmaker[Session]) -> None:
    """A slow transaction commits after a mining saw newer changes: its run is still mined next time."""
    _experience(factory)
    _age_every_change(factory, T0 - timedelta(hours=1))
    with transaction(factory) as session:
        ingest.insert_runs(session, [run("slow", "t3", "slower", attempt=2, minutes=5)])
        session.execute(update(Run).where(Run.id == "slow").values(changed_at=T0 + timedelta(minutes=1)))
    # the last mining saw changes up to T0 + 3 minutes; "slow" committed after it, dated T0 + 1 minute
    resumed = _mine(factory, changed_after=T0 + timedelta(minutes=3))
    assert resumed.tasks == 1
    assert resumed.through == T0 + timedelta(minutes=1)
    assert _mine(factory, changed_after=T0 + timedelta(minutes=1) + REREAD).tasks == 0  # and not later


def test_progress_is_kept_per_policy_and_resumes_only_with_the_same_settings(
    factory: sessionmaker[Session],
) -> None:
    with transaction(factory) as session:
        policies.upsert_policy(session, "team-a", "coder", "coder", "", "", {})
        assert progress(session, "team-a", "coder") == Progress()  # never mined: the whole window
        assert progress(session, "team-a", "missing") == Progress()
        keep_progress(session, "team-a", "coder", Progress("settings-1", T0))
    with transaction(factory) as session:
        kept = progress(session, "team-a", "coder")
        # The reward weights changing rewrite the row, not the progress.
        policies.upsert_policy(session, "team-a", "coder", "coder", "", "", {"testsPassed": 0.5})
    with transaction(factory) as session:
        assert progress(session, "team-a", "coder") == kept
    assert kept.resume_after("settings-1") == T0
    assert kept.resume_after("settings-2") is None  # other settings find other pairs: mine it all
