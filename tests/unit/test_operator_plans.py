"""The operator's pure decisions: triggers, the TrainingRun state machine, conditions, status patches."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from controllers.api.common import ConditionStatus
from controllers.api.learningpolicy import GpuBudget, TriggerSettings
from controllers.api.training_settings import OfflineGate
from controllers.api.trainingrun import (
    AdapterStatus,
    DatasetStatus,
    RetrySettings,
    TrainingMetrics,
    TrainingRunStatus,
    TriggerReason,
)
from controllers.decisions.conditions import Want, merge
from controllers.decisions.runplan import (
    FAILURE_LINE_LIMIT,
    GATE,
    JobPhase,
    JobState,
    Step,
    backoff,
    failure_line,
    gate_verdict,
    gpu_hours,
    logs_command,
    next_step,
    rayjob_state,
    trained_condition,
)
from controllers.decisions.triggers import RunSeen, TriggerFacts, decide, previous_cron_fire
from controllers.operator.dispatch import status_patch
from controllers.runtime.leader import expired
from trainer.config import Scaling, Timings, TrainerManifest

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
DIGEST = "sha256:" + "a" * 64


def run(
    name: str, minutes_ago: float, finished: bool = True, gpu_hours: float = 0.0, token: str | None = None
) -> RunSeen:
    return RunSeen(name, NOW - timedelta(minutes=minutes_ago), finished, gpu_hours, token)


def trigger(**kwargs: object) -> TriggerSettings:
    return TriggerSettings.model_validate({"minNewPairs": 10, "cooldown": "1h", **kwargs})


def test_threshold_fires_when_enough_new_pairs_arrived() -> None:
    decision = decide(trigger(), TriggerFacts(10, (), None, paused=False), NOW)
    assert decision.fire == TriggerReason.THRESHOLD
    held = decide(trigger(), TriggerFacts(9, (), None, paused=False), NOW)
    assert held.fire is None
    assert "9/10" in held.message


def test_a_run_in_progress_holds_every_trigger_including_manual() -> None:
    facts = TriggerFacts(100, (run("p-0001", 5, finished=False),), "now-please", paused=False)
    decision = decide(trigger(), facts, NOW)
    assert decision.fire is None
    assert "p-0001 is still in progress" in decision.message


def test_cooldown_holds_the_threshold_but_not_a_manual_request() -> None:
    recent = (run("p-0001", 30),)
    held = decide(trigger(), TriggerFacts(50, recent, None, paused=False), NOW)
    assert held.fire is None
    assert "cooldown" in held.message
    assert held.next_eligible == NOW + timedelta(minutes=30)
    manual = decide(trigger(), TriggerFacts(50, recent, "token-1", paused=False), NOW)
    assert manual.fire == TriggerReason.MANUAL


def test_a_manual_token_starts_one_run_only() -> None:
    used = (run("p-0001", 120, token="token-1"),)
    assert decide(trigger(), TriggerFacts(0, used, "token-1", paused=False), NOW).fire is None
    assert decide(trigger(), TriggerFacts(0, used, "token-2", paused=False), NOW).fire == TriggerReason.MANUAL


def test_gpu_budget_in_the_window_holds_triggers() -> None:
    settings = trigger(budget=GpuBudget(gpu_hours=2.0, window="24h"))
    spent = (
        run("p-0001", 600, gpu_hours=1.5),
        run("p-0002", 120, gpu_hours=0.6),
        run("p-0000", 60 * 30, gpu_hours=50),
    )
    decision = decide(settings, TriggerFacts(50, spent, None, paused=False), NOW)
    assert decision.fire is None
    assert "GPU budget" in decision.message
    assert abs(decision.gpu_hours_used - 2.1) < 1e-9  # the 30-hour-old run is outside the window


def test_the_reported_window_start_moves_once_an_hour_so_statuses_stay_still() -> None:
    settings = trigger(budget=GpuBudget(gpu_hours=2.0, window="24h"))
    facts = TriggerFacts(0, (), None, paused=False)
    starts = {decide(settings, facts, NOW + timedelta(minutes=m)).window_start for m in range(0, 60, 7)}
    assert starts == {NOW - timedelta(hours=24)}
    later = decide(settings, facts, NOW + timedelta(minutes=61)).window_start
    assert later == NOW - timedelta(hours=23)
    # The budget itself counts the exact window: a run 23h57m old at noon is out of it five minutes later.
    old = (run("p-0001", 24 * 60 - 3, gpu_hours=1.0),)
    assert decide(settings, TriggerFacts(0, old, None, False), NOW).gpu_hours_used == 1.0
    later_used = decide(
        settings, TriggerFacts(0, old, None, False), NOW + timedelta(minutes=5)
    ).gpu_hours_used
    assert later_used == 0.0


def test_schedule_fires_once_per_cron_time_when_new_pairs_wait() -> None:
    settings = trigger(schedule="0 3 * * *", minNewPairs=1000)
    assert previous_cron_fire("0 3 * * *", NOW) == NOW.replace(hour=3)
    assert (
        decide(settings, TriggerFacts(5, (run("p-0001", 60 * 10),), None, False), NOW).fire
        == TriggerReason.SCHEDULE
    )
    assert decide(settings, TriggerFacts(5, (run("p-0001", 60 * 8),), None, False), NOW).fire is None
    assert decide(settings, TriggerFacts(0, (), None, False), NOW).fire is None
    sunday = NOW.replace(hour=10, minute=7)  # 2026-11-22 is a Sunday: weekdays-only looks back to Friday
    assert previous_cron_fire("*/15 9-17 * * 1-5", sunday) == datetime(2026, 11, 20, 17, 45, tzinfo=UTC)
    friday = datetime(2026, 11, 20, 10, 7, tzinfo=UTC)
    assert previous_cron_fire("*/15 9-17 * * 1-5", friday) == friday.replace(minute=0)


def test_paused_policy_starts_nothing() -> None:
    assert decide(trigger(), TriggerFacts(1000, (), "x", paused=True), NOW).fire is None


RETRY = RetrySettings(max_attempts=3, backoff="30s")
DATASET = DatasetStatus(uri="file:///d", content_hash=DIGEST, watermark=NOW, train_rows=10, eval_rows=2)


def test_run_snapshots_then_submits_attempt_one() -> None:
    assert next_step(TrainingRunStatus(), None, RETRY, NOW).step == Step.SNAPSHOT
    step = next_step(TrainingRunStatus(dataset=DATASET), None, RETRY, NOW)
    assert (step.step, step.attempt) == (Step.SUBMIT, 1)


def test_running_job_is_followed_and_success_reads_the_output() -> None:
    status = TrainingRunStatus(dataset=DATASET, attempts=1)
    assert next_step(status, JobState(JobPhase.RUNNING), RETRY, NOW).step == Step.FOLLOW
    assert next_step(status, JobState(JobPhase.SUCCEEDED), RETRY, NOW).step == Step.READ_OUTPUT


def test_failed_attempt_waits_the_doubling_backoff_then_retries_until_attempts_run_out() -> None:
    status = TrainingRunStatus(dataset=DATASET, attempts=1)
    waiting = next_step(status, JobState(JobPhase.FAILED, "node lost"), RETRY, NOW)
    assert (waiting.step, waiting.attempt, waiting.wait) == (Step.WAIT_RETRY, 2, timedelta(seconds=30))
    status.next_retry_time = NOW + timedelta(seconds=30)
    due = next_step(status, JobState(JobPhase.FAILED), RETRY, NOW + timedelta(seconds=31))
    assert (due.step, due.attempt) == (Step.SUBMIT, 2)
    assert backoff(RETRY, 3) == timedelta(seconds=60)
    last = TrainingRunStatus(dataset=DATASET, attempts=3)
    failed = next_step(last, JobState(JobPhase.FAILED, "OOM"), RETRY, NOW)
    assert failed.step == Step.DONE
    assert failed.finished
    assert failed.conditions[0].reason == "JobFailed"
    assert "OOM" in failed.conditions[0].message


def ray_failure(frames: int) -> str:
    """A failed job's message as Ray writes it: a header, then the log's last 20,000 characters."""
    trace = "".join(
        f'  File "/app/trainer/step_{i}.py", line {i}, in step_{i}\n    loss = model(batch)\n'
        for i in range(frames)
    )
    log = (
        f"loading adapter\nTraceback (most recent call last):\n{trace}"
        "(RayTrainWorker pid=812) torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB\n"
        "(RayTrainWorker pid=812) shutting down\n"
    )
    header = (
        "Job entrypoint command failed with exit code 1, last available logs (truncated to 20,000 chars):"
    )
    return f"{header}\n{log[-20_000:]}"


def test_a_failed_runs_message_is_the_exception_line_and_where_its_log_is() -> None:
    # Given a last attempt that failed with Ray's 20,000-character log tail in its message
    last = TrainingRunStatus(dataset=DATASET, attempts=3)
    logs = logs_command("team-a", "coder-0001")
    job = JobState(JobPhase.FAILED, ray_failure(400), logs=logs)
    assert len(job.message) > 20_000
    # Then both conditions say the exception and the exit code in one short line, and where the log is
    ready, succeeded = next_step(last, job, RETRY, NOW).conditions
    exception = "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB (exit code 1)"
    assert ready.message == f"attempt 3 of 3 failed: {exception}. Full log: {logs}"
    assert succeeded.message == exception
    assert "Traceback" not in ready.message
    # and a retry says the same line
    retrying = next_step(TrainingRunStatus(dataset=DATASET, attempts=1), job, RETRY, NOW)
    assert exception in retrying.conditions[0].message
    assert len(retrying.conditions[0].message) < 400


def test_the_failure_line_rule() -> None:
    # the last Python exception line of the log, else its last line, with Ray's exit code; 300 at most
    assert failure_line("") == ""
    assert failure_line("node lost") == "node lost"
    assert failure_line("a\nValueError: bad rank\n  at shutdown\n") == "ValueError: bad rank"
    assert failure_line("starting\nKilled\n") == "Killed"
    no_logs = "Job entrypoint command failed with exit code 137. No logs available."
    assert failure_line(no_logs) == no_logs
    long = failure_line("RuntimeError: " + "x" * 1000)
    assert len(long) == FAILURE_LINE_LIMIT == 300
    assert long.endswith("…")


def test_a_recorded_submission_that_ray_never_saw_is_submitted_again_with_the_same_attempt() -> None:
    status = TrainingRunStatus(dataset=DATASET, attempts=2)
    step = next_step(status, JobState(JobPhase.MISSING), RETRY, NOW)
    assert (step.step, step.attempt) == (Step.SUBMIT, 2)


def test_finished_run_that_passed_the_gate_creates_its_shadow_model_once() -> None:
    gate = merge([], [Want.true("GatePassed", "GateMet")], generation=1, now=NOW)
    status = TrainingRunStatus(
        dataset=DATASET,
        attempts=1,
        completion_time=NOW,
        adapter=AdapterStatus(uri="file:///a", digest=DIGEST),
        conditions=gate,
    )
    assert next_step(status, None, RETRY, NOW).step == Step.CREATE_SHADOW
    status.shadow_model = "p-0001"
    assert next_step(status, None, RETRY, NOW).step == Step.DONE


def test_offline_gate_names_what_it_missed() -> None:
    gate = OfflineGate(min_preference_accuracy=0.6, min_reward_margin=0.1)
    assert gate_verdict(gate, TrainingMetrics(preference_accuracy=0.8, reward_margin=0.3))[0]
    passed, message = gate_verdict(gate, TrainingMetrics(preference_accuracy=0.5, reward_margin=0.05))
    assert not passed
    assert "preference accuracy 0.500 < 0.6" in message
    assert "reward margin 0.050 < 0.1" in message


def test_conditions_keep_their_transition_time_while_the_status_holds() -> None:
    first = merge([], [Want.false("Ready", "Training", "a")], generation=1, now=NOW)
    later = NOW + timedelta(minutes=5)
    same = merge(first, [Want.false("Ready", "Training", "b")], generation=2, now=later)
    assert same[0].last_transition_time == NOW
    assert same[0].message == "b"
    assert same[0].observed_generation == 2
    flipped = merge(same, [Want.true("Ready", "Succeeded")], generation=2, now=later)
    assert flipped[0].last_transition_time == later
    assert flipped[0].status == ConditionStatus.TRUE


def test_a_type_wanted_twice_is_one_state_compared_with_the_current_one() -> None:
    # A run waiting for its policy: the step says "Ready Unknown", what stopped it "Ready False".
    waiting = [Want.unknown("Ready", "Snapshotting"), Want.false("Ready", "PolicyNotFound", "m")]
    first = merge([], waiting, generation=1, now=NOW)
    later = NOW + timedelta(seconds=5)
    again = merge(first, waiting, generation=1, now=later)
    assert [(c.status, c.reason) for c in again] == [(ConditionStatus.FALSE, "PolicyNotFound")]
    assert again[0].last_transition_time == NOW  # not a False -> Unknown -> False round trip
    assert again == first


def test_status_patch_sends_only_changes_and_clears_removed_keys() -> None:
    old = {"attempts": 1, "submissionId": "x", "metrics": {"steps": 3}}
    new = {"attempts": 2, "submissionId": "x"}
    assert status_patch(old, new) == {"attempts": 2, "metrics": None}
    assert status_patch(new, new) == {}


def test_a_lease_expires_after_its_duration_without_renewal() -> None:
    spec = {"renewTime": "2026-11-22T11:59:50.000000Z", "leaseDurationSeconds": 15}
    assert not expired(spec, NOW)
    assert expired(spec, NOW + timedelta(seconds=6))
    assert expired({}, NOW)


def test_rayjob_status_as_an_attempt_phase() -> None:
    assert rayjob_state({}) == JobState(JobPhase.PENDING, "")
    assert rayjob_state({"status": {"jobStatus": "RUNNING", "message": "step 3"}}) == JobState(
        JobPhase.RUNNING, "step 3"
    )
    assert rayjob_state({"status": {"jobStatus": "SUCCEEDED"}}).phase == JobPhase.SUCCEEDED
    # a deployment KubeRay gave up on fails the attempt, whatever Ray said last
    failed = rayjob_state(
        {"status": {"jobDeploymentStatus": "Failed", "jobStatus": "RUNNING", "reason": "NoHead"}}
    )
    assert failed == JobState(JobPhase.FAILED, "NoHead")
    assert rayjob_state({"status": {"jobDeploymentStatus": "Failed"}}).message == "RayJob deployment failed"


def test_a_trained_run_says_whether_its_adapter_passed_the_gate() -> None:
    status = TrainingRunStatus(shadow_model="coder-0001")
    assert trained_condition(status) is None  # not trained yet
    status.completion_time = NOW
    status.adapter = AdapterStatus(uri="s3://a/b", digest=DIGEST)
    gate = Want.false(GATE, "GateNotMet", "too weak")
    status.conditions = merge([], [gate], generation=1, now=NOW)
    assert trained_condition(status) == Want.true(
        "Ready", "GateNotMet", "trained, but the adapter did not pass the offline gate"
    )
    status.conditions = merge(status.conditions, [Want.true(GATE, "GateMet", "ok")], generation=1, now=NOW)
    assert trained_condition(status) == Want.true("Ready", "Succeeded", "trained; ShadowModel coder-0001")


def test_gpu_hours_count_every_worker_for_the_whole_job() -> None:
    manifest = TrainerManifest.model_construct(
        scaling=Scaling(workers=2, gpus_per_worker=4), timings=Timings.model_construct(total_seconds=1800.0)
    )
    assert gpu_hours(manifest) == 4.0
