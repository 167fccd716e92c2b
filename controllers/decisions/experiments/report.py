"""The experiment report for people: where each variant stands, and how it got there.

An on-call engineer asking "why did this roll back?" wants the numbers the planner saw in one table
and the story in one picture: each variant's mean reward with its confidence sequence, each
challenger's difference to the champion with the band the decision was read from, and how traffic
moved. Everything here is pure: it takes the snapshots ``controllers.store.experiment_series`` reads
and computes with the planner's own functions (``msprt``), so the report cannot disagree with the
decision. The p-value is the running minimum over the snapshots, as in the Experiment's status.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from controllers.decisions.experiments.msprt import (
    Floats,
    always_valid,
    compare_means,
    half_width,
    mean_and_variance,
    mixture_variance,
)
from controllers.decisions.experiments.observations import VariantObservations
from controllers.decisions.experiments.srm import hashed_split

Snapshot = tuple[datetime, dict[str, VariantObservations], dict[str, int]]
Curve = tuple[
    Floats, Floats, Floats, Floats
]  # per snapshot: rewards, mean, variance of the mean, CS half-width


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


def summarize(
    series: Sequence[Snapshot],
    champion: str,
    *,
    alpha: float,
    min_detectable_effect: float,
    weights: Mapping[str, int] | None = None,
) -> list[ReportRow]:
    """One row per variant from the last snapshot; weights default to the last observed split."""
    if not series:
        return []
    tau2 = mixture_variance(min_detectable_effect)
    running: dict[str, float | None] = {}
    for _, observations, _ in series:
        for name, obs in observations.items():
            test = (
                compare_means(obs, observations[champion], alpha=alpha, tau2=tau2)
                if name != champion
                else None
            )
            if test is not None:
                running[name] = always_valid(running.get(name), test.p_value)
    _, last, observed = series[-1]
    shown = weights if weights is not None else observed
    split = hashed_split(last, champion)
    rows = []
    for name, obs in last.items():
        test = compare_means(obs, last[champion], alpha=alpha, tau2=tau2) if name != champion else None
        rows.append(
            ReportRow(
                variant=name,
                role="Champion" if name == champion else "Challenger",
                weight=shown.get(name),
                samples=obs.rewards,
                mean_reward=obs.mean_reward,
                lower=test.lower if test else None,
                upper=test.upper if test else None,
                p_value=running.get(name),
                error_rate=obs.errors / split[name] if split[name] else None,
                latency_p95_ms=obs.latency_p95_ms,
            )
        )
    return sorted(rows, key=lambda row: (row.role != "Champion", row.variant))


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


def render(
    series: Sequence[Snapshot],
    champion: str,
    path: Path,
    *,
    alpha: float,
    min_detectable_effect: float,
    title: str,
) -> None:
    """Write the three-panel PNG: reward with its CS, difference to the champion, traffic share."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tau2, level = mixture_variance(min_detectable_effect), f"{100 * (1 - alpha):g}%"
    times = np.array([when for when, _, _ in series])
    names = sorted(series[-1][1], key=lambda name: (name != champion, name))
    colour = {name: plt.get_cmap("tab10")(index) for index, name in enumerate(names)}
    figure, (rewards, differences, traffic) = plt.subplots(3, 1, figsize=(10, 9), sharex=True, dpi=110)
    stats = {name: _curve(series, name, tau2, alpha) for name in names}
    band = _Band(tau2, alpha, level)
    for name, curve in stats.items():
        role = "champion" if name == champion else "challenger"
        _plot_reward(rewards, times, curve, colour[name], f"{name} ({role})")
        if name != champion:
            _plot_difference(differences, times, curve, stats[champion], band, colour[name], name, champion)
    differences.axhline(0.0, color="black", linewidth=1, linestyle="--")
    _traffic(traffic, series, names, colour)
    _label(rewards, differences, traffic, title, level)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


@dataclass(frozen=True)
class _Band:
    """How wide the confidence sequence is drawn: the mixture variance, alpha and its label."""

    tau2: float
    alpha: float
    level: str


def _plot_reward(axes: Any, times: Any, curve: Curve, colour: Any, label: str) -> None:
    """One variant's mean reward and its CS, from its second reward on."""
    n, mean, _, width = curve
    shown = n >= 2
    axes.plot(times[shown], mean[shown], color=colour, label=label, linewidth=2)
    axes.fill_between(times[shown], (mean - width)[shown], (mean + width)[shown], color=colour, alpha=0.15)


