"""Sample-ratio mismatch: a sequential test per allocation epoch, valid over every look."""

from __future__ import annotations

import math

import numpy as np
import pytest

from controllers.decisions.experiments.observations import AllocationEpoch, VariantObservations
from controllers.decisions.experiments.srm import (
    MISMATCH_P_VALUE,
    check_sample_ratio,
    hashed_split,
    log_bayes_factor,
)


def epoch(challenger_percent: int, challenger_units: int, champion_units: int) -> AllocationEpoch:
    return AllocationEpoch(
        weights={"challenger": challenger_percent, "champion": 100 - challenger_percent},
        units={"challenger": challenger_units, "champion": champion_units},
    )


def test_correct_assignment_looked_at_after_every_batch_is_almost_never_blocked() -> None:
    """A chi-square test at p < 0.001 on every look blocks a few percent of correct experiments;
    the sequential test keeps the rate over all looks at most 0.001 (here: none of 400)."""
    rng = np.random.default_rng(5)
    blocked = 0
    for _ in range(400):
        draws = rng.random(6_000) < 0.05
        for n in range(100, 6_001, 100):
            challenger = int(draws[:n].sum())
            if not check_sample_ratio([epoch(5, challenger, n - challenger)]).ok:
                blocked += 1
                break
    assert blocked <= 2  # expected 0.4 at the bound; 2 has probability < 1 %


def test_a_challenger_at_ten_percent_after_the_step_to_fifty_is_blocked_naming_the_step() -> None:
    """The old check compared cumulative counts with the range of steps seen (5 % to 50 %), so 10 %
    passed; each epoch is now held to its own weights."""
    found = check_sample_ratio([epoch(5, 52, 948), epoch(50, 30, 270)])
    assert not found.ok
    assert found.p_value is not None
    assert found.p_value < MISMATCH_P_VALUE
    assert found.epoch is not None
    assert found.epoch.weights["challenger"] == 50
    assert "at weights challenger 50% / champion 50%: challenger got 10.0%" in found.sentence()


def test_a_correct_split_in_every_epoch_passes() -> None:
    found = check_sample_ratio([epoch(5, 49, 951), epoch(25, 260, 740), epoch(50, 493, 507)])
    assert found.ok
    assert found.p_value is not None
    assert found.p_value > 0.1


def test_traffic_to_a_variant_with_weight_zero_is_a_mismatch_outright() -> None:
    assert log_bayes_factor(epoch(0, 3, 997)) == math.inf
    found = check_sample_ratio([epoch(0, 3, 997)])
    assert not found.ok
    assert found.p_value == 0.0


def test_no_units_means_nothing_to_test() -> None:
    assert check_sample_ratio([]).p_value is None
    assert check_sample_ratio([epoch(5, 0, 0)]).ok


@pytest.mark.parametrize("units", [20, 200, 2_000])
def test_the_bayes_factor_of_exactly_the_expected_counts_is_below_one(units: int) -> None:
    """The mixture pays for its width: data exactly on the weights count against a mismatch."""
    assert log_bayes_factor(epoch(50, units // 2, units // 2)) < 0


def test_fallbacks_count_for_the_challenger_the_hash_chose() -> None:
    observations = {
        "champion": VariantObservations(name="champion", assigned=960),
        "challenger": VariantObservations(name="challenger", assigned=30, fallbacks=20),
    }
    assert hashed_split(observations, "champion") == {"champion": 940, "challenger": 50}
