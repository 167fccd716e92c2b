"""The mixture SPRT: its closed form, its confidence sequence, and that it stays valid under peeking."""

from __future__ import annotations

import math

import numpy as np
import pytest

from controllers.decisions.experiments.msprt import (
    always_valid,
    compare_means,
    compare_proportions,
    compare_success_rates,
    half_width,
    log_likelihood_ratio,
    mean_contrast,
    mixture_variance,
    p_value,
)
from controllers.decisions.experiments.observations import VariantObservations


def rewards(name: str, values: list[float]) -> VariantObservations:
    return VariantObservations(
        name=name,
        assigned=len(values),
        rewards=len(values),
        reward_sum=sum(values),
        reward_sum_squares=sum(v * v for v in values),
        successes=sum(1 for v in values if v >= 0.5),
    )


def test_the_closed_form_matches_the_mixture_integral_done_numerically() -> None:
    # Lambda = ∫ N(theta; 0, tau²) · exp(theta·Z - theta²·I/2) dtheta with Z = D/V and I = 1/V.
    for contrast, variance, tau2 in [(0.03, 0.0004, 0.01), (-0.12, 0.002, 0.0025), (0.0, 0.01, 0.04)]:
        theta = np.linspace(-12 * math.sqrt(tau2), 12 * math.sqrt(tau2), 400_001)
        prior = np.exp(-(theta**2) / (2 * tau2)) / math.sqrt(2 * math.pi * tau2)
        likelihood = np.exp(theta * contrast / variance - theta**2 / (2 * variance))
        integrand = prior * likelihood
        numeric = float(np.sum((integrand[1:] + integrand[:-1]) / 2 * np.diff(theta)))
        closed = math.exp(float(log_likelihood_ratio(contrast, variance, tau2)))
        assert closed == pytest.approx(numeric, rel=1e-6)


def test_p_value_is_a_probability_and_symmetric_in_the_sign_of_the_difference() -> None:
    contrasts = np.linspace(-0.5, 0.5, 101)
    for variance in (1e-6, 1e-3, 0.1):
        p = p_value(contrasts, variance, 0.01)
        assert np.all((p >= 0) & (p <= 1))
        assert np.allclose(p, p[::-1])
    assert float(p_value(0.0, 0.001, 0.01)) == 1.0


def test_confidence_sequence_shrinks_as_samples_grow() -> None:
    variances = 0.25 * 2 / np.array([10, 100, 1_000, 10_000, 100_000])
    widths = half_width(variances, mixture_variance(0.05), 0.05)
    assert np.all(np.diff(widths) < 0)
    assert widths[-1] < 0.02


def test_zero_is_outside_the_confidence_sequence_exactly_when_p_is_below_alpha() -> None:
    tau2, alpha = mixture_variance(0.05), 0.05
    rng = np.random.default_rng(3)
    contrasts, variances = rng.normal(0, 0.1, 2_000), rng.uniform(1e-5, 1e-2, 2_000)
    outside = np.abs(contrasts) > half_width(variances, tau2, alpha)
    assert np.array_equal(outside, p_value(contrasts, variances, tau2) < alpha)


def test_compare_means_uses_the_welch_variance_of_the_difference() -> None:
    challenger = rewards("b", [0.2, 0.4, 0.9, 0.5, 0.1])
    champion = rewards("a", [0.6, 0.7, 0.8, 0.65])
    test = compare_means(challenger, champion, alpha=0.05, tau2=0.01)
    assert test is not None
    expected_variance = (
        np.var([0.2, 0.4, 0.9, 0.5, 0.1], ddof=1) / 5 + np.var([0.6, 0.7, 0.8, 0.65], ddof=1) / 4
    )
    assert test.estimate == pytest.approx(0.42 - 0.6875)
    assert test.variance == pytest.approx(expected_variance)
    assert test.lower < test.estimate < test.upper
    assert test.upper - test.estimate == pytest.approx(test.estimate - test.lower)


def test_no_comparison_before_two_rewards_on_each_side() -> None:
    assert compare_means(rewards("b", [1.0]), rewards("a", [0.0, 1.0]), alpha=0.05, tau2=0.01) is None


def test_constant_rewards_do_not_divide_by_zero() -> None:
    test = compare_means(rewards("b", [1.0] * 50), rewards("a", [1.0] * 50), alpha=0.05, tau2=0.01)
    assert test is not None
    assert test.p_value == 1.0
    assert test.lower == pytest.approx(0.0, abs=1e-4)


def test_success_rates_and_relative_margins_on_proportions() -> None:
    challenger = rewards("b", [1.0] * 80 + [0.0] * 20)
    champion = rewards("a", [1.0] * 50 + [0.0] * 50)
    test = compare_success_rates(challenger, champion, alpha=0.05, tau2=0.01)
    assert test is not None
    assert test.estimate == pytest.approx(0.3)
    assert test.lower > 0
    margin = compare_proportions(30, 1000, 10, 1000, alpha=0.05, tau2=0.01, scale=1.5)
    assert margin is not None
    assert margin.estimate == pytest.approx(0.03 - 1.5 * 0.01)


def test_running_minimum_never_rises() -> None:
    values = [0.8, 0.3, 0.5, 0.04, 0.2]
    running: float | None = None
    seen = []
    for value in values:
        running = always_valid(running, value)
        seen.append(running)
    assert seen == [0.8, 0.3, 0.3, 0.04, 0.04]


def test_peeking_after_every_sample_keeps_false_alarms_under_alpha() -> None:
    rng = np.random.default_rng(11)
    reps, looks, alpha = 2_000, 1_500, 0.05
    a = rng.random((reps, looks)) < 0.5
    b = rng.random((reps, looks)) < 0.5
    n = np.arange(1, looks + 1)
    estimate, variance = mean_contrast(n, a.cumsum(1), a.cumsum(1), n, b.cumsum(1), b.cumsum(1))
    rejected = (p_value(estimate, variance, mixture_variance(0.05)) < alpha)[:, 20:].any(axis=1)
    assert rejected.mean() <= alpha


def test_mixture_variance_needs_a_positive_effect() -> None:
    with pytest.raises(ValueError, match="min_detectable_effect"):
        mixture_variance(0.0)
