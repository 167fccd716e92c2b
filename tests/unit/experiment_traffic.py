"""Traffic for planner tests: observations per variant plus the reward stream and allocation epochs
the sequential tests read, built so that all three tell the same story."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from controllers.decisions.experiments.observations import (
    AllocationEpoch,
    RewardStream,
    Traffic,
    VariantObservations,
)


def reward_stream(
    arms: Mapping[str, tuple[int, float]], weights: Mapping[str, int], seed: int = 7
) -> RewardStream:
    """0/1 rewards, ``count`` per arm with ``round(count * mean)`` of them 1, shuffled together
    (seeded), every request assigned under ``weights``."""
    rows = []
    for name, (count, mean) in arms.items():
        ones = round(count * mean)
        rows += [(name, dict(weights), 1.0)] * ones + [(name, dict(weights), 0.0)] * (count - ones)
    order = np.random.default_rng(seed).permutation(len(rows))
    return RewardStream.from_rows([rows[index] for index in order])


def traffic_of(
    variants: Mapping[str, VariantObservations],
    weights: Mapping[str, int],
    *,
    units: Mapping[str, int] | None = None,
) -> Traffic:
    """``variants`` as the store would report them, every rewarded request assigned under
    ``weights``; new units per variant default to each variant's requests."""
    arms = {
        name: (obs.rewards, obs.reward_sum / obs.rewards if obs.rewards else 0.0)
        for name, obs in variants.items()
    }
    counted = dict(units) if units is not None else {name: obs.assigned for name, obs in variants.items()}
    return Traffic(
        variants=dict(variants),
        rewards=reward_stream(arms, weights),
        epochs=(AllocationEpoch(weights=dict(weights), units=counted),) if any(counted.values()) else (),
    )
