"""One challenger against the champion, as the planner decides from it and every view shows it.

``contrast`` runs the sequential test (``sequential``) over an experiment's whole reward stream and
adds what people read beside the interval: the rewards assigned to each arm and each arm's mean
reward weighted by 1 / the probability of its assignment (so that, like the test, the means are not
pulled by weight steps under a drift). ``Contrast.narrowed`` intersects it with the sequence an
earlier look recorded in the status.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from controllers.decisions.experiments.observations import RewardStream
from controllers.decisions.experiments.sequential import SequenceState, extend, interval


@dataclass(frozen=True)
class Contrast:
    """One challenger against the champion at one look: what the planner decides from and shows."""

    challenger_rewards: int
    champion_rewards: int
    challenger_mean: float | None  # each request weighted by 1 / its assignment probability
    champion_mean: float | None
    lower: float
    upper: float
    p_value: float

    @property
    def estimate(self) -> float | None:
        if self.challenger_mean is None or self.champion_mean is None:
            return None
        return self.challenger_mean - self.champion_mean

    def narrowed(self, lower: float | None, upper: float | None, p_value: float | None) -> Contrast:
        """Intersected with an earlier look's sequence (valid: it holds at every time at once)."""
        low = self.lower if lower is None else max(self.lower, lower)
        high = self.upper if upper is None else min(self.upper, upper)
        return replace(
            self,
            lower=low,
            upper=max(high, low),
            p_value=self.p_value if p_value is None else min(self.p_value, p_value),
        )


def arm_mean(stream: RewardStream, name: str) -> tuple[int, float | None]:
    """(rewards assigned to ``name``, their mean weighted by 1 / assignment probability)."""
    assigned, share = stream.of(name)
    weight = np.where(assigned & (share > 0), 1.0 / np.where(share > 0, share, 1.0), 0.0)
    total = float(weight.sum())
    return int(assigned.sum()), (float((weight * stream.reward).sum() / total) if total > 0 else None)


def contrast(
    stream: RewardStream, challenger: str, champion: str, *, alpha: float, min_detectable_effect: float
) -> Contrast:
    """The sequence of challenger minus champion over the whole stream, at its end."""
    in_c, p_c = stream.of(challenger)
    in_0, p_0 = stream.of(champion)
    state = extend(SequenceState.empty(), stream.reward, in_c, in_0, p_c, p_0, min_detectable_effect)
    bounds = interval(state, alpha)
    (n_c, mean_c), (n_0, mean_0) = arm_mean(stream, challenger), arm_mean(stream, champion)
    return Contrast(
        challenger_rewards=n_c,
        champion_rewards=n_0,
        challenger_mean=mean_c,
        champion_mean=mean_0,
        lower=float(bounds.lower),
        upper=float(bounds.upper),
        p_value=float(bounds.p_value()),
    )
