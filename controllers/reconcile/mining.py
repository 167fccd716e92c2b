"""Pair mining for the LearningPolicy reconcile: the policy's pairSources drive controllers.store.mining.

Cheap when nothing changed: every poll reads the track's activity mark (count and newest change time
of its runs) and mines only when the mark or the policy's mining settings moved. That mark lives in
memory; how far mining got lives in the store (``controllers.store.mining.Progress``), so the first
poll after a restart mines only the tasks changed since, not the whole window again.

The LLM judge is network I/O, so it is asked with an async client and a timeout, at most
``judge_calls_per_reconcile`` questions per reconcile and never twice about the same two attempts.
A failing judge stops the asking for this reconcile, is reported in the Mining condition (with an
Event when it starts failing) and the reconcile goes on with what the other sources found. Until the
judge has answered everything it was to be asked, the mark is not kept, so the next poll continues.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

import httpx

from controllers.api import kinds
from controllers.api.common import parse_duration
from controllers.api.learningpolicy import LearningPolicy, PairSources
from controllers.clients import judge
from controllers.data.judging import comparison
from controllers.data.pairs import Attempt, MinedPair, MiningSettings, PairSource
from controllers.decisions.conditions import Want, find
from controllers.reconcile.deps import Dependencies
from controllers.reconcile.memory import Memory as Memory  # re-exported: the policies' memories
from controllers.runtime.kube import KubeError
from controllers.store.db import transaction
from controllers.store.mining import (
    Mined,
    Progress,
    activity_mark,
    keep_progress,
    mine_track,
    progress,
    store_pairs,
)
from controllers.store.tracks import Track

MINING = "Mining"  # the policy's condition about its pair sources
SECRETS = kinds.SECRETS


@dataclass
class Report:
    wants: list[Want] = field(default_factory=list)
    events: list[tuple[str, str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class JudgeRound:
    """What one reconcile's questions to the judge gave."""

    verdicts: int = 0
    unparsed: int = 0
    error: str | None = None


class JudgeUnavailable(Exception):
    """The judge cannot be asked: its API key cannot be read."""


def trainable_sources(sources: PairSources) -> tuple[str, ...]:
    """The pair sources whose pairs may train under this policy; counting and export both use it."""
    enabled = (
        (PairSource.HUMAN_CORRECTION, sources.human_corrections),
        (PairSource.REWARD_GAP, sources.reward_gaps.enabled),
        (PairSource.ERROR_RECOVERY, sources.error_recoveries),
        (PairSource.EXPLICIT, sources.explicit),
        (PairSource.LLM_JUDGE, sources.llm_judge.enabled),
    )
    return tuple(source.value for source, on in enabled if on)


def mining_settings(sources: PairSources) -> MiningSettings:
    return MiningSettings(
        human_corrections=sources.human_corrections,
        reward_gaps=sources.reward_gaps.enabled,
        min_margin=sources.reward_gaps.min_margin,
        error_recoveries=sources.error_recoveries,
    )


async def api_key(policy: LearningPolicy, namespace: str, deps: Dependencies) -> str | None:
    ref = policy.spec.pair_sources.llm_judge.api_key_secret_ref
    if ref is None:
        return None
    try:
        secret = await deps.kube.get(SECRETS, namespace, ref.name)
    except KubeError as error:
        raise JudgeUnavailable(f"cannot read Secret {ref.name}: {error}") from error
    value = ((secret or {}).get("data") or {}).get(ref.key)
    if value is None:
        raise JudgeUnavailable(
            f"Secret {ref.name} has no key {ref.key!r}" if secret else f"no Secret {ref.name}"
        )
    try:
        return base64.b64decode(value).decode().strip()
    except (binascii.Error, UnicodeDecodeError) as error:
        raise JudgeUnavailable(f"Secret {ref.name} key {ref.key!r} is not text") from error


async def ask_judge(
    settings: judge.JudgeSettings, questions: list[tuple[Attempt, Attempt]], timeout: float
) -> tuple[list[MinedPair], list[frozenset[str]], str | None]:
    """Verdicts, comparisons the judge answered with neither A nor B, and the failure that stopped it."""
    verdicts: list[MinedPair] = []
    unparsed: list[frozenset[str]] = []
    async with httpx.AsyncClient(timeout=timeout) as client:
        for a, b in questions:
            try:
                pair = await judge.ask(client, settings, a, b)
            except httpx.HTTPStatusError as error:
                return verdicts, unparsed, f"{error.response.status_code} {error.response.text[:200]}"
            except (httpx.HTTPError, KeyError, IndexError, TypeError, ValueError) as error:
                return verdicts, unparsed, f"{type(error).__name__}: {error}"[:300]
            if pair is None:
                unparsed.append(comparison(a, b))
            else:
                verdicts.append(pair)
    return verdicts, unparsed, None


def _fingerprint(policy: LearningPolicy) -> str:
    """Everything in the spec that changes what mining finds: sources, window, track, reward weights."""
    spec = policy.spec
    wire = [spec.track, spec.pair_sources, spec.reward]
    material = json.dumps([m.to_wire() for m in wire] + [spec.data.max_age], sort_keys=True)
    return hashlib.sha256(material.encode()).hexdigest()


def memory_of(body: dict[str, Any], deps: Dependencies) -> Memory:
    meta = body["metadata"]
    return deps.mining.setdefault(meta.get("uid") or meta["name"], Memory())


def forget_deleted(deps: Dependencies, live: set[str]) -> None:
    """Drop the memories of policies that no longer exist."""
    for uid in set(deps.mining) - live:
        del deps.mining[uid]


