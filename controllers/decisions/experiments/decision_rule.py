"""The A/B rule on plain numbers, for one experiment or for a hundred thousand simulated ones at once.

The planner (``rollout.plan``) asks this rule what the reward evidence says; bench/stats_sim.py asks
the same function with numpy arrays, so the error rates it measures are the rates of the code that
runs in the operator. Everything that is not the reward test — guardrails, sample-ratio mismatch,
approval, the deadline — is applied by the planner.

The evidence is the confidence sequence [L, U] of θ, challenger minus champion (``sequential``), kept
as the running intersection over the looks; each bound holds with probability 1 - alpha over the
whole experiment. With MDE the minimum detectable effect and tol the regression tolerance:

* WAIT      while a variant has fewer than ``min_samples_per_variant`` rewards;
* ROLL_BACK as soon as U < 0 (``Superiority``) or U < -tol (``NonInferiority``): the challenger is
  shown worse. Under no difference this happens with probability at most alpha, however long the
  experiment runs and however often it is looked at;
* PROMOTE   at the last step when L > 0 (``Superiority``: shown better) or L > -tol
  (``NonInferiority``: shown not worse by more than the tolerance);
* FUTILE    (``Superiority`` only) when -MDE < L ≤ 0 and U < MDE: the challenger cannot be better
  by the effect worth detecting, nor is it shown worse, so it gives its traffic back now instead of at
  ``maxDuration``. (Without the lower condition a real regression, whose U crosses the MDE before 0,
  would end as Inconclusive instead of RollBack.);
* ADVANCE   to the next step once the challenger has ``(step + 1) x min_samples_per_variant``
  rewards in all and L > -tol: more users see the challenger only once the evidence rules out a
  regression larger than the tolerance. The count is cumulative, so a step that took long to clear
  its bound can make the next one short (bench/stats_sim.py shows how often);
* HOLD      otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np
import numpy.typing as npt

from controllers.api.serving_settings import Criterion, RolloutSettings

Ints = npt.NDArray[np.int64]


class Verdict(IntEnum):
    WAIT = 0
    HOLD = 1
    ADVANCE = 2
    PROMOTE = 3
    ROLL_BACK = 4
    FUTILE = 5


@dataclass(frozen=True)
class Rule:
    min_samples: int
    alpha: float
    min_detectable_effect: float
    regression_tolerance: float
    last_step: int
    non_inferiority: bool

    @classmethod
    def from_settings(cls, settings: RolloutSettings) -> Rule:
        return cls(
            min_samples=settings.min_samples_per_variant,
            alpha=settings.alpha,
            min_detectable_effect=settings.min_detectable_effect,
            regression_tolerance=settings.regression_tolerance,
            last_step=len(settings.steps) - 1,
            non_inferiority=settings.criterion == Criterion.NON_INFERIORITY,
        )

    @property
    def worse_than(self) -> float:
        """U below this rolls back."""
        return -self.regression_tolerance if self.non_inferiority else 0.0

    @property
    def better_than(self) -> float:
        """L above this promotes at the last step."""
        return -self.regression_tolerance if self.non_inferiority else 0.0


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
    roll_back = enough & (high < rule.worse_than)
    promote = enough & ~roll_back & (at >= rule.last_step) & (low > rule.better_than)
    futile = (
        enough & ~roll_back & ~promote & (not rule.non_inferiority)
        & (high < rule.min_detectable_effect) & (low <= 0.0) & (low > -rule.min_detectable_effect)
    )  # fmt: skip
    advance = (
        enough & ~roll_back & ~futile & (at < rule.last_step)
        & (n_c >= (at + 1) * rule.min_samples) & (low > -rule.regression_tolerance)
    )  # fmt: skip
    result: Ints = np.select(
        [~enough, roll_back, promote, futile, advance],
        [Verdict.WAIT, Verdict.ROLL_BACK, Verdict.PROMOTE, Verdict.FUTILE, Verdict.ADVANCE],
        default=Verdict.HOLD,
    ).astype(np.int64)
    return result
