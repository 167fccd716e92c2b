"""The experiment report for people: where each variant stands, and how it got there.

An on-call engineer asking "why did this roll back?" wants the numbers the decision was made on in
one table and the story in one picture. Two rules keep the report from telling a different story:

* One source of numbers. Once an Experiment is decided its status rows are frozen (the same figures
  the Event and ``kubectl get`` show), and the table is exactly those rows (``from_status``). Before a
  decision the table is computed from the store up to now (``summarize``).
* The planner's arithmetic. The story is recomputed with the functions the planner decides with
  (``sequential``): at every snapshot the confidence sequence of challenger minus champion over the
  rewards recorded by then, kept as the running intersection over the snapshots and with the running
  minimum p-value, as the status keeps them over the planner's looks; per-arm means weighted by
  1 / assignment probability (``arm_mean``); samples are the rewards of requests assigned to the arm.
  The snapshots are not the planner's looks, so before a decision the figures can differ from the
  status a little (each look narrows the sequence a little differently); both are valid.

Everything here is pure: it takes the ``Series`` that ``controllers.store.experiment_series`` reads;
``report_plot`` draws the ``Story``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from controllers.api.experiment import VariantStatus
from controllers.decisions.experiments.contrast import Contrast, arm_mean
from controllers.decisions.experiments.observations import RewardStream, VariantObservations
from controllers.decisions.experiments.sequential import Floats, SequenceState, extend, interval
from controllers.decisions.experiments.srm import hashed_split


@dataclass(frozen=True)
class Series:
    """One experiment's data from its first request to the end of the report (now, or decidedAt)."""

    start: datetime  # the first request: the left edge of the first interval
    edges: tuple[datetime, ...]  # the snapshots, oldest first; the last one is the end
    stream: RewardStream  # the rewards recorded up to the end, in the order they were recorded
    recorded: Floats  # when each reward was recorded (POSIX seconds), non-decreasing
    traffic: tuple[Mapping[str, float], ...]  # per interval (ending at each edge): share of requests, %
    observations: Mapping[str, VariantObservations]  # requests, errors, latency, cost up to the end

    def counts(self) -> list[int]:
        """How many rewards had been recorded by each snapshot."""
        stamps = [edge.timestamp() for edge in self.edges]
        return [int(n) for n in np.searchsorted(self.recorded, stamps, side="right")]

    def prefix(self, count: int) -> RewardStream:
        """The first ``count`` rewards: what a look at that instant saw."""
        stream = self.stream
        return RewardStream(stream.names, stream.arm[:count], stream.shares[:count], stream.reward[:count])

    def names(self, champion: str) -> list[str]:
        """Every variant seen (in traffic or rewards) and the champion, the champion first."""
        seen = set(self.observations) | set(self.stream.names) | {champion}
        return sorted(seen, key=lambda name: (name != champion, name))


@dataclass(frozen=True)
class Story:
    """Per snapshot: each variant's (rewards, weighted mean) and each challenger's narrowed contrast."""

    times: tuple[datetime, ...]
    means: dict[str, list[tuple[int, float | None]]]
    contrasts: dict[str, list[Contrast]]


def story(series: Series, champion: str, *, alpha: float, min_detectable_effect: float) -> Story:
    """The snapshots computed with the planner's functions (module docstring)."""
    counts = series.counts()
    means = {
        name: [arm_mean(series.prefix(count), name) for count in counts] for name in series.names(champion)
    }
    contrasts = {
        name: _sequence(series, counts, means, name, champion, alpha, min_detectable_effect)
        for name in means
        if name != champion
    }
    return Story(series.edges, means, contrasts)


def _sequence(
    series: Series,
    counts: Sequence[int],
    means: Mapping[str, Sequence[tuple[int, float | None]]],
    challenger: str,
    champion: str,
    alpha: float,
    min_detectable_effect: float,
) -> list[Contrast]:
    """The confidence sequence at each snapshot, extended by the rewards recorded since the one before
    and intersected with it: what a planner looking at these instants would hold in its status."""
    stream = series.stream
    in_c, p_c = stream.of(challenger)
    in_0, p_0 = stream.of(champion)
    state, done, looks = SequenceState.empty(), 0, list[Contrast]()
    for index, count in enumerate(counts):
        block = slice(done, count)
        state = extend(
            state,
            stream.reward[block],
            in_c[block],
            in_0[block],
            p_c[block],
            p_0[block],
            min_detectable_effect,
        )
        done = count
        bounds = interval(state, alpha)
        (n_c, mean_c), (n_0, mean_0) = means[challenger][index], means[champion][index]
        look = Contrast(
            n_c, n_0, mean_c, mean_0, float(bounds.lower), float(bounds.upper), float(bounds.p_value())
        )
        if looks:
            look = look.narrowed(looks[-1].lower, looks[-1].upper, looks[-1].p_value)
        looks.append(look)
    return looks


