"""The sequential test itself: valid under unfriendly rewards, never a zero-width interval,
unbiased under weight steps with drift, and the same whether fed at once or in blocks."""

from __future__ import annotations

import numpy as np
import pytest

from controllers.decisions.experiments.contrast import contrast
from controllers.decisions.experiments.observations import RewardStream
from controllers.decisions.experiments.sequential import (
    SequenceState,
    extend,
    interval,
    log_e_better,
    log_e_worse,
)

ALPHA, MDE = 0.05, 0.05


def two_arms(rewards: list[tuple[str, float]], challenger_percent: int) -> RewardStream:
    weights = {"challenger": challenger_percent, "champion": 100 - challenger_percent}
    return RewardStream.from_rows([(arm, weights, reward) for arm, reward in rewards])


def test_constant_rewards_never_give_a_zero_width_interval() -> None:
    stream = two_arms([("challenger" if i % 2 else "champion", 1.0) for i in range(1_000)], 50)
    test = contrast(stream, "challenger", "champion", alpha=ALPHA, min_detectable_effect=MDE)
    assert test.lower < 0.0 < test.upper
    assert test.upper - test.lower > 0.005
    assert test.p_value > 0.5


def test_no_successes_in_200_against_a_one_percent_champion_is_not_proof_of_harm() -> None:
    """The plug-in normal test rolled this back with p = 2.9e-7."""
    rows = [("challenger", 0.0)] * 200 + [("champion", 1.0)] * 38 + [("champion", 0.0)] * 3_762
    rng = np.random.default_rng(1)
    stream = two_arms([rows[i] for i in rng.permutation(len(rows))], 5)
    test = contrast(stream, "challenger", "champion", alpha=ALPHA, min_detectable_effect=MDE)
    assert test.upper > 0.0
    assert test.p_value > ALPHA


def test_a_clear_regression_is_caught() -> None:
    rng = np.random.default_rng(2)
    rows = [
        ("challenger", float(rng.random() < 0.4)) if i % 2 else ("champion", float(rng.random() < 0.5))
        for i in range(2_000)
    ]
    test = contrast(two_arms(rows, 50), "challenger", "champion", alpha=ALPHA, min_detectable_effect=MDE)
    assert test.upper < 0.0
    assert test.p_value < ALPHA
    assert test.estimate == pytest.approx(test.challenger_mean - test.champion_mean)  # type: ignore[operator]


def test_blocks_give_the_same_state_as_one_pass() -> None:
    rng = np.random.default_rng(3)
    n = 900
    reward, arm = rng.random(n), rng.random(n) < 0.25
    shares = np.where(np.arange(n) < 400, 0.05, 0.25)
    whole = extend(SequenceState.empty(), reward, arm, ~arm, shares, 1 - shares, MDE)
    parts = SequenceState.empty()
    for start in range(0, n, 128):
        block = slice(start, start + 128)
        parts = extend(parts, reward[block], arm[block], ~arm[block], shares[block], 1 - shares[block], MDE)
    for name in ("count", "lower_gain", "lower_penalty", "upper_bets", "upper_penalty"):
        assert np.allclose(getattr(whole, name), getattr(parts, name)), name


def test_the_p_value_is_below_alpha_exactly_when_zero_is_outside_the_sequence() -> None:
    rng = np.random.default_rng(4)
    batch, n = 400, 600
    arm = rng.random((batch, n)) < 0.5
    effect = rng.choice([-0.15, 0.0, 0.15], size=(batch, 1))
    reward = (rng.random((batch, n)) < np.where(arm, 0.5 + effect, 0.5)).astype(float)
    state = extend(
        SequenceState.empty((batch,)),
        reward,
        arm,
        ~arm,
        np.full((batch, n), 0.5),
        np.full((batch, n), 0.5),
        MDE,
    )
    bounds = interval(state, ALPHA)
    outside = (bounds.lower > 0) | (bounds.upper < 0)
    assert np.array_equal(bounds.p_value() < ALPHA, outside)
    assert outside.any()
    assert (~outside).any()
    assert np.all(bounds.lower <= bounds.upper)
    assert np.all((bounds.lower >= -1) & (bounds.upper <= 1))
    # the e-processes are monotone in the candidate, which the bisection relies on
    grid = np.linspace(-1, 1, 41)
    better = np.stack([log_e_better(state, np.full(batch, x)) for x in grid])
    worse = np.stack([log_e_worse(state, np.full(batch, x)) for x in grid])
    assert np.all(np.diff(better, axis=0) <= 1e-9)
    assert np.all(np.diff(worse, axis=0) >= -1e-9)


