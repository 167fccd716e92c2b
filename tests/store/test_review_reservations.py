"""The blind pairwise review in the store, on PostgreSQL and SQLite: exclusive reservations (also
under concurrent reviewers), expiry and skipping, verdicts mapped through the shown order, several
reviewers per item, corrections as pairs, progress and agreement. The clock is injected."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from controllers.decisions.reviewing import Verdict
from controllers.store import ingest, policies
from controllers.store.db import transaction
from controllers.store.models import PreferencePair
from controllers.store.review_queue import UnknownPolicy, release, reserve_next
from controllers.store.review_stats import agreement, progress, upsert_review_settings
from controllers.store.review_verdicts import ReviewRefused, UnknownPair, VerdictIn, submit
from tests.store.helpers import T0

NS = "team-a"
TTL = timedelta(minutes=5)
NOW = T0 + timedelta(hours=1)


def _pairs(
    factory: sessionmaker[Session], count: int, source: str = "explicit", agent: str = "coder"
) -> list[str]:
    rows = [
        {"prompt": f"{agent} q{i}", "chosen": f"good {i}", "rejected": f"bad {i}", "agent": agent, "role": "coder",
         "source": source, "created_at": T0 + timedelta(seconds=i), "rejected_run_id": f"run-{i}"}
        for i in range(count)
    ]  # fmt: skip
    with transaction(factory) as session:
        return list(ingest.insert_pairs(session, rows, NS)["ids"])


def _reviewers(factory: sessionmaker[Session], count: int, guidelines: str = "") -> None:
    with transaction(factory) as session:
        policies.upsert_policy(session, NS, "coder", "coder", "", "", {"testsPassed": 1.0})
        upsert_review_settings(session, NS, "coder", count, guidelines, NOW)


def _reserve(factory: sessionmaker[Session], who: str, now: Any = NOW, **options: Any) -> Any:
    with transaction(factory) as session:
        return reserve_next(session, NS, who, now, TTL, **options)


def _judge(
    factory: sessionmaker[Session], who: str, pair_id: str, verdict: Verdict, now: Any = NOW, **extra: Any
) -> dict[str, Any]:
    with transaction(factory) as session:
        return submit(session, NS, who, pair_id, VerdictIn(verdict, **extra), now)


def _state(factory: sessionmaker[Session], pair_id: str) -> str:
    with transaction(factory) as session:
        pair = session.get(PreferencePair, (NS, pair_id))
        assert pair is not None
        return pair.review_state


def test_a_reserved_item_is_nobody_elses_and_asking_again_returns_it(factory: sessionmaker[Session]) -> None:
    first, second = _pairs(factory, 2)
    ana = _reserve(factory, "ana")
    assert ana.pair.id == first
    assert _reserve(factory, "ana").pair.id == first  # a reload is not a second item
    assert _reserve(factory, "bo").pair.id == second
    assert _reserve(factory, "cy") is None


def test_concurrent_reviewers_never_share_an_item(factory: sessionmaker[Session]) -> None:
    ids = _pairs(factory, 6)
    got: dict[str, str | None] = {}
    start = threading.Barrier(8)

    def reviewer(name: str) -> None:
        start.wait()
        for _ in range(20):  # SQLite may answer "database is locked" to a writer that lost the race
            try:
                reserved = _reserve(factory, name)
                got[name] = reserved.pair.id if reserved else None
                return
            except Exception as error:
                if "locked" not in str(error):
                    raise
        raise AssertionError(f"{name} never got an answer")

    threads = [threading.Thread(target=reviewer, args=(f"r{i}",)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    held = [pair for pair in got.values() if pair is not None]
    assert sorted(held) == sorted(ids)  # six items, six reviewers, none twice; two got nothing
    assert list(got.values()).count(None) == 2


def test_an_expired_reservation_returns_the_item_and_its_verdict_is_refused(
    factory: sessionmaker[Session],
) -> None:
    (only,) = _pairs(factory, 1)
    assert _reserve(factory, "ana").pair.id == only
    assert _reserve(factory, "bo") is None
    later = NOW + TTL + timedelta(seconds=1)
    assert _reserve(factory, "bo", now=later).pair.id == only
    with pytest.raises(ReviewRefused, match="reserved by another reviewer"):
        _judge(factory, "ana", only, Verdict.LEFT, now=later)


def test_a_skipped_item_goes_to_the_next_reviewer_and_not_back(factory: sessionmaker[Session]) -> None:
    first, second = _pairs(factory, 2)
    assert _reserve(factory, "ana").pair.id == first
    with transaction(factory) as session:
        assert release(session, NS, "ana", first, NOW)
        assert not release(session, NS, "ana", "no-such-pair", NOW)
    assert _reserve(factory, "ana").pair.id == second
    assert _reserve(factory, "bo").pair.id == first


@pytest.mark.parametrize(("left_is_chosen", "verdict", "state"), [
    (True, Verdict.LEFT, "approved"), (False, Verdict.LEFT, "rejected"),
    (True, Verdict.RIGHT, "rejected"), (False, Verdict.RIGHT, "approved"),
])  # fmt: skip
def test_a_verdict_on_a_swapped_pair_stores_the_right_winner(
    factory: sessionmaker[Session], left_is_chosen: bool, verdict: Verdict, state: str
) -> None:
    (only,) = _pairs(factory, 1)
    reserved = _reserve(factory, "ana", draw=lambda: left_is_chosen)
    assert reserved.left_is_chosen is left_is_chosen
    answer = _judge(factory, "ana", only, verdict)
    assert answer["preference"] == ("chosen" if state == "approved" else "rejected")
    assert _state(factory, only) == state


def test_a_verdict_needs_the_reviewers_own_reservation_and_comes_once(factory: sessionmaker[Session]) -> None:
    first, second = _pairs(factory, 2)
    with pytest.raises(ReviewRefused, match="not reserved by you"):
        _judge(factory, "ana", first, Verdict.TIE)
    _reserve(factory, "ana")
    with pytest.raises(ReviewRefused, match="reserved by another reviewer"):
        _judge(factory, "bo", first, Verdict.TIE)
    with pytest.raises(UnknownPair):
        _judge(factory, "ana", "nope", Verdict.TIE)
    _judge(factory, "ana", first, Verdict.TIE)
    with pytest.raises(ReviewRefused, match="already gave a verdict"):
        _judge(factory, "ana", first, Verdict.LEFT)
    assert _state(factory, first) == "rejected"
    assert _state(factory, second) == "pending"


def test_three_reviewers_per_item_settle_it_by_majority(factory: sessionmaker[Session]) -> None:
    _reviewers(factory, 3, guidelines="prefer the shorter correct answer")
    (only,) = _pairs(factory, 1)
    shown = {}
    for name in ("ana", "bo", "cy"):
        reserved = _reserve(factory, name, draw={"bo": lambda: False}.get(name, lambda: True))
        assert reserved.pair.id == only
        assert (reserved.rules.reviewers, reserved.rules.guidelines) == (
            3,
            "prefer the shorter correct answer",
        )
        shown[name] = reserved.left_is_chosen
    assert _reserve(factory, "dee") is None  # all three slots held
    assert _judge(factory, "ana", only, Verdict.LEFT)["reviewState"] == "pending"  # chosen
    assert _judge(factory, "bo", only, Verdict.RIGHT)["reviewState"] == "pending"  # chosen (shown swapped)
    assert _judge(factory, "cy", only, Verdict.RIGHT)["reviewState"] == "approved"  # rejected: 2 of 3 chosen
    with transaction(factory) as session:
        found = agreement(session, NS, "coder")
    assert found["reviewers"]["alpha"] is None  # one multiply-judged item: undefined, with a reason
    assert "at least 2 items" in found["reviewers"]["reason"]
    assert found["verdicts"] == 3


def test_a_correction_becomes_an_approved_human_correction_pair(factory: sessionmaker[Session]) -> None:
    (only,) = _pairs(factory, 1)
    _reserve(factory, "ana", draw=lambda: False)  # stored rejected shown left
    answer = _judge(factory, "ana", only, Verdict.RIGHT, correction="better 0", tags=("correctness",))
    (made,) = answer["correctionPairs"]
    with transaction(factory) as session:
        pair = session.get(PreferencePair, (NS, made))
        assert pair is not None
        assert (pair.source, pair.chosen, pair.rejected, pair.rejected_run_id, pair.review_state) == (
            "humanCorrection",
            "better 0",
            "bad 0",
            "run-0",
            "approved",
        )
    (other,) = _pairs(factory, 1, agent="fixer")
    _reserve(factory, "ana")
    both = _judge(factory, "ana", other, Verdict.BOTH_BAD, correction="fixed 0")
    assert len(both["correctionPairs"]) == 2  # neither answer won: the correction beats each


def test_progress_counts_the_callers_queue(factory: sessionmaker[Session]) -> None:
    first, _, _ = _pairs(factory, 3)
    _reserve(factory, "ana")
    _judge(factory, "ana", first, Verdict.LEFT)
    _reserve(factory, "ana")
    _reserve(factory, "bo")
    with transaction(factory) as session:
        assert progress(session, NS, "ana", NOW) == {
            "pending": 2, "reserved": 2, "reservedByMe": 1, "doneTodayByMe": 1, "doneByMe": 1, "doneAll": 1
        }  # fmt: skip
        assert progress(session, NS, "ana", NOW + timedelta(days=1))["doneTodayByMe"] == 0
        assert progress(session, NS, "ana", NOW, agent="fixer")["pending"] == 0
        with pytest.raises(UnknownPolicy):
            progress(session, NS, "ana", NOW, policy="nope")


def test_agreement_between_reviewers_and_with_the_judge(factory: sessionmaker[Session]) -> None:
    _reviewers(factory, 2)
    ids = _pairs(factory, 3, source="llmJudge")
    # a: chosen, chosen; b: chosen, rejected; c: rejected, rejected -> alpha 4/9 (tests/unit/test_reviewing.py)
    wanted = {ids[0]: ("left", "left"), ids[1]: ("left", "right"), ids[2]: ("right", "right")}
    for _ in ids:
        for name, column in (("ana", 0), ("bo", 1)):
            reserved = _reserve(factory, name, draw=lambda: True)
            _judge(factory, name, reserved.pair.id, Verdict(wanted[reserved.pair.id][column]))
    with transaction(factory) as session:
        found = agreement(session, NS)
    assert found["reviewers"]["alpha"] == pytest.approx(4 / 9)
    assert (found["reviewers"]["items"], found["reviewers"]["pairs"]) == (3, 3)
    assert (found["judge"]["verdicts"], found["judge"]["agreeing"]) == (6, 3)
    assert found["judge"]["rate"] == pytest.approx(0.5)


def test_reserving_within_a_policy_or_agent_narrows_the_queue(factory: sessionmaker[Session]) -> None:
    _reviewers(factory, 1)
    _pairs(factory, 1, agent="fixer")
    (coder,) = _pairs(factory, 1)
    assert _reserve(factory, "ana", policy="coder").pair.id == coder
    assert _reserve(factory, "bo", agent="coder") is None
    with pytest.raises(UnknownPolicy):
        _reserve(factory, "cy", policy="nope")
    with transaction(factory) as session:
        assert session.execute(select(PreferencePair.id)).scalars().all()