@dataclass(frozen=True)
class ReportRow:
    variant: str
    role: str
    weight: int | None
    samples: int
    mean_reward: float | None
    lower: float | None
    upper: float | None
    p_value: float | None
    error_rate: float | None
    latency_p95_ms: float | None


def _role(name: str, champion: str) -> str:
    return "Champion" if name == champion else "Challenger"


def _ordered(rows: list[ReportRow]) -> list[ReportRow]:
    return sorted(rows, key=lambda row: (row.role != "Champion", row.variant))


def summarize(
    series: Series, champion: str, told: Story, weights: Mapping[str, int] | None = None
) -> list[ReportRow]:
    """One row per variant as of the last snapshot; weights default to the shares of the last
    interval that had requests."""
    busy = [shares for shares in series.traffic if sum(shares.values()) > 0]
    shown = weights if weights is not None else percentages(busy[-1] if busy else {})
    split = hashed_split(series.observations, champion)
    rows = []
    for name, means in told.means.items():
        samples, mean = means[-1]
        test = told.contrasts[name][-1] if name in told.contrasts else None
        obs = series.observations.get(name)
        requests = split.get(name, 0)
        rows.append(
            ReportRow(
                variant=name,
                role=_role(name, champion),
                weight=shown.get(name),
                samples=samples,
                mean_reward=mean,
                lower=test.lower if test else None,
                upper=test.upper if test else None,
                p_value=test.p_value if test else None,
                error_rate=min(1.0, obs.errors / requests) if obs and requests else None,
                latency_p95_ms=obs.latency_p95_ms if obs else None,
            )
        )
    return _ordered(rows)


def from_status(variants: Sequence[VariantStatus], champion: str) -> list[ReportRow]:
    """The rows of a decided Experiment's status, as they are: the figures the decision was made on."""
    return _ordered(
        [
            ReportRow(
                variant=row.name,
                role=_role(row.name, champion),
                weight=row.weight,
                samples=row.samples,
                mean_reward=row.mean_reward,
                lower=row.confidence_lower,
                upper=row.confidence_upper,
                p_value=row.p_value,
                error_rate=row.error_rate,
                latency_p95_ms=row.latency_p95_ms,
            )
            for row in variants
        ]
    )


def percentages(shares: Mapping[str, float]) -> dict[str, int]:
    """Whole percents summing to 100 (largest remainder); all zero when there is nothing to split."""
    total = sum(shares.values())
    if total <= 0:
        return dict.fromkeys(shares, 0)
    exact = {name: 100.0 * share / total for name, share in shares.items()}
    whole = {name: int(value) for name, value in exact.items()}
    for name in sorted(shares, key=lambda n: (whole[n] - exact[n], n))[: 100 - sum(whole.values())]:
        whole[name] += 1
    return whole


def decision_label(decision: str, decided_at: datetime) -> str:
    """'RollBack 12:03:04': the decision and its time of day in UTC, as the plot marks it."""
    when = decided_at if decided_at.tzinfo else decided_at.replace(tzinfo=UTC)
    return f"{decision} {when.astimezone(UTC):%H:%M:%S}"


def format_table(rows: Sequence[ReportRow], alpha: float) -> str:
    """A kubectl-style table: upper-case headers, columns padded to their widest cell."""
    level = f"{100 * (1 - alpha):g}% CS (VS CHAMPION)"
    header = [
        "VARIANT",
        "ROLE",
        "WEIGHT",
        "SAMPLES",
        "MEAN REWARD",
        level,
        "P-VALUE",
        "ERROR RATE",
        "P95 LATENCY",
    ]
    cells = [header]
    for row in rows:
        cells.append(
            [
                row.variant,
                row.role,
                "-" if row.weight is None else f"{row.weight}%",
                str(row.samples),
                _num(row.mean_reward, "{:.3f}"),
                "-" if row.lower is None or row.upper is None else f"[{row.lower:+.3f}, {row.upper:+.3f}]",
                _num(row.p_value, "{:.2g}" if (row.p_value or 1) < 0.01 else "{:.3f}"),
                _num(row.error_rate, "{:.2%}"),
                _num(row.latency_p95_ms, "{:.0f}ms"),
            ]
        )
    widths = [max(len(line[i]) for line in cells) for i in range(len(header))]
    return "\n".join(
        "   ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in cells
    )


def _num(value: float | None, form: str) -> str:
    return "-" if value is None else form.format(value)
