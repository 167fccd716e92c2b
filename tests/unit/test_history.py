"""The history limits' choice: what a policy's garbage collection deletes, and what it must never delete."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from controllers.api import intervention
from controllers.api.policy_settings import HistoryLimits
from controllers.decisions.history import (
    RunState,
    Seen,
    Track,
    choose,
    experiment_of,
    model_of,
    run_of,
    summary,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)
NONE_KEPT = HistoryLimits(
    succeeded_runs_limit=0, failed_runs_limit=0, settled_experiments_limit=0, retired_models_limit=0
)


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def run(number: int, state: RunState = RunState.SUCCEEDED, **more: Any) -> Seen:
    return Seen(f"coder-{number:04d}", f"uid-run-{number}", at(number), state=state, **more)


def model(number: int, finished: bool = True, **more: Any) -> Seen:
    """The model run ``number`` trained, owned by the policy (as the operator makes it)."""
    return Seen(
        f"coder-{number:04d}", f"uid-model-{number}", at(number), state="finished" if finished else "",
        training_run=f"coder-{number:04d}", **{"owners": frozenset({"uid-policy"}), **more},
    )  # fmt: skip


def experiment(number: int, settled: bool = True, champion: int | None = None, **more: Any) -> Seen:
    """The Experiment of challenger ``number`` against the model of run ``champion``."""
    models = {f"coder-{number:04d}"} | ({f"coder-{champion:04d}"} if champion else set())
    return Seen(
        f"coder-{number:04d}", f"uid-exp-{number}", at(number), state="finished" if settled else "",
        models=frozenset(models), challengers=frozenset({f"coder-{number:04d}"}), **more,
    )  # fmt: skip


def names(count: int, first: int = 1) -> list[str]:
    return [f"coder-{n:04d}" for n in range(first, first + count)]


def test_the_newest_runs_of_each_class_stay_and_older_ones_go_oldest_first() -> None:
    runs = [run(n) for n in range(1, 8)] + [run(n, RunState.FAILED) for n in range(8, 12)]
    limits = HistoryLimits(succeeded_runs_limit=3, failed_runs_limit=2)
    chosen = choose(limits, Track(runs=runs))
    assert chosen.runs == names(4) + names(2, first=8)  # 0001-0004 succeeded, 0008-0009 failed
    assert chosen.models == chosen.experiments == []


def test_creation_time_orders_the_history_and_the_name_breaks_ties() -> None:
    same_second = [Seen(name, state=RunState.SUCCEEDED, created=T0) for name in ("coder-0003", "coder-0001")]
    assert choose(HistoryLimits(succeeded_runs_limit=1), Track(runs=same_second)).runs == ["coder-0001"]


def test_limits_of_zero_keep_nothing_of_their_kind_but_what_is_protected() -> None:
    track = Track(
        runs=[run(n) for n in range(1, 4)],
        models=[model(n) for n in range(1, 4)],
        experiments=[experiment(n) for n in range(1, 4)],
    )
    chosen = choose(NONE_KEPT, track)
    assert (chosen.runs, chosen.models, chosen.experiments) == (names(3), names(3), names(3))


def test_unfinished_work_is_never_deleted() -> None:
    track = Track(
        runs=[run(1, RunState.RUNNING)],
        models=[model(2, finished=False)],  # a Challenger, a Champion, or retired but still routed
        experiments=[experiment(3, settled=False)],
    )
    chosen = choose(NONE_KEPT, track)
    assert not chosen
    assert chosen.runs == chosen.models == chosen.experiments == []


def test_a_champion_older_than_the_limits_stays_with_the_run_that_trained_it() -> None:
    track = Track(
        runs=[run(n) for n in range(1, 6)],
        models=[model(n, finished=n != 1) for n in range(1, 6)],  # 0001 reigns: not finished
        champion="coder-0001",
        lineage=["coder-0001"],
    )
    chosen = choose(HistoryLimits(succeeded_runs_limit=2, retired_models_limit=2), track)
    assert chosen.runs == names(2, first=2)  # 0002, 0003; 0004 and 0005 are the newest two
    assert chosen.models == names(2, first=2)
    assert chosen.kept == {"TrainingRun/coder-0001": "trained ShadowModel coder-0001 (the champion)"}


def test_the_champion_before_the_current_one_stays_as_a_rollback_target() -> None:
    track = Track(
        runs=[run(n) for n in range(1, 5)],
        models=[model(n, finished=n != 4) for n in range(1, 5)],
        champion="coder-0004",
        lineage=["coder-0004", "coder-0002", "coder-0001"],
    )
    chosen = choose(NONE_KEPT, track)
    assert chosen.models == ["coder-0001", "coder-0003"]
    assert chosen.runs == ["coder-0001", "coder-0003"]
    assert chosen.kept["ShadowModel/coder-0002"] == "a champion in status.lineage, kept as a rollback target"


def test_models_an_unsettled_experiment_names_stay_even_when_another_policy_runs_it() -> None:
    track = Track(
        runs=[run(n) for n in range(1, 4)],
        models=[model(n) for n in range(1, 4)],
        experiments=[
            experiment(9, settled=False, champion=1, ours=False),  # made by hand, against coder-0001
            experiment(2, settled=True, champion=1),  # settled: protects nothing
        ],
    )
    chosen = choose(NONE_KEPT, track)
    assert chosen.models == ["coder-0002", "coder-0003"]
    assert chosen.runs == ["coder-0002", "coder-0003"]  # coder-0001 trained a model that stays
    assert chosen.experiments == ["coder-0002"]  # never one of another policy
    assert "ShadowModel/coder-0001" in chosen.kept


def test_the_experiment_that_promoted_the_champion_stays() -> None:
    track = Track(
        experiments=[experiment(1, promoted=True), experiment(2), experiment(3, champion=1)],
        champion="coder-0001",
    )
    chosen = choose(NONE_KEPT, track)
    assert chosen.experiments == ["coder-0002", "coder-0003"]
    assert chosen.kept == {"Experiment/coder-0001": "promoted the champion"}


def test_a_run_that_owns_a_model_that_stays_is_kept_and_goes_with_its_model() -> None:
    # A model made while its policy was away is owned by its run: deleting the run alone would make
    # the garbage collector delete the model with it.
    owned_by_run = [model(n, owners=frozenset({f"uid-run-{n}"})) for n in (1, 2)]
    track = Track(runs=[run(1), run(2)], models=owned_by_run)
    chosen = choose(HistoryLimits(succeeded_runs_limit=0, retired_models_limit=1), track)
    assert chosen.models == ["coder-0001"]
    assert chosen.runs == ["coder-0001"]  # its model goes in the same pass (models first)
    assert chosen.kept == {"TrainingRun/coder-0002": "owns ShadowModel coder-0002, which stays"}


def test_an_object_a_person_is_acting_on_stays() -> None:
    track = Track(runs=[run(1, RunState.FAILED, waiting=True), run(2, RunState.FAILED)])
    chosen = choose(NONE_KEPT, track)
    assert chosen.runs == ["coder-0002"]
    assert chosen.kept == {"TrainingRun/coder-0001": "a person's request waits on it"}


def test_the_event_says_how_many_of_each_kind_went() -> None:
    counts = {"TrainingRun": 3, "ShadowModel": 0, "Experiment": 1}
    assert summary(counts) == "deleted 3 TrainingRuns, 1 Experiment beyond the history limits (spec.history)"


# Reading the API server's objects.


def raw(name: str, status: dict[str, Any], **meta: Any) -> dict[str, Any]:
    metadata = {
        "name": name,
        "uid": f"uid-{name}",
        "generation": 1,
        "creationTimestamp": "2026-01-01T00:00:00Z",
    }
    return {"metadata": {**metadata, **meta}, "spec": {}, "status": {"observedGeneration": 1, **status}}


def ready(reason: str, message: str = "") -> dict[str, Any]:
    return {"type": "Ready", "status": "True", "reason": reason, "message": message}


def test_runs_are_running_until_complete_then_succeeded_or_failed() -> None:
    succeeded = {"type": "Succeeded", "status": "True", "reason": "Trained"}
    done = "2026-01-01T01:00:00Z"
    assert run_of(raw("a", {})).state == RunState.RUNNING
    assert run_of(raw("b", {"completionTime": done, "conditions": [succeeded]})).state == RunState.SUCCEEDED
    assert run_of(raw("c", {"completionTime": done, "conditions": [ready("NoTrainingData")]})).state == (
        RunState.FAILED
    )


def test_a_retired_model_is_finished_only_once_its_deployment_is_down() -> None:
    down = raw("m", {"role": "Retired", "conditions": [ready("Retired")]})
    routed = raw(
        "m", {"role": "Retired", "conditions": [ready("Serving", "its deployment stays up while route")]}
    )
    champion = raw("m", {"role": "Champion", "conditions": [ready("Champion")]})
    assert model_of(down).finished
    assert not model_of(routed).finished
    assert not model_of(champion).finished


def test_an_experiment_is_settled_once_its_decision_is_applied() -> None:
    applied = {"type": "DecisionApplied", "status": "True", "reason": "Applied"}
    settled = raw("e", {"decision": "RollBack", "conditions": [applied]})
    deciding = raw("e", {"decision": "Continue"})
    assert experiment_of(settled, ours=True).finished
    assert not experiment_of(deciding, ours=True).finished


def test_a_pending_request_or_a_deletion_under_way_means_someone_is_at_it() -> None:
    request = {"id": "r1", "action": "Retry", "by": "ana", "at": "2026-01-01T00:00:00Z"}
    asked = {intervention.ANNOTATION: json.dumps(request)}
    assert run_of(raw("a", {}, annotations=asked)).waiting
    assert not run_of(
        raw("b", {"interventions": [{**request, "outcome": "retried"}]}, annotations=asked)
    ).waiting
    assert run_of(raw("c", {}, deletionTimestamp="2026-01-01T00:00:00Z")).waiting


def test_the_run_a_train_now_value_still_on_the_policy_started_stays() -> None:
    # A person ran `kubectl annotate learningpolicy coder kaizen.dev/train-now=drill-1` long ago and the
    # value is still there: the run it started is what marks the value as used. Deleted, the value
    # would look new and start one more run.
    runs = [run(1, trigger_token="drill-1"), run(2), run(3)]
    chosen = choose(NONE_KEPT, Track(runs=runs, train_now="drill-1"))
    assert chosen.runs == ["coder-0002", "coder-0003"]
    assert "train-now" in chosen.kept["TrainingRun/coder-0001"]
    # once the annotation is gone (or holds another value), the run is history like any other
    assert choose(NONE_KEPT, Track(runs=runs, train_now="drill-2")).runs == names(3)
    assert choose(NONE_KEPT, Track(runs=runs)).runs == names(3)


def test_a_run_remembers_the_train_now_value_that_started_it() -> None:
    body = raw("coder-0001", {})
    body["metadata"]["annotations"] = {"kaizen.dev/trigger-token": "drill-1"}
    assert run_of(body).trigger_token == "drill-1"
    assert run_of(raw("coder-0002", {})).trigger_token == ""
