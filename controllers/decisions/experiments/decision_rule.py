"""The A/B rule on plain numbers, for one experiment or for a hundred thousand simulated ones at once.

The planner (``rollout.plan``) asks this rule what the reward evidence says; bench/stats_sim.py asks
the same function with numpy arrays, so the error rates it measures are the rates of the code that
runs in the operator (a test checks the two paths agree case by case). Everything that is not the
reward test — guardrails, sample-ratio mismatch, approval, the deadline — is applied by the planner.

The rule, with CS the level-(1 - alpha) confidence sequence of challenger minus champion reward:

* WAIT      while a variant has fewer than ``min_samples_per_variant`` rewards;
* ROLL_BACK as soon as the CS lies entirely below 0: the challenger is worse, whatever the step.
  Under no difference the CS misses 0 from below with probability at most alpha (about alpha/2, by
  symmetry) over the whole experiment, and a regression of 2·MDE pushes it below 0 in well under
  half the samples a fixed-horizon test needs (bench/stats_sim.py). ``regression_tolerance`` is not
  subtracted here: a challenger shown to be worse by any margin has no reason to keep its traffic,
  and waiting for "worse by more than the tolerance" only slows the rollback of a real regression;
* PROMOTE   at the last step when the CS lies entirely above 0 (the challenger is better);
* ADVANCE   to the next step once the challenger has ``(step + 1) x min_samples_per_variant``
  rewards (so every step adds at least that many) and the CS rules out a regression larger than
  ``regression_tolerance`` (lower bound > -tolerance): more users see the challenger only once the
  evidence says it does them no real harm;
* HOLD      otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np
import numpy.typing as npt

from controllers.api.serving_settings import RolloutSettings
from controllers.decisions.experiments.msprt import half_width, mean_contrast, mixture_variance

Ints = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float64]


class Verdict(IntEnum):
    WAIT = 0
    HOLD = 1
    ADVANCE = 2
    PROMOTE = 3
    ROLL_BACK = 4


@dataclass(frozen=True)
class Rule:
    min_samples: int
    alpha: float
    tau2: float
    regression_tolerance: float
    last_step: int

    @classmethod
    def from_settings(cls, settings: RolloutSettings) -> Rule:
        return cls(
            min_samples=settings.min_samples_per_variant,
            alpha=settings.alpha,
            tau2=mixture_variance(settings.min_detectable_effect),
            regression_tolerance=settings.regression_tolerance,
            last_step=len(settings.steps) - 1,
        )


def verdict(
    n_challenger: npt.ArrayLike,
    n_champion: npt.ArrayLike,
    lower: npt.ArrayLike,
    upper: npt.ArrayLike,
    step: npt.ArrayLike,
    rule: Rule,
) -> Ints:
    """The reward evidence's verdict, elementwise (see the module docstring)."""
    n_c, n_0 = np.asarray(n_challenger), np.asarray(n_champion)
    low, high, at = np.asarray(lower), np.asarray(upper), np.asarray(step)
    enough = (n_c >= rule.min_samples) & (n_0 >= rule.min_samples)
    roll_back = enough & (high < 0.0)
    promote = enough & ~roll_back & (at >= rule.last_step) & (low > 0.0)
    advance = (
        enough
        & ~roll_back
        & (at < rule.last_step)
        & (n_c >= (at + 1) * rule.min_samples)
        & (low > -rule.regression_tolerance)
    )
    result: Ints = np.select(
        [~enough, roll_back, promote, advance],
        [Verdict.WAIT, Verdict.ROLL_BACK, Verdict.PROMOTE, Verdict.ADVANCE],
        default=Verdict.HOLD,
    ).astype(np.int64)
    return result


def verdict_from_sums(
    n_challenger: npt.ArrayLike,
    sum_challenger: npt.ArrayLike,
    squares_challenger: npt.ArrayLike,
    n_champion: npt.ArrayLike,
    sum_champion: npt.ArrayLike,
    squares_champion: npt.ArrayLike,
    step: npt.ArrayLike,
    rule: Rule,
) -> tuple[Ints, Floats, Floats]:
    """(verdict, CS lower, CS upper) straight from sufficient statistics, elementwise."""
    estimate, variance = mean_contrast(
        n_challenger, sum_challenger, squares_challenger, n_champion, sum_champion, squares_champion
    )
    width = half_width(variance, rule.tau2, rule.alpha)
    lower, upper = estimate - width, estimate + width
    return verdict(n_challenger, n_champion, lower, upper, step, rule), lower, upper
