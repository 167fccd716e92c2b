"""The composite reward of a run: weighted quality signals, each scaled to 0..1. Pure functions.

    reward = (w_c·compile_ok + w_t·tests_passed / tests_total + w_e·(1 - error_rate) + w_h·human_accepted)
             / Σw_present

Each weight is named after the signal it weighs, as the run reports it (``signals.compileOk``,
``signals.testsPassed``/``testsTotal``, the ``signals.*Errors`` counts, a person's verdict): a
LearningPolicy's ``spec.reward`` and the store's policy rows use the same camelCase names.

A signal the run did not report (no tests, no human verdict yet) drops out and its weight with it,
so a run is not punished for a check that never ran; when the verdict arrives later the reward is
recomputed. Errors are counts, so the error rate saturates: 0 errors → 0, 1 → 0.5, 3 → 0.75.

Which weights a run gets is the most specific policy matching its track (``weights_for``); the store
reads the policies and writes the rewards (``controllers.store.policies``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any, Protocol

# The camelCase names a policy's weights go by (``spec.reward``, the store's ``policies.weights``).
WEIGHT_NAMES = {
    "compileOk": "compile_ok",
    "testsPassed": "tests_passed",
    "errors": "errors",
    "humanAccepted": "human_accepted",
}
# The names before issue 22, refused with the name that replaced each (store migration 0008 renamed
# the stored rows).
RENAMED = {
    "compile": "compileOk",
    "tests": "testsPassed",
    "errorRate": "errors",
    "humanAcceptance": "humanAccepted",
}


@dataclass(frozen=True)
class RewardWeights:
    compile_ok: float = 0.25
    tests_passed: float = 0.25
    errors: float = 0.25
    human_accepted: float = 0.25

    def __post_init__(self) -> None:
        values = asdict(self).values()
        if any(w < 0 or w > 1 for w in values) or sum(values) <= 0:
            raise ValueError("reward weights must lie in [0, 1] and at least one must be positive")

    def digest(self) -> str:
        """A short stable id of these weights, stored with each reward so stale ones can be found."""
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:16]

    @classmethod
    def from_camel(cls, data: Mapping[str, float]) -> RewardWeights:
        """From the LearningPolicy's ``spec.reward`` or a stored policy row (camelCase keys; a weight
        left out has its default). An old or unknown name is refused, never read as a default."""
        unknown = sorted(set(data) - set(WEIGHT_NAMES))
        if unknown:
            hints = [
                f"{name} was renamed to {RENAMED[name]}" if name in RENAMED else name for name in unknown
            ]
            raise ValueError(f"unknown reward weights: {'; '.join(hints)} (known: {', '.join(WEIGHT_NAMES)})")
        return cls(**{WEIGHT_NAMES[name]: float(value) for name, value in data.items()})


@dataclass(frozen=True)
class Signals:
    compile_ok: bool | None = None
    tests_passed: int | None = None
    tests_total: int | None = None
    lint_errors: int | None = None
    type_errors: int | None = None
    schema_errors: int | None = None
    human_accepted: bool | None = None


def error_rate(signals: Signals) -> float | None:
    counts = [c for c in (signals.lint_errors, signals.type_errors, signals.schema_errors) if c is not None]
    if not counts:
        return None
    errors = sum(counts)
    return errors / (errors + 1)


def compute_reward(signals: Signals, weights: RewardWeights) -> float | None:
    """The composite reward in [0, 1], or None when the run reported no signal at all."""
    terms: list[tuple[float, float]] = []
    if signals.compile_ok is not None:
        terms.append((weights.compile_ok, 1.0 if signals.compile_ok else 0.0))
    if signals.tests_total:
        passed = min(max(signals.tests_passed or 0, 0), signals.tests_total)
        terms.append((weights.tests_passed, passed / signals.tests_total))
    rate = error_rate(signals)
    if rate is not None:
        terms.append((weights.errors, 1.0 - rate))
    if signals.human_accepted is not None:
        terms.append((weights.human_accepted, 1.0 if signals.human_accepted else 0.0))
    total = sum(weight for weight, _ in terms)
    if total <= 0:
        return None
    return sum(weight * value for weight, value in terms) / total


class WeightedTrack(Protocol):
    """A policy as reward weighting sees it: the track it matches (empty fields match any) and its
    ``spec.reward`` weights."""

    @property
    def agent(self) -> str: ...
    @property
    def role(self) -> str: ...
    @property
    def task_family(self) -> str: ...
    @property
    def weights(self) -> dict[str, float]: ...


def weights_for(policies: Iterable[WeightedTrack], agent: str, role: str, task_family: str) -> RewardWeights:
    """The most specific policy whose set fields all match the run; defaults when none does."""
    best: tuple[int, WeightedTrack] | None = None
    for policy in policies:
        fields = [(policy.agent, agent), (policy.role, role), (policy.task_family, task_family)]
        if all(not wanted or wanted == actual for wanted, actual in fields):
            specificity = sum(1 for wanted, _ in fields if wanted)
            if best is None or specificity > best[0]:
                best = (specificity, policy)
    return RewardWeights.from_camel(best[1].weights) if best else RewardWeights()


def signals_of(row: Mapping[str, Any]) -> Signals:
    """The signals of a run's columns (a row to insert, or a stored run's attributes)."""
    return Signals(
        compile_ok=row.get("compile_ok"),
        tests_passed=row.get("tests_passed"),
        tests_total=row.get("tests_total"),
        lint_errors=row.get("lint_errors"),
        type_errors=row.get("type_errors"),
        schema_errors=row.get("schema_errors"),
        human_accepted=row.get("human_accepted"),
    )


def human_verdict(feedback: Mapping[str, Any]) -> bool | None:
    """What feedback says about acceptance: explicit accept/reject, else thumbs, else a rating of 4+."""
    if feedback.get("accepted") is not None:
        return bool(feedback["accepted"])
    if feedback.get("thumbs"):
        return bool(feedback["thumbs"] > 0)
    if feedback.get("rating") is not None:
        return bool(feedback["rating"] >= 4)
    return None
