"""Blind review decided purely: verdicts on shown sides, the review state rule, and agreement figures
against values computed by hand."""

from __future__ import annotations

import pytest

from controllers.decisions.reviewing import (
    Preference,
    Verdict,
    judge_agreement,
    losers,
    nominal_alpha,
    preference,
    review_state,
)

C, R, T, B = Preference.CHOSEN, Preference.REJECTED, Preference.TIE, Preference.BOTH_BAD


@pytest.mark.parametrize(
    ("verdict", "left_is_chosen", "expected"),
    [
        (Verdict.LEFT, True, C),
        (Verdict.LEFT, False, R),  # shown swapped: the left side was the stored rejected answer
        (Verdict.RIGHT, True, R),
        (Verdict.RIGHT, False, C),
        (Verdict.TIE, False, T),
        (Verdict.BOTH_BAD, True, B),
    ],
)
def test_a_verdict_on_a_shown_side_names_the_stored_answer(
    verdict: Verdict, left_is_chosen: bool, expected: Preference
) -> None:
    assert preference(verdict, left_is_chosen) is expected


def test_a_correction_beats_the_loser_or_both_when_neither_won() -> None:
    assert losers(C) == ("rejected",)
    assert losers(R) == ("chosen",)
    assert losers(T) == losers(B) == ("chosen", "rejected")


@pytest.mark.parametrize(
    ("preferences", "state"),
    [([C], "approved"), ([R], "rejected"), ([C, C, R], "approved"), ([C, R], "rejected"),
     ([C, T, B], "rejected"), ([], "rejected")],
)  # fmt: skip
def test_a_strict_majority_for_the_stored_chosen_approves(preferences: list[Preference], state: str) -> None:
    assert review_state(preferences) == state


def test_alpha_of_a_small_table_is_the_hand_computed_value() -> None:
    # o_xx = 2, o_xy = o_yx = 1, o_yy = 2; n_x = n_y = 3, n = 6: 1 - 5 * 2 / 18 = 4/9
    alpha = nominal_alpha({"a": ["x", "x"], "b": ["x", "y"], "c": ["y", "y"], "single": ["x"]})
    assert alpha.value == pytest.approx(4 / 9)
    assert (alpha.items, alpha.pairable, alpha.reason) == (3, 3, None)


def test_alpha_weighs_an_item_with_three_reviewers_by_its_pairs() -> None:
    # a: xx 1, xy 1, yx 1; b: yy 2; n_x = 2, n_y = 3, n = 5: 1 - 4 * 2 / 12 = 1/3
    alpha = nominal_alpha({"a": ["x", "x", "y"], "b": ["y", "y"]})
    assert alpha.value == pytest.approx(1 / 3)
    assert alpha.pairable == 4


def test_perfect_agreement_with_variation_is_one() -> None:
    assert nominal_alpha({"a": ["x", "x"], "b": ["y", "y"]}).value == 1.0


@pytest.mark.parametrize(
    ("units", "why"),
    [({}, "needs at least 2 items"), ({"a": ["x", "y"], "b": ["x"]}, "needs at least 2 items"),
     ({"a": ["x", "x"], "b": ["x", "x"]}, "no variation")],
)  # fmt: skip
def test_undefined_alpha_is_none_with_a_reason(units: dict[str, list[str]], why: str) -> None:
    alpha = nominal_alpha(units)
    assert alpha.value is None
    assert alpha.reason is not None
    assert why in alpha.reason


def test_judge_agreement_counts_people_preferring_the_judges_winner() -> None:
    found = judge_agreement([[C, C], [R], []])
    assert (found.items, found.judgements, found.agreeing) == (2, 3, 2)
    assert found.rate == pytest.approx(2 / 3)
    assert judge_agreement([]).rate is None
