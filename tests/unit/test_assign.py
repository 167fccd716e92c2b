"""Sticky weighted assignment: the same unit stays put, shares follow weights, changes move few units."""

from __future__ import annotations

import hashlib
import math

import pytest

from controllers.decisions.assign import NoVariant, choose, unit_hash, unit_id

UNITS = [unit_hash("exp", f"user-{i}") for i in range(10_000)]


def assign_all(weights: list[tuple[str, int]], units: list[str] = UNITS) -> list[str]:
    return [choose(u, weights) for u in units]


def within_sampling_error(count: int, n: int, percent: int) -> bool:
    p = percent / 100
    return abs(count / n - p) <= 4 * math.sqrt(p * (1 - p) / n)


def test_the_same_unit_always_gets_the_same_variant() -> None:
    weights = [("champion", 70), ("challenger", 30)]
    assert assign_all(weights) == assign_all(weights)
    assert assign_all(weights) == assign_all(list(reversed(weights))), "the order of variants must not matter"


@pytest.mark.parametrize(
    "weights",
    [
        [("champion", 95), ("challenger", 5)],
        [("champion", 75), ("challenger", 25)],
        [("champion", 50), ("challenger", 50)],
        [("a", 20), ("b", 30), ("c", 50)],
        [("a", 1), ("b", 1), ("c", 1), ("d", 97)],
    ],
)
def test_shares_match_the_weights_within_sampling_error_over_ten_thousand_units(
    weights: list[tuple[str, int]],
) -> None:
    chosen = assign_all(weights)
    for name, weight in weights:
        assert within_sampling_error(chosen.count(name), len(chosen), weight), (name, chosen.count(name))


def test_raising_the_challenger_from_5_to_25_percent_moves_about_20_percent_all_to_the_challenger() -> None:
    before = assign_all([("champion", 95), ("challenger", 5)])
    after = assign_all([("champion", 75), ("challenger", 25)])
    moved = [(b, a) for b, a in zip(before, after, strict=True) if b != a]
    assert set(moved) == {("champion", "challenger")}
    assert within_sampling_error(len(moved), len(UNITS), 20)
    # Minimal: exactly the units the challenger's share grew by, nobody shuffled back and forth.
    assert len(moved) == after.count("challenger") - before.count("challenger")


def test_a_challenger_set_to_zero_gives_back_only_its_own_units() -> None:
    before = assign_all([("champion", 75), ("challenger", 25)])
    after = assign_all([("champion", 100), ("challenger", 0)])
    assert "challenger" not in after
    assert all(b == a for b, a in zip(before, after, strict=True) if b == "champion")


def test_with_three_variants_changing_one_moves_units_only_to_or_from_it() -> None:
    # The others keep their proportions (30:30 -> 40:40, 40:40 -> 50:50): the minimal-movement case.
    before = assign_all([("champion", 40), ("a", 30), ("b", 30)])
    raised = assign_all([("champion", 20), ("a", 40), ("b", 40)])
    assert {(x, y) for x, y in zip(before, raised, strict=True) if x != y} == {
        ("champion", "a"),
        ("champion", "b"),
    }
    before = assign_all([("champion", 40), ("a", 40), ("b", 20)])
    zeroed = assign_all([("champion", 50), ("a", 50), ("b", 0)])
    assert {x for x, y in zip(before, zeroed, strict=True) if x != y} == {"b"}


def test_two_experiments_split_the_same_users_independently() -> None:
    weights = [("champion", 50), ("challenger", 50)]
    first = [choose(unit_hash("exp-1", f"user-{i}"), weights) for i in range(10_000)]
    second = [choose(unit_hash("exp-2", f"user-{i}"), weights) for i in range(10_000)]
    agree = sum(a == b for a, b in zip(first, second, strict=True))
    assert within_sampling_error(agree, 10_000, 50)


def test_the_unit_hash_is_a_sha256_that_reveals_neither_the_user_nor_links_experiments() -> None:
    one, other = unit_hash("exp-1", "alice@example.com"), unit_hash("exp-2", "alice@example.com")
    assert one == hashlib.sha256(b"exp-1\x1falice@example.com").hexdigest()
    assert "alice" not in one
    assert one != other


def test_no_variant_with_weight_is_an_error() -> None:
    with pytest.raises(NoVariant):
        choose(UNITS[0], [("champion", 0)])


@pytest.mark.parametrize(
    ("kind", "headers", "user", "expected"),
    [
        ("User", {"x-kaizen-unit": "u-explicit", "x-kaizen-user": "bob"}, "alice", ("u-explicit", "header")),
        ("User", {"x-kaizen-user": "bob"}, "alice", ("alice", "user")),
        ("User", {"x-kaizen-user": "bob"}, None, ("bob", "user")),
        ("User", {}, None, ("req-1", "request")),
        ("Session", {"x-kaizen-session": "s-9"}, "alice", ("s-9", "session")),
        ("Session", {}, "alice", ("req-1", "request")),
        ("Request", {"x-kaizen-user": "bob"}, "alice", ("req-1", "request")),
    ],
)
def test_the_unit_comes_from_the_header_the_body_or_the_request_by_route_unit(
    kind: str, headers: dict[str, str], user: str | None, expected: tuple[str, str]
) -> None:
    assert unit_id(kind, headers, user, "req-1") == expected
