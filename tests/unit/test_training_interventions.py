"""A person's requests on training, as the pure decisions answer them: Retry on a TrainingRun in each
state it can be in, and Train / Pause / Resume on a LearningPolicy under cooldown, budget and pause."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from controllers.api.intervention import Action, Intervention
from controllers.api.learningpolicy import GpuBudget, TriggerSettings
from controllers.api.trainingrun import AdapterStatus, DatasetStatus, RetrySettings, TrainingRunStatus
from controllers.decisions.answers import event, is_declined
from controllers.decisions.conditions import Want, merge
from controllers.decisions.runplan import (
    GATE,
    POLICY_GRACE,
    SUCCEEDED,
    JobPhase,
    JobState,
    Step,
    logs_command,
    missing_policy,
    next_step,
    retry_answer,
)
from controllers.decisions.triggers import RunSeen, TriggerFacts, answer, decide

NOW = datetime(2026, 12, 5, 22, 0, tzinfo=UTC)
DIGEST = "sha256:" + "b" * 64
RETRY = RetrySettings(max_attempts=3, backoff="30s")
DATASET = DatasetStatus(uri="file:///d", content_hash=DIGEST, watermark=NOW, train_rows=10, eval_rows=2)


def request(action: Action, ident: str = "req-1") -> Intervention:
    return Intervention(id=ident, action=action, by="alice", at=NOW, reason="node drained")


def failed_for_good(attempts: int = 3) -> TrainingRunStatus:
    status = TrainingRunStatus(dataset=DATASET, attempts=attempts, submission_id="kaizen-r-a3-x")
    step = next_step(status, JobState(JobPhase.FAILED, "node lost", logs_command("ns", "r")), RETRY, NOW)
    status.conditions = merge([], step.conditions, generation=1, now=NOW)
    status.completion_time = NOW
    return status


def test_a_run_that_failed_for_good_is_granted_exactly_the_next_attempt() -> None:
    assert retry_answer(failed_for_good(3)) == (4, "")
    assert retry_answer(failed_for_good(4)) == (5, "")  # retried once already: one more again


def test_the_granted_attempt_runs_once_and_its_failure_ends_the_run_again() -> None:
    # attempt 4 of a run allowed 3: followed while it runs, and not retried by itself when it fails
    status = TrainingRunStatus(dataset=DATASET, attempts=4)
    running = next_step(status, JobState(JobPhase.RUNNING), RETRY, NOW)
    assert running.step == Step.FOLLOW
    assert running.conditions[0].message == "attempt 4 of 4 is running"
    failed = next_step(status, JobState(JobPhase.FAILED, "OOM", logs_command("ns", "r")), RETRY, NOW)
    assert (failed.step, failed.finished) == (Step.DONE, True)
    assert (
        failed.conditions[0].message
        == "attempt 4 of 4 failed: OOM. Full log: kaizen logs trainingrun r -n ns"
    )


def test_a_retry_is_declined_while_the_run_is_still_going() -> None:
    waiting = TrainingRunStatus(dataset=DATASET, attempts=1)
    step = next_step(waiting, JobState(JobPhase.RUNNING), RETRY, NOW)
    waiting.conditions = merge([], step.conditions, generation=1, now=NOW)
    attempt, why = retry_answer(waiting)
    assert attempt == 0
    assert "has not finished (attempt 1 of 3 is running)" in why
    assert retry_answer(TrainingRunStatus())[0] == 0  # not even snapshotted yet


def test_a_retry_is_declined_for_a_run_that_trained() -> None:
    adapter = AdapterStatus(uri="file:///a", digest=DIGEST)
    passed = merge([], [Want.true(GATE, "GateMet"), Want.true(SUCCEEDED, "Trained")], generation=1, now=NOW)
    done = TrainingRunStatus(
        dataset=DATASET, attempts=1, completion_time=NOW, adapter=adapter, conditions=passed, shadow_model="r"
    )
    assert retry_answer(done) == (0, "the run succeeded (ShadowModel r); nothing to retry")
    missed = merge(
        [], [Want.false(GATE, "GateNotMet"), Want.true(SUCCEEDED, "Trained")], generation=1, now=NOW
    )
    gated = TrainingRunStatus(
        dataset=DATASET, attempts=1, completion_time=NOW, adapter=adapter, conditions=missed
    )
    attempt, why = retry_answer(gated)
    assert attempt == 0
    assert "missed the offline gate" in why
    assert "kaizen train learningpolicy" in why


def test_a_retry_cannot_fix_an_empty_snapshot() -> None:
    empty = DatasetStatus(uri="file:///d", content_hash=DIGEST, watermark=NOW, train_rows=0)
    status = TrainingRunStatus(dataset=empty, completion_time=NOW)
    attempt, why = retry_answer(status)
    assert attempt == 0
    assert why.startswith("the snapshot holds no trainable rows")


def test_a_run_naming_no_policy_waits_the_grace_then_ends_and_a_retry_points_to_the_policy() -> None:
    created = NOW - timedelta(minutes=3)
    waiting = missing_policy("team-a", "coder", created, NOW)
    assert not waiting.gave_up
    (ready,) = waiting.conditions
    assert (ready.status.value, ready.reason) == ("False", "PolicyNotFound")
    due = created + POLICY_GRACE
    assert ready.message == (
        "spec.policyRef: no LearningPolicy 'coder' in namespace 'team-a'; nothing was read."
        f" Create it; without it this run ends at {due:%Y-%m-%dT%H:%M:%SZ}"
    )
    assert missing_policy("team-a", "coder", created, due - timedelta(seconds=1)).conditions == (ready,)
    ended = missing_policy("team-a", "coder", created, due)
    assert ended.gave_up
    assert [(w.type, w.status.value, w.reason) for w in ended.conditions] == [
        ("Ready", "False", "PolicyNotFound"),
        (SUCCEEDED, "False", "PolicyNotFound"),
    ]
    assert ended.conditions[0].message.endswith("it ended. Create the policy, then a new run")
    status = TrainingRunStatus(completion_time=due)
    status.conditions = merge([], list(ended.conditions), generation=1, now=due)
    attempt, why = retry_answer(status)
    assert attempt == 0
    assert why == "the run never found its policy (spec.policyRef): create the policy, then a new run"


def test_a_retry_is_declined_once_the_policy_started_a_newer_run() -> None:
    attempt, why = retry_answer(failed_for_good(), newer="coder-0007")
    assert attempt == 0
    assert "TrainingRun coder-0007 of the same policy started since" in why


def test_answers_say_who_asked_why_and_what_was_done_in_an_event() -> None:
    granted = event(request(Action.RETRY), "attempt 4 submitted (kaizen-r-a4-x)")
    assert granted == (
        "Normal",
        "Retry",
        "Retry asked by alice (node drained): attempt 4 submitted (kaizen-r-a4-x)",
    )
    refused = event(request(Action.RETRY), "declined: the run succeeded")
    assert refused[:2] == ("Warning", "InterventionDeclined")
    assert refused[2].endswith("declined: the run succeeded")


def seen(name: str, minutes_ago: float, **kwargs: object) -> RunSeen:
    values: dict[str, object] = {"finished": True, "gpu_hours": 0.0, "trigger_token": None, **kwargs}
    return RunSeen(name, NOW - timedelta(minutes=minutes_ago), **values)  # type: ignore[arg-type]


def trigger(**kwargs: object) -> TriggerSettings:
    return TriggerSettings.model_validate({"minNewPairs": 10, "cooldown": "1h", **kwargs})


def test_a_train_request_during_the_cooldown_starts_a_run() -> None:
    # the cooldown spaces the automatic triggers; a person asking is the reason to train now
    facts = TriggerFacts(0, (seen("p-0001", 10),), "req-1", paused=False)
    decision = decide(trigger(), facts, NOW)
    assert decision.fire is not None
    assert answer(request(Action.TRAIN), decision, "p-0002", paused=False) == "started TrainingRun p-0002"


def test_a_train_request_over_the_gpu_budget_is_declined_saying_so() -> None:
    settings = trigger(budget=GpuBudget(gpu_hours=1.0, window="24h"))
    facts = TriggerFacts(0, (seen("p-0001", 120, gpu_hours=1.5),), "req-1", paused=False)
    decision = decide(settings, facts, NOW)
    assert decision.fire is None
    outcome = answer(request(Action.TRAIN), decision, "", paused=False)
    assert is_declined(outcome)
    assert "GPU budget used (1.50 of 1.0 GPU-hours per 24h)" in outcome


def test_a_train_request_on_a_paused_policy_is_declined_saying_so() -> None:
    decision = decide(trigger(), TriggerFacts(100, (), "req-1", paused=True), NOW)
    outcome = answer(request(Action.TRAIN), decision, "", paused=True)
    assert outcome == "declined: paused: no new TrainingRuns until spec.paused is false"


def test_a_train_request_whose_run_was_already_made_is_answered_with_that_run() -> None:
    # an operator killed after creating the run: the run holds the request's token and is in progress
    facts = TriggerFacts(0, (seen("p-0002", 1, finished=False, trigger_token="req-1"),), "req-1", False)
    decision = decide(trigger(), facts, NOW)
    assert decision.fire is None
    assert answer(request(Action.TRAIN), decision, "p-0002", paused=False) == "started TrainingRun p-0002"


def test_a_retried_run_holds_new_runs_even_when_it_is_not_the_newest() -> None:
    runs = (seen("p-0001", 600, finished=False), seen("p-0002", 120))
    decision = decide(trigger(), TriggerFacts(100, runs, "req-1", paused=False), NOW)
    assert decision.fire is None
    assert decision.message == "TrainingRun p-0001 is still in progress"


def test_a_retried_run_spends_the_budget_of_the_window_it_finished_in() -> None:
    # created three days ago, retried and finished an hour ago: its GPU-hours count in today's window
    settings = trigger(budget=GpuBudget(gpu_hours=2.0, window="24h"))
    old = seen("p-0001", 3 * 24 * 60, gpu_hours=2.5, completed=NOW - timedelta(hours=1))
    decision = decide(settings, TriggerFacts(100, (old,), None, paused=False), NOW)
    assert decision.fire is None
    assert decision.gpu_hours_used == 2.5
    assert decision.next_eligible == NOW + timedelta(hours=23)


def test_pause_and_resume_are_answered_with_what_the_switch_does_now() -> None:
    decision = decide(trigger(), TriggerFacts(0, (), None, paused=True), NOW)
    assert answer(request(Action.PAUSE), decision, "", paused=True) == "no new TrainingRuns until resumed"
    assert answer(request(Action.RESUME), decision, "", paused=False) == "resumed"
    assert is_declined(answer(request(Action.RESUME), decision, "", paused=True))
    assert answer(request(Action.PROMOTE), decision, "", paused=False) == (
        "declined: Promote does not apply to a LearningPolicy"
    )