@pytest.mark.parametrize(
    ("rate", "challenger_share"),
    [(0.01, 0.05), (0.99, 0.05), (0.05, 0.5), (0.5, 0.05)],
)
def test_an_aa_experiment_rarely_excludes_zero_whatever_the_rate_and_split(
    rate: float, challenger_share: float
) -> None:
    """Over 400 experiments of 6,000 requests, looked at every 100: the running sequence excludes the
    true difference 0 on either side at most alpha of the time (each side; bench/stats_sim.py has
    the full matrix with its Monte-Carlo error)."""
    rng = np.random.default_rng(int(rate * 1000) + int(challenger_share * 100))
    batch, n, block = 400, 6_000, 100
    state = SequenceState.empty((batch,))
    lower, upper = np.full(batch, -1.0), np.full(batch, 1.0)
    for _ in range(n // block):
        arm = rng.random((batch, block)) < challenger_share
        reward = (rng.random((batch, block)) < rate).astype(float)
        shares = np.full((batch, block), challenger_share)
        state = extend(state, reward, arm, ~arm, shares, 1 - shares, MDE)
        bounds = interval(state, ALPHA)
        lower, upper = np.maximum(lower, bounds.lower), np.minimum(upper, bounds.upper)
    assert np.mean(upper < 0) <= 0.05 + 2 * np.sqrt(0.05 * 0.95 / batch)
    assert np.mean(lower > 0) <= 0.05 + 2 * np.sqrt(0.05 * 0.95 / batch)


def test_weights_that_step_up_under_a_shared_drift_leave_the_estimate_unbiased() -> None:
    """Both arms drift from 0.3 to 0.7 while the challenger's share goes 5 → 25 → 50 %. The pooled
    difference is far from 0; the weighted per-request difference is not."""
    rng = np.random.default_rng(6)
    rows = []
    for index in range(30_000):
        share = 5 if index < 10_000 else 25 if index < 20_000 else 50
        arm = "challenger" if rng.random() < share / 100 else "champion"
        mean = 0.3 + 0.4 * index / 30_000
        rows.append((arm, {"challenger": share, "champion": 100 - share}, float(rng.random() < mean)))
    stream = RewardStream.from_rows(rows)
    pooled = [
        stream.reward[stream.arm == stream.names.index(name)].mean() for name in ("challenger", "champion")
    ]
    assert pooled[0] - pooled[1] > 0.05
    test = contrast(stream, "challenger", "champion", alpha=ALPHA, min_detectable_effect=MDE)
    assert abs(test.estimate or 1.0) < 0.02
    assert test.lower < 0.0 < test.upper


def test_a_reward_that_is_not_a_number_is_left_out_and_the_test_still_decides() -> None:
    rng = np.random.default_rng(8)
    rows = [
        ("challenger", float(rng.random() < 0.4)) if i % 2 else ("champion", float(rng.random() < 0.5))
        for i in range(2_000)
    ]
    poisoned = [*rows[:10], ("challenger", float("nan")), ("champion", float("inf")), *rows[10:]]
    clean = contrast(two_arms(rows, 50), "challenger", "champion", alpha=ALPHA, min_detectable_effect=MDE)
    found = contrast(two_arms(poisoned, 50), "challenger", "champion", alpha=ALPHA, min_detectable_effect=MDE)
    assert found.upper < 0.0
    assert np.isfinite([found.lower, found.upper, found.p_value, found.estimate or 0.0]).all()
    assert found.challenger_rewards == clean.challenger_rewards
    assert found.champion_rewards == clean.champion_rewards  # NaN and inf are both left out


def test_a_p_value_from_tiny_e_values_does_not_overflow() -> None:
    state = extend(SequenceState.empty(), np.ones(4_000), np.arange(4_000) % 100 == 0,
                   np.arange(4_000) % 100 != 0, np.full(4_000, 0.01), np.full(4_000, 0.99), 1.0)  # fmt: skip
    with np.errstate(over="raise"):
        assert interval(state, ALPHA).p_value() > 0.5
