"""Pair mining and rewards against the real databases (PostgreSQL and SQLite)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from controllers.data.pairs import MiningSettings
from controllers.store import ingest, policies, reviews
from controllers.store.db import transaction
from controllers.store.mining import mine
from controllers.store.models import PreferencePair, Run
from tests.store.helpers import run


def test_rewards_are_computed_on_ingest_and_recomputed_when_policy_weights_change(
    factory: sessionmaker[Session],
) -> None:
    with transaction(factory) as session:
        ingest.insert_runs(session, [run("a", "t1", "x", compile_ok=True, tests_passed=0, tests_total=4)])
    with transaction(factory) as session:
        assert session.get(Run, ("default", "a")).reward == pytest.approx(0.5)  # type: ignore[union-attr]
    with transaction(factory) as session:
        changed = policies.upsert_policy(
            session,
            "default",
            "coder-dpo",
            "coder",
            "",
            "",
            {"compileOk": 0.1, "testsPassed": 0.9, "errors": 0.0, "humanAccepted": 0.0},
        )
    assert changed == 1
    with transaction(factory) as session:
        assert session.get(Run, ("default", "a")).reward == pytest.approx(0.1)  # type: ignore[union-attr]
        # New runs of the track use the policy's weights; unchanged weights recompute nothing.
        ingest.insert_runs(session, [run("b", "t2", "y", compile_ok=False, tests_passed=4, tests_total=4)])
    with transaction(factory) as session:
        assert session.get(Run, ("default", "b")).reward == pytest.approx(0.9)  # type: ignore[union-attr]
        assert (
            policies.upsert_policy(
                session,
                "default",
                "coder-dpo",
                "coder",
                "",
                "",
                {"compileOk": 0.1, "testsPassed": 0.9, "errors": 0.0, "humanAccepted": 0.0},
            )
            == 0
        )


def test_a_policy_change_recomputes_the_runs_its_track_matches_before_and_after(
    factory: sessionmaker[Session],
) -> None:
    tests_only = {"compileOk": 0.0, "testsPassed": 1.0, "errors": 0.0, "humanAccepted": 0.0}
    signals = {"compile_ok": True, "tests_passed": 0, "tests_total": 4}
    with transaction(factory) as session:
        ingest.insert_runs(
            session,
            [run(f"{agent}-1", "t", "x", agent=agent, **signals) for agent in ("coder", "fixer", "judge")],
        )
    with transaction(factory) as session:
        assert (
            policies.upsert_policy(session, "default", "p", "coder", "", "", tests_only) == 1
        )  # coder's run only
    with transaction(factory) as session:
        rewards = {r.id: r.reward for r in session.scalars(select(Run))}
    assert rewards == pytest.approx({"coder-1": 0.0, "fixer-1": 0.5, "judge-1": 0.5})
    with transaction(factory) as session:
        # The policy moves from coder to fixer: coder's run goes back to the defaults, fixer's changes.
        assert policies.upsert_policy(session, "default", "p", "fixer", "", "", tests_only) == 2
    with transaction(factory) as session:
        rewards = {r.id: r.reward for r in session.scalars(select(Run))}
    assert rewards == pytest.approx({"coder-1": 0.5, "fixer-1": 0.0, "judge-1": 0.5})
    with transaction(factory) as session:
        # A policy for every agent of a role reaches every run of that role.
        assert policies.upsert_policy(session, "default", "everyone", "", "coder", "", tests_only) == 2


def test_feedback_sets_human_acceptance_and_updates_the_reward(factory: sessionmaker[Session]) -> None:
    with transaction(factory) as session:
        ingest.insert_runs(session, [run("a", "t1", "x", compile_ok=True)])
    with transaction(factory) as session:
        before = session.get(Run, ("default", "a")).reward  # type: ignore[union-attr]
        ingest.insert_feedback(
            session,
            [
                {
                    "id": "f1",
                    "created_at": datetime.now(UTC),
                    "run_id": "a",
                    "thumbs": -1,
                    "categories": ["wrong-answer"],
                }
            ],
        )
    with transaction(factory) as session:
        after = session.get(Run, ("default", "a"))
        assert after is not None
        assert after.human_accepted is False
        assert after.reward is not None
        assert before is not None
        assert after.reward < before


def _mine(factory: sessionmaker[Session], **settings: object) -> dict[str, int]:
    with transaction(factory) as session:
        return mine(session, MiningSettings(**settings))  # type: ignore[arg-type]


def test_every_source_yields_its_pairs_once(factory: sessionmaker[Session]) -> None:
    with transaction(factory) as session:
        ingest.insert_runs(
            session,
            [
                # error recovery: a failure, then a fix with a different prompt (the error message appended)
                run("e1", "t1", "def f(): retrun 1", ok=False),
                run(
                    "e2",
                    "t1",
                    "def f(): return 1",
                    ok=True,
                    attempt=2,
                    prompt="solve t1\nSyntaxError",
                    minutes=1,
                ),
                # reward gap: two samples at the same prompt
                run("g1", "t2", "good", compile_ok=True, tests_passed=3, tests_total=3),
                run("g2", "t2", "meh", compile_ok=True, tests_passed=1, tests_total=3),
                # a close call: no pair from signals
                run("c1", "t3", "a", compile_ok=True, tests_passed=3, tests_total=3),
                run("c2", "t3", "b", compile_ok=True, tests_passed=3, tests_total=3),
                run("h1", "t4", "wrong", compile_ok=True),
            ],
        )
        ingest.insert_feedback(
            session,
            [
                {
                    "id": "f",
                    "created_at": datetime.now(UTC),
                    "run_id": "h1",
                    "correction": "right",
                    "accepted": False,
                    "categories": [],
                }
            ],
        )
    first = _mine(factory)
    assert first["errorRecovery"] == 1
    assert first["rewardGap"] == 1
    assert first["humanCorrection"] == 1
    assert first["inserted"] == first["found"] == 3
    assert _mine(factory)["inserted"] == 0  # idempotent by construction
    with transaction(factory) as session:
        pairs = {p.source: p for p in session.execute(select(PreferencePair)).scalars()}
    assert (pairs["errorRecovery"].prompt, pairs["errorRecovery"].chosen) == ("solve t1", "def f(): return 1")
    assert (pairs["rewardGap"].chosen, pairs["rewardGap"].rejected) == ("good", "meh")
    assert pairs["rewardGap"].margin == pytest.approx(1 - 2 / 3, abs=1e-6)  # rewards 1.0 vs (1 + 1/3) / 2
    assert (pairs["humanCorrection"].chosen, pairs["humanCorrection"].rejected) == ("right", "wrong")
    assert pairs["humanCorrection"].rejected_run_id == "h1"


def test_sources_can_be_switched_off(factory: sessionmaker[Session]) -> None:
    with transaction(factory) as session:
        ingest.insert_runs(
            session, [run("e1", "t1", "bad", ok=False), run("e2", "t1", "fixed", ok=True, attempt=2)]
        )
    result = _mine(factory, error_recoveries=False, reward_gaps=False)
    assert result["found"] == 0
    assert _mine(factory, error_recoveries=False)["rewardGap"] == 1


def test_a_failed_then_fixed_attempt_is_one_pair_not_two(factory: sessionmaker[Session]) -> None:
    with transaction(factory) as session:
        ingest.insert_runs(
            session, [run("e1", "t1", "bad", ok=False), run("e2", "t1", "fixed", ok=True, attempt=2)]
        )
    result = _mine(factory)
    assert result == {"found": 1, "inserted": 1, "errorRecovery": 1}
    with transaction(factory) as session:
        assert session.scalar(select(func.count()).select_from(PreferencePair)) == 1


def test_the_same_explicit_pair_from_two_agents_is_two_pairs_and_from_one_agent_one(
    factory: sessionmaker[Session],
) -> None:
    def post(agent: str) -> int:
        row = {"source": "explicit", "prompt": "p", "chosen": "c", "rejected": "r", "agent": agent}
        with transaction(factory) as session:
            return int(ingest.insert_pairs(session, [{**row, "created_at": datetime.now(UTC)}])["inserted"])

    assert [post("coder"), post("fixer"), post("coder")] == [1, 1, 0]
    with transaction(factory) as session:
        agents = session.scalars(select(PreferencePair.agent).order_by(PreferencePair.agent)).all()
    assert agents == ["coder", "fixer"]


def test_review_queue_and_decisions(factory: sessionmaker[Session]) -> None:
    with transaction(factory) as session:
        ingest.insert_runs(session, [run("r", "t", "o", ok=True)])
        ids = ingest.insert_pairs(
            session,
            [
                {
                    "source": "explicit",
                    "prompt": "p",
                    "chosen": "c",
                    "rejected": "r",
                    "created_at": datetime.now(UTC),
                    "agent": "coder",
                }
            ],
        )["ids"]
        ingest.insert_annotations(
            session,
            [
                {
                    "id": "n1",
                    "created_at": datetime.now(UTC),
                    "run_id": "r",
                    "state": "pending",
                    "reason": "check",
                    "labels": [],
                    "reviewer": "",
                    "note": "",
                }
            ],
        )
    with transaction(factory) as session:
        pending = reviews.pending_reviews(session)
        assert [p.id for p in pending.pairs] == ids
        assert [a.id for a in pending.annotations] == ["n1"]
        reviews.apply_reviews(
            session,
            [
                {"kind": "pair", "id": ids[0], "decision": "approved"},
                {"kind": "annotation", "id": "n1", "decision": "rejected", "reviewer": "ana"},
            ],
        )
    with transaction(factory) as session:
        pending = reviews.pending_reviews(session)
        assert (list(pending.pairs), list(pending.annotations)) == ([], [])
        with pytest.raises(ingest.UnknownReference, match=r"reviews\[0\]\.id"):
            reviews.apply_reviews(session, [{"kind": "pair", "id": "nope", "decision": "approved"}])
