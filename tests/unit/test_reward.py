"""The composite reward: weights over the signals a run reported, recomputable when weights change."""

from __future__ import annotations

import pytest

from controllers.api.policy_settings import RewardWeights as PolicyWeights
from controllers.data.reward import RENAMED, WEIGHT_NAMES, RewardWeights, Signals, compute_reward, error_rate
from controllers.gateway.schemas import RewardWeightsIn
from controllers.gateway.schemas import Signals as RunSignals


def test_a_perfect_run_scores_one_and_a_total_failure_zero() -> None:
    perfect = Signals(compile_ok=True, tests_passed=4, tests_total=4, lint_errors=0, human_accepted=True)
    failure = Signals(
        compile_ok=False, tests_passed=0, tests_total=4, lint_errors=9, type_errors=0, human_accepted=False
    )
    assert compute_reward(perfect, RewardWeights()) == 1.0
    assert compute_reward(failure, RewardWeights()) == pytest.approx(0.25 * 0.1 / 1.0)


def test_default_weights_are_a_quarter_each() -> None:
    signals = Signals(compile_ok=True, tests_passed=1, tests_total=2, lint_errors=1, human_accepted=False)
    # 0.25*1 + 0.25*0.5 + 0.25*(1-0.5) + 0.25*0
    assert compute_reward(signals, RewardWeights()) == pytest.approx(0.5)


def test_missing_signals_drop_out_with_their_weight() -> None:
    only_tests = Signals(tests_passed=3, tests_total=4)
    assert compute_reward(only_tests, RewardWeights()) == pytest.approx(0.75)
    assert compute_reward(Signals(), RewardWeights()) is None


def test_policy_weights_change_the_reward() -> None:
    signals = Signals(compile_ok=True, tests_passed=0, tests_total=4)
    tests_heavy = RewardWeights(compile_ok=0.1, tests_passed=0.9, errors=0.0, human_accepted=0.0)
    assert compute_reward(signals, tests_heavy) == pytest.approx(0.1)
    assert compute_reward(signals, RewardWeights()) == pytest.approx(0.5)
    assert tests_heavy.digest() != RewardWeights().digest()


def test_error_rate_saturates_with_the_error_count() -> None:
    assert error_rate(Signals()) is None
    assert [error_rate(Signals(lint_errors=n)) for n in (0, 1, 3)] == [0.0, 0.5, 0.75]
    assert error_rate(Signals(lint_errors=1, type_errors=1, schema_errors=1)) == 0.75


def test_passed_tests_are_clamped_to_the_total() -> None:
    assert compute_reward(Signals(tests_passed=9, tests_total=3), RewardWeights()) == 1.0


@pytest.mark.parametrize("weights", [(0, 0, 0, 0), (-0.1, 1, 1, 1), (1.5, 0, 0, 0)])
def test_invalid_weights_are_refused(weights: tuple[float, float, float, float]) -> None:
    with pytest.raises(ValueError, match="reward weights"):
        RewardWeights(*weights)


def test_weights_read_from_a_learning_policy_spec() -> None:
    weights = RewardWeights.from_camel(
        {"compileOk": 0.3, "testsPassed": 0.4, "errors": 0.1, "humanAccepted": 0.2}
    )
    assert (weights.compile_ok, weights.tests_passed, weights.errors, weights.human_accepted) == (
        0.3,
        0.4,
        0.1,
        0.2,
    )


def test_every_weight_of_a_learning_policy_is_named_after_its_run_signal() -> None:
    # The policy's spec.reward, the ingest API's run signals and the store's rows use one name each.
    policy = set(PolicyWeights().to_wire())
    assert policy == set(WEIGHT_NAMES) == set(RewardWeightsIn().model_dump(by_alias=True))
    run_fields = set(RunSignals().model_dump(by_alias=True))
    assert {"compileOk", "testsPassed"} <= policy & run_fields
    assert {"lintErrors", "typeErrors", "schemaErrors"} <= run_fields  # what "errors" weighs


@pytest.mark.parametrize(("old", "new"), sorted(RENAMED.items()))
def test_an_old_weight_name_is_refused_with_its_new_name(old: str, new: str) -> None:
    with pytest.raises(ValueError, match=f"{old} was renamed to {new}"):
        RewardWeights.from_camel({old: 0.5})


def test_an_unknown_weight_name_is_refused_not_read_as_a_default() -> None:
    with pytest.raises(ValueError, match="unknown reward weights: coverage"):
        RewardWeights.from_camel({"compileOk": 0.5, "coverage": 0.5})
