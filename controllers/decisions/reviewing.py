"""Blind pairwise review, decided without I/O: what a verdict on a shown side means, what a pair's
review state becomes once enough people judged it, and how much the people (and the LLM judge) agree.

A reviewer sees a pair's two answers as ``left`` and ``right`` in an order the server drew for their
reservation; ``preference`` maps the verdict back to the pair's own terms, so a swapped pair judged
"left" still records which stored answer won. The review state rule (``review_state``): a pair is
approved when a strict majority of its verdicts prefer its stored ``chosen`` answer, and rejected
otherwise (a tie, "both bad" or a reversed preference keeps the pair out of training).

Agreement is Krippendorff's alpha for nominal data over the four preferences. It is computed here
(a coincidence matrix, a few lines) rather than with the PyPI ``krippendorff`` package: that package
needs numpy, which the gateway does not otherwise install (numpy is only in the trainer's extra), and
decisions stay free of heavy imports; the tests check it against hand-computed tables.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from itertools import permutations


class Verdict(StrEnum):
    """What a reviewer answers about the two answers as they were shown."""

    LEFT = "left"
    RIGHT = "right"
    TIE = "tie"
    BOTH_BAD = "bothBad"


class Preference(StrEnum):
    """A verdict in the pair's own terms: which stored answer the reviewer preferred."""

    CHOSEN = "chosen"
    REJECTED = "rejected"
    TIE = "tie"
    BOTH_BAD = "bothBad"


# The reasons a reviewer may tag a verdict with (a fixed vocabulary, so they can be counted).
REASON_TAGS = frozenset(
    {"correctness", "completeness", "style", "safety", "instructions", "hallucination", "format", "other"}
)


def preference(verdict: Verdict, left_is_chosen: bool) -> Preference:
    """The stored answer a verdict on the shown sides prefers (the order drawn for the reservation)."""
    if verdict is Verdict.TIE:
        return Preference.TIE
    if verdict is Verdict.BOTH_BAD:
        return Preference.BOTH_BAD
    picked_left = verdict is Verdict.LEFT
    return Preference.CHOSEN if picked_left == left_is_chosen else Preference.REJECTED


def losers(found: Preference) -> tuple[str, ...]:
    """Which stored answers a correction is chosen over: the one the verdict rejected, or both when it
    preferred neither (tie, both bad)."""
    if found is Preference.CHOSEN:
        return ("rejected",)
    if found is Preference.REJECTED:
        return ("chosen",)
    return ("chosen", "rejected")


def review_state(preferences: Sequence[Preference]) -> str:
    """``approved`` when a strict majority prefers the stored chosen answer, else ``rejected``."""
    chosen = sum(1 for found in preferences if found is Preference.CHOSEN)
    return "approved" if preferences and chosen * 2 > len(preferences) else "rejected"


@dataclass(frozen=True)
class Alpha:
    """Krippendorff's alpha, or None with the reason it is undefined."""

    value: float | None
    items: int  # items judged by at least two reviewers
    pairable: int  # pairs of judgements on one item
    reason: str | None = None


def nominal_alpha(units: Mapping[str, Sequence[str]]) -> Alpha:
    """Krippendorff's alpha (nominal) over the values each unit (item) received.

    Units with fewer than two values cannot be paired and are left out. Undefined (None, with a
    reason) with fewer than two such units, or when every value is the same (no variation)."""
    paired = [values for values in units.values() if len(values) >= 2]
    pairable = sum(len(values) * (len(values) - 1) for values in paired) // 2
    if len(paired) < 2:
        reason = f"needs at least 2 items judged by 2 or more reviewers; {len(paired)} so far"
        return Alpha(None, len(paired), pairable, reason)
    coincidence: defaultdict[tuple[str, str], float] = defaultdict(float)
    for values in paired:
        for first, second in permutations(values, 2):
            coincidence[(first, second)] += 1.0 / (len(values) - 1)
    totals: defaultdict[str, float] = defaultdict(float)
    for (first, _), weight in coincidence.items():
        totals[first] += weight
    n = sum(totals.values())
    observed = sum(weight for (first, second), weight in coincidence.items() if first != second)
    expected = sum(totals[a] * totals[b] for a in totals for b in totals if a != b) / (n - 1)
    if expected == 0:
        return Alpha(None, len(paired), pairable, "no variation: every judgement is the same value")
    return Alpha(1.0 - observed / expected, len(paired), pairable)


@dataclass(frozen=True)
class JudgeAgreement:
    """How often people's verdicts agree with the LLM judge's on the items both labelled."""

    items: int
    judgements: int
    agreeing: int

    @property
    def rate(self) -> float | None:
        return self.agreeing / self.judgements if self.judgements else None


def judge_agreement(judged_by_people: Iterable[Sequence[Preference]]) -> JudgeAgreement:
    """Over pairs the judge made (its verdict is the stored order: ``chosen`` won), the share of
    people's verdicts that prefer the same answer."""
    items = judgements = agreeing = 0
    for preferences in judged_by_people:
        if not preferences:
            continue
        items += 1
        judgements += len(preferences)
        agreeing += sum(1 for found in preferences if found is Preference.CHOSEN)
    return JudgeAgreement(items, judgements, agreeing)
