"""Preference-pair mining from recorded experience: pure miners over attempts, with no I/O.

Sources (each switchable per LearningPolicy):
- human corrections: the correction is chosen, the original output rejected;
- reward gaps: attempts at the same task with the same prompt whose rewards differ by a margin —
  the best attempt is chosen over each attempt at least ``min_margin`` worse;
- error recoveries: a failed attempt followed by a later successful one at the same task — the fix
  is what the model should have answered to the original prompt;
- explicit pairs posted by agents (ingested directly, not mined);
- LLM-judge verdicts (``controllers.data.judging`` asks, ``controllers.clients.judge`` sends) for
  attempts the signals cannot separate.
Pair ids (``pair_id``) are hashes of source and lineage, so mining twice inserts nothing new. The
store reads the attempts and writes the pairs (``controllers.store.mining``).
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any


class PairSource(StrEnum):
    """Where a preference pair came from; the wire value is stored with every pair."""

    HUMAN_CORRECTION = "humanCorrection"
    REWARD_GAP = "rewardGap"
    ERROR_RECOVERY = "errorRecovery"
    EXPLICIT = "explicit"
    LLM_JUDGE = "llmJudge"


@dataclass(frozen=True)
class Attempt:
    """What the miners need of a run."""

    id: str
    agent: str
    role: str
    task_family: str
    task_id: str
    attempt: int
    created_at: datetime
    prompt: str
    output: str
    reward: float | None
    succeeded: bool | None


@dataclass(frozen=True)
class MinedPair:
    source: PairSource
    prompt: str
    chosen: str
    rejected: str
    margin: float | None
    chosen_run_id: str | None
    rejected_run_id: str | None
    agent: str
    role: str
    task_family: str
    judge_model: str | None = None
    judge_rubric: str | None = None

    def row(self) -> dict[str, Any]:
        return {
            "source": self.source.value,
            "prompt": self.prompt,
            "chosen": self.chosen,
            "rejected": self.rejected,
            "margin": self.margin,
            "chosen_run_id": self.chosen_run_id,
            "rejected_run_id": self.rejected_run_id,
            "agent": self.agent,
            "role": self.role,
            "task_family": self.task_family,
            "judge_model": self.judge_model,
            "judge_rubric": self.judge_rubric,
        }


@dataclass(frozen=True)
class MiningSettings:
    human_corrections: bool = True
    reward_gaps: bool = True
    min_margin: float = 0.2
    error_recoveries: bool = True


def succeeded(compile_ok: bool | None, tests_passed: int | None, tests_total: int | None) -> bool | None:
    """A run succeeded when it compiled and passed all its tests (None when it reported neither)."""
    checks = []
    if compile_ok is not None:
        checks.append(compile_ok)
    if tests_total:
        checks.append((tests_passed or 0) >= tests_total)
    return all(checks) if checks else None


def _pair(
    source: PairSource, chosen: Attempt, rejected: Attempt, prompt: str, margin: float | None
) -> MinedPair:
    return MinedPair(
        source,
        prompt,
        chosen.output,
        rejected.output,
        margin,
        chosen.id,
        rejected.id,
        rejected.agent,
        rejected.role,
        rejected.task_family,
    )


def from_corrections(corrections: Iterable[tuple[Attempt, str]]) -> list[MinedPair]:
    """(run, correction text) → correction chosen over the run's output."""
    pairs = []
    for run, correction in corrections:
        if correction.strip() and correction.strip() != run.output.strip():
            pairs.append(
                MinedPair(
                    PairSource.HUMAN_CORRECTION,
                    run.prompt,
                    correction,
                    run.output,
                    None,
                    None,
                    run.id,
                    run.agent,
                    run.role,
                    run.task_family,
                )
            )
    return pairs


def _by_task(attempts: Iterable[Attempt]) -> dict[tuple[str, str, str], list[Attempt]]:
    groups: dict[tuple[str, str, str], list[Attempt]] = defaultdict(list)
    for attempt in attempts:
        groups[(attempt.agent, attempt.role, attempt.task_id)].append(attempt)
    return groups


def from_reward_gaps(attempts: Iterable[Attempt], min_margin: float) -> list[MinedPair]:
    pairs = []
    by_prompt: dict[tuple[str, str, str, str], list[Attempt]] = defaultdict(list)
    for a in attempts:
        if a.reward is not None:
            by_prompt[(a.agent, a.role, a.task_id, a.prompt)].append(a)
    for group in by_prompt.values():
        best = max(group, key=lambda a: (a.reward or 0.0, -a.attempt, a.id))
        for other in group:
            margin = (best.reward or 0.0) - (other.reward or 0.0)
            if other.id != best.id and margin >= min_margin and best.output != other.output:
                pairs.append(_pair(PairSource.REWARD_GAP, best, other, other.prompt, round(margin, 6)))
    return pairs


def from_error_recoveries(attempts: Iterable[Attempt]) -> list[MinedPair]:
    pairs = []
    for group in _by_task(attempts).values():
        ordered = sorted(group, key=lambda a: (a.attempt, a.created_at, a.id))
        for index, failed in enumerate(ordered):
            if failed.succeeded is not False:
                continue
            fix = next((later for later in ordered[index + 1 :] if later.succeeded), None)
            if fix is not None and fix.output != failed.output:
                margin = (
                    None
                    if fix.reward is None or failed.reward is None
                    else round(fix.reward - failed.reward, 6)
                )
                pairs.append(_pair(PairSource.ERROR_RECOVERY, fix, failed, failed.prompt, margin))
    return pairs


def mine_attempts(
    attempts: Sequence[Attempt], corrections: Sequence[tuple[Attempt, str]], settings: MiningSettings
) -> list[MinedPair]:
    """Every pair the enabled sources find. Pure."""
    found: list[MinedPair] = []
    if settings.human_corrections:
        found += from_corrections(corrections)
    if settings.error_recoveries:
        found += from_error_recoveries(attempts)
    if settings.reward_gaps:
        found += from_reward_gaps(attempts, settings.min_margin)
    # One pair per (prompt, chosen, rejected): a failed-then-fixed attempt is usually also a reward
    # gap, and training on the same comparison twice would overweight it. Earlier sources win.
    unique: dict[tuple[str, str, str], MinedPair] = {}
    for pair in found:
        unique.setdefault((pair.prompt, pair.chosen, pair.rejected), pair)
    return list(unique.values())


def pair_id(
    source: str,
    prompt: str,
    chosen: str,
    rejected: str,
    chosen_run: str | None,
    rejected_run: str | None,
    track: tuple[str, str, str] = ("", "", ""),
) -> str:
    """A pair's id: the hash of its source and lineage, so the same pair found twice is one row."""
    material = [source, prompt, chosen, rejected, chosen_run, rejected_run]
    if chosen_run is None and rejected_run is None:
        # A pair without runs is only its text: two agents posting the same text are two pairs, one
        # per track, or the second agent's would be dropped as a duplicate of the first's.
        material += list(track)
    return hashlib.sha256(json.dumps(material).encode()).hexdigest()[:32]