def _plot_difference(
    axes: Any, times: Any, curve: Curve, baseline: Curve, band: _Band, colour: Any, name: str, champion: str
) -> None:
    """A challenger's difference to the champion with its CS, marking where the band first left 0."""
    n, mean, variance, _ = curve
    n0, mean0, variance0, _ = baseline
    both = (n >= 2) & (n0 >= 2)
    difference, spread = mean - mean0, half_width(variance + variance0, band.tau2, band.alpha)
    low, high = difference - spread, difference + spread
    axes.plot(times[both], difference[both], color=colour, label=f"{name} - {champion}", linewidth=2)
    axes.fill_between(times[both], low[both], high[both], color=colour, alpha=0.2, label=f"{band.level} CS")
    decisive = np.flatnonzero(both & ((high < 0) | (low > 0)))
    if decisive.size:
        when = times[decisive[0]]
        axes.axvline(when, color=colour, linestyle=":", linewidth=1.5)
        verdict = "worse" if high[decisive[0]] < 0 else "better"
        axes.annotate(
            f" {name} significantly {verdict}",
            (when, 0.04),
            xycoords=("data", "axes fraction"),
            color=colour,
            fontsize="small",
        )
    axes.set_ylim(*_limits(low[both], high[both]))


def _label(rewards: Any, differences: Any, traffic: Any, title: str, level: str) -> None:
    """Titles, axis labels, grids, legends and the time axis of the three panels."""
    import matplotlib.dates as mdates

    rewards.set_ylim(-0.05, 1.05)
    rewards.set_ylabel("mean reward")
    rewards.set_title(f"{title}: mean reward per variant ({level} confidence sequence)")
    differences.set_ylabel("difference in reward")
    differences.set_title(f"difference to the champion: roll back below 0, promote above 0 ({level} CS)")
    for axes in (rewards, differences, traffic):
        axes.grid(alpha=0.3)
        axes.legend(loc="upper left", fontsize="small")
    locator = mdates.AutoDateLocator()  # type: ignore[no-untyped-call]
    traffic.xaxis.set_major_locator(locator)
    traffic.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))  # type: ignore[no-untyped-call]


def _curve(series: Sequence[Snapshot], name: str, tau2: float, alpha: float) -> Curve:
    """(rewards, mean, variance of the mean, CS half-width) of one variant at every snapshot."""
    obs = [snapshot[name] for _, snapshot, _ in series]
    n = np.array([o.rewards for o in obs], dtype=np.float64)
    mean, variance = mean_and_variance(n, [o.reward_sum for o in obs], [o.reward_sum_squares for o in obs])
    return n, mean, variance, half_width(variance, tau2, alpha)


def _limits(low: Floats, high: Floats) -> tuple[float, float]:
    """Y limits that show the settled part of the band; the first, very wide looks would flatten it."""
    if low.size == 0:
        return -1.0, 1.0
    settled = slice(low.size // 4, None)
    bottom, top = float(np.min(low[settled])), float(np.max(high[settled]))
    pad = 0.25 * max(top - bottom, 0.02)
    return max(-1.0, min(bottom, 0.0) - pad), min(1.0, max(top, 0.0) + pad)


def _traffic(axes: Any, series: Sequence[Snapshot], names: list[str], colour: Mapping[str, Any]) -> None:
    """Each bucket's observed split, drawn over the bucket it describes (snapshots mark bucket ends)."""
    ends = [when for when, _, _ in series]
    step = ends[1] - ends[0] if len(ends) > 1 else None
    starts = [ends[0] - step if step else ends[0], *ends[:-1]]
    shares = np.array([[weights.get(name, 0) for _, _, weights in series] for name in names])
    edges = [*starts, ends[-1]]
    padded = np.concatenate([shares, shares[:, -1:]], axis=1)
    axes.stackplot(
        edges, padded, labels=names, colors=[colour[name] for name in names], alpha=0.8, step="post"
    )
    axes.set_ylabel("share of requests (%)")
    axes.set_ylim(0, 100)
    axes.set_title("traffic per variant, as assigned")
