"""Thompson sampling weights: floor, sum, concentration, cost budget, determinism."""

from __future__ import annotations

import pytest

from controllers.decisions.experiments.bandit import observation_seed, probability_best, thompson_weights
from controllers.decisions.experiments.observations import VariantObservations


def arm(name: str, n: int, mean: float) -> VariantObservations:
    return VariantObservations(
        name=name, assigned=n, rewards=n, reward_sum=n * mean, reward_sum_squares=n * mean
    )


ARMS = [arm("a", 400, 0.50), arm("b", 400, 0.62), arm("c", 400, 0.48), arm("d", 400, 0.45)]


def test_weights_are_whole_percents_that_sum_to_100() -> None:
    for seed in range(20):
        weights = thompson_weights(ARMS, exploration_floor=0.05, seed=seed).weights
        assert sum(weights.values()) == 100
        assert all(isinstance(w, int) for w in weights.values())


def test_every_variant_keeps_the_exploration_floor() -> None:
    hopeless = [arm("a", 5_000, 0.9), arm("b", 5_000, 0.1), arm("c", 5_000, 0.2)]
    weights = thompson_weights(hopeless, exploration_floor=0.07, seed=1).weights
    assert weights["b"] == 7
    assert weights["c"] == 7
    assert weights["a"] == 86


def test_a_fractional_floor_rounds_up_to_a_whole_percent() -> None:
    weights = thompson_weights(
        [arm("a", 5_000, 0.9), arm("b", 5_000, 0.1)], exploration_floor=0.021, seed=1
    ).weights
    assert weights == {"a": 97, "b": 3}


def test_traffic_concentrates_on_the_clearly_best_variant() -> None:
    result = thompson_weights(ARMS, exploration_floor=0.05, seed=3)
    assert result.leader == "b"
    assert result.probability_best["b"] > 0.99
    assert result.weights["b"] >= 84


def test_without_evidence_the_split_is_even() -> None:
    empty = [VariantObservations(name=name) for name in ("a", "b", "c", "d")]
    weights = thompson_weights(empty, exploration_floor=0.05, seed=9).weights
    assert all(20 <= w <= 30 for w in weights.values())


def test_probabilities_of_being_best_sum_to_one() -> None:
    assert sum(probability_best(ARMS, seed=4).values()) == pytest.approx(1.0)


def test_same_observations_and_seed_give_the_same_weights() -> None:
    close = [arm("a", 60, 0.5), arm("b", 60, 0.52), arm("c", 60, 0.51)]
    seed = observation_seed(close)
    first = thompson_weights(close, exploration_floor=0.05, seed=seed)
    again = thompson_weights(close, exploration_floor=0.05, seed=observation_seed(close))
    assert first == again
    assert observation_seed(close) != observation_seed([arm("a", 61, 0.5), *close[1:]])


def test_cost_budget_moves_traffic_from_dear_to_cheap_variants() -> None:
    # "big" is best but dear; the budget allows an average of 3 per request.
    router = [arm("big", 500, 0.70), arm("small", 500, 0.60), arm("tiny", 500, 0.30)]
    costs = {"big": 10.0, "small": 2.0, "tiny": 1.0}
    free = thompson_weights(router, exploration_floor=0.05, seed=2, costs=costs)
    budgeted = thompson_weights(router, exploration_floor=0.05, seed=2, costs=costs, max_cost_per_request=3.0)
    assert free.expected_cost is not None
    assert free.expected_cost > 3.0
    assert budgeted.within_budget
    assert budgeted.expected_cost is not None
    assert budgeted.expected_cost <= 3.0
    assert sum(budgeted.weights.values()) == 100
    assert budgeted.weights["big"] < free.weights["big"]
    # The cheapest reward loss per unit of cost saved is big → small, not big → tiny.
    assert budgeted.weights["small"] > budgeted.weights["tiny"]
    assert min(budgeted.weights.values()) >= 5


def test_a_budget_below_what_the_floors_cost_is_reported_not_met() -> None:
    router = [arm("big", 500, 0.70), arm("small", 500, 0.60)]
    result = thompson_weights(
        router,
        exploration_floor=0.2,
        seed=2,
        costs={"big": 10.0, "small": 5.0},
        max_cost_per_request=4.0,
    )
    assert not result.within_budget
    assert result.weights == {"big": 20, "small": 80}


def test_duplicate_names_are_refused() -> None:
    with pytest.raises(ValueError, match="uniquely"):
        thompson_weights([arm("a", 1, 0.5), arm("a", 1, 0.5)], exploration_floor=0.05, seed=1)
