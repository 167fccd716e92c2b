"""What the store has seen of one variant, in the shape the statistics need.

The store query (controllers.store.experiments) fills these from assignments, runs and feedback; the
decision functions (controllers.decisions.experiments) read them. Sufficient statistics rather than raw rows, so
a decision over millions of requests costs the same as one over a hundred, and the same numbers can be
computed from the raw event stream to check the query.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

Ints = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float64]
Bools = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class VariantObservations:
    """Counts and sums for one variant of one experiment, pinned (debugging) traffic excluded."""

    name: str
    assigned: int = 0  # units (requests) the router sent to this variant, fallbacks counted where served
    rewards: int = 0  # requests with a reward attributed (run reward, or feedback turned into one)
    reward_sum: float = 0.0
    reward_sum_squares: float = 0.0
    successes: int = 0  # rewards >= the success threshold (for success-rate tests)
    errors: int = 0  # upstream errors and timeouts seen by the router for this variant
    fallbacks: int = 0  # challenger failures served by the champion instead
    latency_p95_ms: float | None = None
    cost_sum: float = 0.0

    @property
    def mean_reward(self) -> float | None:
        return self.reward_sum / self.rewards if self.rewards else None

    @property
    def reward_variance(self) -> float | None:
        """Unbiased sample variance of the rewards."""
        if self.rewards < 2:
            return None
        mean = self.reward_sum / self.rewards
        return max(0.0, (self.reward_sum_squares - self.rewards * mean * mean) / (self.rewards - 1))

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.assigned if self.assigned else None

    @property
    def cost_per_request(self) -> float | None:
        return self.cost_sum / self.assigned if self.assigned else None


@dataclass(frozen=True, eq=False)
class RewardStream:
    """The rewarded requests of one experiment, in the order their rewards arrived, pinned ones left out.

    Each request keeps the variant it was *assigned* (intention to treat: a challenger's request that
    fell back to the champion still counts for the challenger, whose failure caused it) and the weights
    the router assigned it by, because the test weighs every request by the probability its own
    assignment had (see ``sequential``). Arrays, not rows: an experiment can have millions.
    """

    names: tuple[str, ...] = ()  # the columns of ``shares``
    arm: Ints = field(default_factory=lambda: np.zeros(0, dtype=np.int64))  # index into names
    shares: Floats = field(default_factory=lambda: np.zeros((0, 0)))  # assignment probabilities
    reward: Floats = field(default_factory=lambda: np.zeros(0))

    @classmethod
    def from_rows(cls, rows: Iterable[tuple[str, Mapping[str, int], float]]) -> RewardStream:
        """(assigned variant, the router's weights in percent, reward) per request, oldest reward first.

        A reward that is not a finite number is left out (it rates nothing); the rest are clipped to
        [0, 1], the range every reward is defined on."""
        listed = [
            (variant, weights, min(1.0, max(0.0, reward)))
            for variant, weights, reward in rows
            if math.isfinite(reward)
        ]
        names = tuple(sorted({name for variant, weights, _ in listed for name in (variant, *weights)}))
        column = {name: index for index, name in enumerate(names)}
        shares = np.zeros((len(listed), len(names)))
        for row, (_, weights, _) in enumerate(listed):
            total = sum(weights.values())
            for name, weight in weights.items():
                shares[row, column[name]] = weight / total if total > 0 else 0.0
        return cls(
            names=names,
            arm=np.asarray([column[variant] for variant, _, _ in listed], dtype=np.int64),
            shares=shares,
            reward=np.asarray([reward for _, _, reward in listed], dtype=np.float64),
        )

    def __len__(self) -> int:
        return len(self.reward)

    def of(self, name: str) -> tuple[Bools, Floats]:
        """(assigned to ``name``?, the probability of that) per request; never assigned: all False, 0."""
        if name not in self.names:
            return np.zeros(len(self), dtype=bool), np.zeros(len(self))
        index = self.names.index(name)
        return self.arm == index, self.shares[:, index]


@dataclass(frozen=True)
class AllocationEpoch:
    """One set of weights the router assigned by, and the new units it assigned under them.

    A unit (user, session or request) is counted in the epoch of its first request only: its variant
    there is a fresh draw from these weights, independent of everything before, which is what the
    sequential sample-ratio test needs (a returning user's variant is already decided).
    """

    weights: Mapping[str, int]
    units: Mapping[str, int]


@dataclass(frozen=True)
class Traffic:
    """Everything the planner reads from the store for one experiment."""

    variants: Mapping[str, VariantObservations] = field(default_factory=dict)
    rewards: RewardStream = field(default_factory=RewardStream)
    epochs: tuple[AllocationEpoch, ...] = ()
