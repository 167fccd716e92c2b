"""Sample-ratio mismatch: the chi-square survival function, exact weights, ranges of weights."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from controllers.decisions.experiments.observations import VariantObservations
from controllers.decisions.experiments.srm import (
    check_sample_ratio,
    chi_square_sf,
    goodness_of_fit,
    hashed_split,
)


@pytest.mark.parametrize(
    ("statistic", "dof", "p"),
    [
        (3.841459, 1, 0.05),
        (5.991465, 2, 0.05),
        (7.814728, 3, 0.05),
        (9.487729, 4, 0.05),
        (16.266236, 3, 0.001),
        (24.321886, 7, 0.001),
        (0.454936, 1, 0.5),
    ],
)
def test_chi_square_survival_matches_the_tables(statistic: float, dof: int, p: float) -> None:
    assert chi_square_sf(statistic, dof) == pytest.approx(p, rel=1e-5)


def test_chi_square_survival_is_one_at_zero_and_falls() -> None:
    assert chi_square_sf(0.0, 3) == 1.0
    values = [chi_square_sf(x, 5) for x in np.linspace(0.1, 40, 50)]
    assert all(later < earlier for earlier, later in itertools.pairwise(values))


def test_a_correct_split_passes_and_a_broken_one_is_flagged() -> None:
    fine = check_sample_ratio({"a": 9_480, "b": 520}, {"a": (0.95, 0.95), "b": (0.05, 0.05)})
    broken = check_sample_ratio({"a": 9_200, "b": 800}, {"a": (0.95, 0.95), "b": (0.05, 0.05)})
    assert fine.ok
    assert fine.p_value is not None
    assert fine.p_value > 0.001
    assert not broken.ok
    assert broken.p_value is not None
    assert broken.p_value < 1e-6
    assert broken.observed["b"] == pytest.approx(0.08)


def test_correct_splits_are_flagged_at_most_at_the_threshold_rate() -> None:
    rng = np.random.default_rng(5)
    flagged = 0
    for _ in range(3_000):
        counts = rng.multinomial(5_000, [0.5, 0.3, 0.2])
        result = check_sample_ratio(
            {"a": int(counts[0]), "b": int(counts[1]), "c": int(counts[2])},
            {"a": (0.5, 0.5), "b": (0.3, 0.3), "c": (0.2, 0.2)},
        )
        flagged += not result.ok
    assert flagged <= 10  # threshold 0.001 → about 3 expected in 3,000


def test_cumulative_counts_over_weight_steps_are_not_a_mismatch() -> None:
    # 2,000 requests at 5 %, then 2,000 at 25 %: 15 % overall, inside the 5 %..25 % range.
    counts = {"challenger": 100 + 500, "champion": 1_900 + 1_500}
    result = check_sample_ratio(counts, {"challenger": (0.05, 0.25), "champion": (0.75, 0.95)})
    assert result.ok
    assert result.p_value == pytest.approx(1.0)


def test_a_variant_starved_of_traffic_is_a_mismatch_even_against_a_range() -> None:
    counts = {"a": 3_000, "b": 2_990, "c": 10}
    floors = {name: (0.05, 0.90) for name in counts}
    result = check_sample_ratio(counts, floors)
    assert not result.ok


def test_too_little_traffic_is_not_judged() -> None:
    result = check_sample_ratio({"a": 30, "b": 0}, {"a": (0.95, 0.95), "b": (0.05, 0.05)})
    assert result.ok
    assert result.p_value is None
    assert goodness_of_fit({"a": 0, "b": 0}, {"a": 0.5, "b": 0.5}) is None


def test_mismatched_names_are_refused() -> None:
    with pytest.raises(ValueError, match="share ranges"):
        check_sample_ratio({"a": 1, "b": 2}, {"a": (0.5, 0.5), "c": (0.5, 0.5)})


def test_fallbacks_count_for_the_challenger_the_hash_chose() -> None:
    observations = {
        "champion": VariantObservations(name="champion", assigned=960),
        "challenger": VariantObservations(name="challenger", assigned=30, fallbacks=20),
    }
    assert hashed_split(observations, "champion") == {"champion": 940, "challenger": 50}
