"""Mixture sequential probability ratio test: always-valid p-values and confidence sequences.

Why this test: the operator looks at an experiment on every reconcile. A fixed-horizon test looked at
that often rejects a true null far more often than its alpha (bench/stats_sim.py shows by how much).
The normal-mixture SPRT (Robbins; Johari, Koomen, Pekelis & Walsh, "Always valid inference") gives a
p-value and a confidence sequence (CS) that hold at every look at once: P(the CS ever misses the true
difference) <= alpha, however often and whenever one looks.

The statistic. For a contrast D = mean(a) - c·mean(b) of two independent reward streams, V =
s_a²/n_a + c²·s_b²/n_b is the variance of D. In "information time" I = 1/V, Z = D/V is a Brownian
motion with drift theta (the true contrast) under any allocation that does not depend on future
rewards: Cov(Z_s, Z_t) = I_s for s <= t whatever the split between the arms — so the weight steps of a
rollout do not break the test — and the baseline's own mean cancels. Mixing the likelihood ratios of
theta over theta ~ N(0, tau²) gives

    Lambda = sqrt(V / (V + tau²)) · exp(tau² D² / (2 V (V + tau²)))

a nonnegative martingale when theta = 0, so Ville's inequality bounds P(ever Lambda >= 1/alpha) by
alpha. The p-value is min(1, 1/Lambda); the CS is every theta that D - theta would not reject. The
variances are plug-in sample variances, so the guarantee is asymptotic; no decision is taken before
``min_samples_per_variant`` rewards per variant, where the plug-in is already close.

Success rates use the same machinery on 0/1 outcomes (the normal approximation to the Bernoulli
difference), with the rate smoothed by half a success so that 0 of n does not claim zero variance.

The mixture scale tau is ``MIXTURE_SCALE`` x the minimum detectable effect: the time to detect an
effect theta is shortest for tau near theta..2·theta, and the effects that matter are the MDE and a
clear regression of twice it. bench/stats_sim.py measures the consequence: samples to roll back a
2·MDE regression, and the A/A error rates, which hold for every tau.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from controllers.decisions.experiments.observations import VariantObservations

Floats = npt.NDArray[np.float64]

MIXTURE_SCALE = 2.0
VARIANCE_FLOOR = 1e-12  # two constant reward streams have zero sample variance; keep the algebra finite


def mixture_variance(min_detectable_effect: float) -> float:
    """tau² of the normal mixture, from the smallest effect worth detecting."""
    if min_detectable_effect <= 0:
        raise ValueError("min_detectable_effect must be positive")
    return (MIXTURE_SCALE * min_detectable_effect) ** 2


def log_likelihood_ratio(contrast: npt.ArrayLike, variance: npt.ArrayLike, tau2: float) -> Floats:
    """log Lambda of the normal mixture, elementwise."""
    d = np.asarray(contrast, dtype=np.float64)
    v = np.maximum(np.asarray(variance, dtype=np.float64), VARIANCE_FLOOR)
    result: Floats = 0.5 * np.log(v / (v + tau2)) + tau2 * d * d / (2.0 * v * (v + tau2))
    return result


def p_value(contrast: npt.ArrayLike, variance: npt.ArrayLike, tau2: float) -> Floats:
    """The sequential p-value at this look, min(1, 1/Lambda); its running minimum is always valid."""
    result: Floats = np.minimum(1.0, np.exp(-log_likelihood_ratio(contrast, variance, tau2)))
    return result


def half_width(variance: npt.ArrayLike, tau2: float, alpha: float) -> Floats:
    """Half the width of the level-(1 - alpha) confidence sequence around the estimate."""
    v = np.maximum(np.asarray(variance, dtype=np.float64), VARIANCE_FLOOR)
    result: Floats = np.sqrt(
        2.0 * v * (v + tau2) / tau2 * (np.log(1.0 / alpha) + 0.5 * np.log((v + tau2) / v))
    )
    return result


def mean_contrast(
    n_a: npt.ArrayLike,
    sum_a: npt.ArrayLike,
    squares_a: npt.ArrayLike,
    n_b: npt.ArrayLike,
    sum_b: npt.ArrayLike,
    squares_b: npt.ArrayLike,
) -> tuple[Floats, Floats]:
    """(mean_a - mean_b, its plug-in variance) from sufficient statistics, elementwise.

    Entries with fewer than two samples on a side come out finite but meaningless; callers gate on
    sample counts (the planner needs ``min_samples_per_variant`` >= 10 anyway).
    """
    estimate_a, variance_a = mean_and_variance(n_a, sum_a, squares_a)
    estimate_b, variance_b = mean_and_variance(n_b, sum_b, squares_b)
    return estimate_a - estimate_b, variance_a + variance_b


def mean_and_variance(
    n: npt.ArrayLike, total: npt.ArrayLike, squares: npt.ArrayLike
) -> tuple[Floats, Floats]:
    """The sample mean and the variance of that mean (unbiased sample variance / n)."""
    count = np.asarray(n, dtype=np.float64)
    total_ = np.asarray(total, dtype=np.float64)
    at_least_one, at_least_two = np.maximum(count, 1.0), np.maximum(count, 2.0)
    mean = total_ / at_least_one
    spread = np.maximum(0.0, np.asarray(squares, dtype=np.float64) - total_ * mean)
    return mean, spread / (at_least_two - 1.0) / at_least_two


@dataclass(frozen=True)
class Comparison:
    """One look at a contrast: its estimate, the confidence sequence at this look and the p-value."""

    estimate: float
    lower: float
    upper: float
    p_value: float
    variance: float
    alpha: float

    @property
    def significant(self) -> bool:
        return self.p_value < self.alpha


def comparison(estimate: float, variance: float, *, alpha: float, tau2: float) -> Comparison:
    width = float(half_width(variance, tau2, alpha))
    return Comparison(
        estimate=estimate,
        lower=estimate - width,
        upper=estimate + width,
        p_value=float(p_value(estimate, variance, tau2)),
        variance=variance,
        alpha=alpha,
    )


def compare_means(
    challenger: VariantObservations, champion: VariantObservations, *, alpha: float, tau2: float
) -> Comparison | None:
    """Difference in mean reward, challenger minus champion; None until each side has two rewards."""
    if challenger.rewards < 2 or champion.rewards < 2:
        return None
    estimate, variance = mean_contrast(
        challenger.rewards,
        challenger.reward_sum,
        challenger.reward_sum_squares,
        champion.rewards,
        champion.reward_sum,
        champion.reward_sum_squares,
    )
    return comparison(float(estimate), float(variance), alpha=alpha, tau2=tau2)


def compare_proportions(
    hits_a: int, n_a: int, hits_b: int, n_b: int, *, alpha: float, tau2: float, scale: float = 1.0
) -> Comparison | None:
    """rate_a - scale·rate_b for Bernoulli outcomes (normal approximation); None while a side is empty.

    ``scale`` tests a relative margin: rate_a - 1.1·rate_b > 0 means "more than 10 % above b".
    """
    if n_a < 1 or n_b < 1:
        return None
    rate_a, rate_b = hits_a / n_a, hits_b / n_b
    variance = _bernoulli_variance(hits_a, n_a) / n_a + scale * scale * _bernoulli_variance(hits_b, n_b) / n_b
    return comparison(rate_a - scale * rate_b, variance, alpha=alpha, tau2=tau2)


def _bernoulli_variance(hits: int, n: int) -> float:
    smoothed = (hits + 0.5) / (n + 1.0)
    return smoothed * (1.0 - smoothed)


def compare_success_rates(
    challenger: VariantObservations, champion: VariantObservations, *, alpha: float, tau2: float
) -> Comparison | None:
    """Difference in success rate (share of rewards at or above the success threshold)."""
    return compare_proportions(
        challenger.successes, challenger.rewards, champion.successes, champion.rewards, alpha=alpha, tau2=tau2
    )


def always_valid(previous: float | None, current: float) -> float:
    """The running minimum of the sequential p-values: valid at every look, and it never rises."""
    return current if previous is None else min(previous, current)
