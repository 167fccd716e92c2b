"""What the store has seen of one variant, in the shape the statistics need.

The store query (controllers.store.experiments) fills these from assignments, runs and feedback; the
decision functions (controllers.decisions.experiments) read them. Sufficient statistics rather than raw rows, so
a decision over millions of requests costs the same as one over a hundred, and the same numbers can be
computed from the raw event stream to check the query.
"""

from __future__ import annotations

from dataclasses import dataclass


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
