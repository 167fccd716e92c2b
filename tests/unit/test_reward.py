"""The composite reward: weights over the signals a run reported, recomputable when weights change."""

from __future__ import annotations

import pytest

from controllers.data.reward import RewardWeights, Signals, compute_reward, error_rate


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
    tests_heavy = RewardWeights(compile=0.1, tests=0.9, error_rate=0.0, human_acceptance=0.0)
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
        {"compile": 0.3, "tests": 0.4, "errorRate": 0.1, "humanAcceptance": 0.2}
    )
    assert (weights.compile, weights.tests, weights.error_rate, weights.human_acceptance) == (
        0.3,
        0.4,
        0.1,
        0.2,
    )
