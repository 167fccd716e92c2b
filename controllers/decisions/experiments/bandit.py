"""Thompson sampling over N variants: traffic in proportion to the chance of being the best.

For prompt variants and model routing the question is not "is B better than A" but "send most traffic
to whatever is best, and keep learning". Thompson sampling does that with no tuning: each variant's
share is the posterior probability that it has the highest mean reward.

Model: Beta-Bernoulli on the mean reward. Rewards live in [0, 1]; a reward r counts as r of a success
and 1 - r of a failure, so the posterior of a variant is Beta(1 + Σr, 1 + n - Σr). This is exact for
0/1 rewards and, for fractional ones, wider than the true uncertainty of the mean (a Bernoulli has the
largest variance of any [0, 1] variable with that mean): learning is a little slower, never biased.
The probabilities are estimated by Monte Carlo from a seeded generator, so the same observations and
seed always give the same weights, and a reconcile that runs twice writes the same status.

Weights are integer percent summing to 100. Every variant keeps ``exploration_floor`` (rounded up to a
whole percent) so that a variant that was unlucky early can still recover. Under a cost budget
(average declared cost per request <= ``max_cost_per_request``) share moves from dearer to cheaper
variants, each move taking the pair that loses the least posterior-mean reward per unit of cost
saved, only as far as the budget needs.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from controllers.decisions.experiments.observations import VariantObservations

DRAWS = 10_000
_EPSILON = 1e-12


@dataclass(frozen=True)
class BanditWeights:
    weights: dict[str, int]  # percent, sums to 100
    probability_best: dict[str, float]
    expected_cost: float | None  # average declared cost per request at these weights
    within_budget: bool

    @property
    def leader(self) -> str:
        return max(self.probability_best, key=lambda name: (self.probability_best[name], name))


def observation_seed(observations: Sequence[VariantObservations], salt: str = "") -> int:
    """A seed that depends only on the observations (and a salt such as the experiment's name)."""
    key = repr([(o.name, o.rewards, round(o.reward_sum, 9)) for o in observations]) + salt
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big")


def posterior(observation: VariantObservations) -> tuple[float, float]:
    """Beta(a, b) of the variant's mean reward."""
    successes = min(max(observation.reward_sum, 0.0), float(observation.rewards))
    return 1.0 + successes, 1.0 + observation.rewards - successes


def probability_best(
    observations: Sequence[VariantObservations], *, seed: int, draws: int = DRAWS
) -> dict[str, float]:
    """P(variant has the highest mean reward), by Monte Carlo over the posteriors."""
    shapes = np.array([posterior(o) for o in observations])
    samples = np.random.default_rng(seed).beta(shapes[:, 0], shapes[:, 1], size=(draws, len(observations)))
    wins = np.bincount(samples.argmax(axis=1), minlength=len(observations))
    return {o.name: float(count) / draws for o, count in zip(observations, wins, strict=True)}


def thompson_weights(
    observations: Sequence[VariantObservations],
    *,
    exploration_floor: float,
    seed: int,
    costs: Mapping[str, float] | None = None,
    max_cost_per_request: float = 0.0,
    draws: int = DRAWS,
) -> BanditWeights:
    """Integer percent per variant: Thompson shares above the floor, then the cost budget."""
    names = [o.name for o in observations]
    if len(set(names)) != len(names) or len(names) < 1:
        raise ValueError(f"variants must be named uniquely, got {names}")
    best = probability_best(observations, seed=seed, draws=draws)
    floor_percent = min(math.ceil(exploration_floor * 100 - 1e-9), 100 // len(names))
    floor = floor_percent / 100.0
    shares = {name: floor + (1.0 - floor * len(names)) * best[name] for name in names}
    price = {name: (costs or {}).get(name, 0.0) for name in names}
    budgeted = max_cost_per_request > 0
    if budgeted:
        means = {o.name: _posterior_mean(o) for o in observations}
        shares = _fit_budget(shares, price, means, floor, max_cost_per_request)
    weights = _round_percent(shares, floor_percent)
    if budgeted:
        weights = _repair_rounding(weights, price, floor_percent, max_cost_per_request)
    cost = sum(weights[name] * price[name] for name in names) / 100.0 if costs is not None else None
    within = not budgeted or cost is None or cost <= max_cost_per_request + _EPSILON
    return BanditWeights(weights=weights, probability_best=best, expected_cost=cost, within_budget=within)


def _posterior_mean(observation: VariantObservations) -> float:
    a, b = posterior(observation)
    return a / (a + b)


def _fit_budget(
    shares: dict[str, float],
    price: dict[str, float],
    means: dict[str, float],
    floor: float,
    budget: float,
) -> dict[str, float]:
    shares = dict(shares)
    for _ in range(len(shares) ** 2):  # each move empties a donor to its floor or meets the budget
        excess = sum(shares[n] * price[n] for n in shares) - budget
        if excess <= _EPSILON:
            break
        moves = [
            ((means[donor] - means[taker]) / (price[donor] - price[taker]), donor, taker)
            for donor in shares
            for taker in shares
            if price[donor] > price[taker] and shares[donor] > floor + _EPSILON
        ]
        if not moves:
            break  # every variant is at its floor or as cheap as the rest: the budget cannot be met
        _, donor, taker = min(moves)
        moved = min(shares[donor] - floor, excess / (price[donor] - price[taker]))
        shares[donor] -= moved
        shares[taker] += moved
    return shares


def _round_percent(shares: dict[str, float], floor_percent: int) -> dict[str, int]:
    """Largest-remainder rounding of the share above the floor, so every variant keeps its floor."""
    spare = 100 - floor_percent * len(shares)
    above = {name: max(0.0, share * 100.0 - floor_percent) for name, share in shares.items()}
    total = sum(above.values())
    exact = {
        name: (value * spare / total if total > 0 else spare / len(shares)) for name, value in above.items()
    }
    whole = {name: math.floor(value) for name, value in exact.items()}
    order = sorted(shares, key=lambda name: (-(exact[name] - whole[name]), name))
    for name in order[: spare - sum(whole.values())]:
        whole[name] += 1
    return {name: floor_percent + whole[name] for name in shares}


def _repair_rounding(
    weights: dict[str, int], price: dict[str, float], floor_percent: int, budget: float
) -> dict[str, int]:
    """Rounding can overshoot the budget by a hair: move single percents from dear to cheap."""
    weights = dict(weights)
    cheapest = min(weights, key=lambda name: (price[name], name))
    while sum(weights[n] * price[n] for n in weights) / 100.0 > budget + _EPSILON:
        donors = [n for n in weights if weights[n] > floor_percent and price[n] > price[cheapest]]
        if not donors:
            break
        donor = max(donors, key=lambda name: (price[name], name))
        weights[donor] -= 1
        weights[cheapest] += 1
    return weights