@dataclass
class Found:
    """A mining, and the mark it was made at (kept once the judge has nothing left to answer)."""

    mark: tuple[Any, ...]
    mined: Mined
    store_key: tuple[str, str]  # the policy's row in the store (namespace, name): its progress


def new_mark(
    policy: LearningPolicy, namespace: str, memory: Memory, deps: Dependencies
) -> tuple[Any, ...] | None:
    """The track's mark when its runs, feedback or the policy's mining settings changed since the last
    complete mining; None when nothing did. Blocking: the reconcile runs it in a store thread."""
    with transaction(deps.factory) as session:
        mark = (_fingerprint(policy), *activity_mark(session, _track(policy, namespace)))
    return None if mark == memory.mark else mark


def mine(
    policy: LearningPolicy,
    store_key: tuple[str, str],
    mark: tuple[Any, ...],
    memory: Memory,
    deps: Dependencies,
) -> Found:
    """Mine the policy's track: the tasks changed since its last complete mining with the same
    settings, or its whole data window. Blocking: the reconcile runs it in a store thread."""
    spec = policy.spec
    sources = spec.pair_sources
    with transaction(deps.factory) as session:
        changed_after = progress(session, *store_key).resume_after(mark[0])
        mined = mine_track(
            session, _track(policy, store_key[0]), mining_settings(sources),
            since=deps.clock() - parse_duration(spec.data.max_age), changed_after=changed_after,
            judge_limit=deps.settings.judge_calls_per_reconcile if sources.llm_judge.enabled else 0,
            judge_margin=sources.reward_gaps.min_margin, skip=memory.unanswerable,
        )  # fmt: skip
    return Found(mark, mined, store_key)


def _track(policy: LearningPolicy, namespace: str) -> Track:
    track = policy.spec.track
    return Track(track.agent, track.role, track.task_family, namespace)


async def finish(
    found: Found | None, policy: LearningPolicy, namespace: str, memory: Memory, deps: Dependencies
) -> Report:
    """Ask the judge what the mining left for it, remember the mark once nothing is left, and say
    what was found."""
    if found is None:
        return Report()
    mined = found.mined
    asked = await _judge(mined, policy, namespace, memory, deps) if mined.to_judge else JudgeRound()
    if asked.error is None and not mined.judge_backlog:
        if mined.through is not None:  # a track without runs has nothing to resume from
            await asyncio.to_thread(_keep, found.store_key, Progress(found.mark[0], mined.through), deps)
        memory.mark = found.mark
    return _report(mined, asked, policy)


def _keep(store_key: tuple[str, str], kept: Progress, deps: Dependencies) -> None:
    with transaction(deps.factory) as session:
        keep_progress(session, *store_key, kept)


async def _judge(
    mined: Mined, policy: LearningPolicy, namespace: str, memory: Memory, deps: Dependencies
) -> JudgeRound:
    """Ask the judge about ``mined.to_judge``, store its verdicts and count the new ones in ``mined``."""
    config = policy.spec.pair_sources.llm_judge
    if not config.endpoint or not config.model:  # the CEL rule says so; the operator checks it first
        return JudgeRound(error="llmJudge.endpoint and llmJudge.model are required")
    try:
        key = await api_key(policy, namespace, deps)
    except JudgeUnavailable as unavailable:
        return JudgeRound(error=f"the LLM judge cannot be asked: {unavailable}")
    settings = judge.JudgeSettings(
        config.endpoint, config.model, config.rubric, policy.spec.pair_sources.reward_gaps.min_margin, key
    )
    verdicts, unparsed, error = await ask_judge(settings, mined.to_judge, deps.settings.judge_timeout_seconds)
    memory.unanswerable.update(unparsed)

    def store() -> dict[str, int]:
        with transaction(deps.factory) as session:
            return store_pairs(session, verdicts, namespace)

    for source, count in (await asyncio.to_thread(store)).items():
        mined.inserted[source] = mined.inserted.get(source, 0) + count
    failure = None if error is None else f"the LLM judge at {config.endpoint} failed: {error}"
    return JudgeRound(len(verdicts), len(unparsed), failure)


def _per_source(counts: dict[str, int]) -> str:
    return ", ".join(f"{source} {n}" for source, n in sorted(counts.items())) or "none"


def _report(mined: Mined, asked: JudgeRound, policy: LearningPolicy) -> Report:
    report = Report()
    where = (
        f"the last {policy.spec.data.max_age}"
        if mined.tasks is None
        else f"{mined.tasks} tasks changed since the last mining"
    )
    message = f"pairs found in {where}: {_per_source(mined.found)}"
    if asked.verdicts or asked.unparsed:
        message += f"; the judge decided {asked.verdicts} comparisons ({asked.unparsed} unclear answers)"
    if mined.judge_backlog:
        message += f"; {mined.judge_backlog} comparisons wait for the judge's next polls"
    new = sum(mined.inserted.values())
    if new:
        report.events.append(("Normal", "PairsMined", f"{new} new pairs ({_per_source(mined.inserted)})"))
    if asked.error is None:
        report.wants.append(Want.true(MINING, "Mined", message))
        return report
    previous = find(policy.status.conditions if policy.status else [], MINING)
    if previous is None or previous.reason != "JudgeFailed":  # one Event when it starts failing
        report.events.append(("Warning", "JudgeFailed", asked.error))
    report.wants.append(
        Want.false(MINING, "JudgeFailed", f"{asked.error}; retrying on the next poll. {message}")
    )
    return report
