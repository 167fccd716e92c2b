"""The experiment report's picture: three panels over one time axis, from first request to the end.

1. Each variant's mean reward, each request weighted by 1 / the probability of its assignment (the
   planner's ``arm_mean``). No band: a per-arm interval would need a test the planner does not run,
   and the decision is read from the difference below, whose band is the planner's own.
2. Each challenger's difference to the champion (the difference of those means) inside its
   confidence sequence, kept as the running intersection over the snapshots.
3. The share of requests per variant in each interval, by the weights the router assigned them with.

A decided experiment's panels end at decidedAt, marked with the decision ("RollBack 12:03:04"):
what happened afterwards (a promoted champion's traffic, say) is not part of its evidence. At the
mark, each challenger's sequence as its status holds it (the planner's own looks, the figures of the
table) is drawn as a bar, beside the band recomputed over the report's snapshots.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from controllers.decisions.experiments.report import Series, Story, decision_label
from controllers.decisions.experiments.sequential import Floats


@dataclass(frozen=True)
class Decided:
    """A final decision: what, when, and each challenger's (lower, upper) in the status as decided."""

    decision: str
    at: datetime
    bands: Mapping[str, tuple[float, float]] = field(default_factory=dict)


def render(
    series: Series,
    told: Story,
    champion: str,
    path: Path,
    *,
    alpha: float,
    title: str,
    decided: Decided | None = None,
) -> None:
    """Write the three-panel PNG; ``decided`` marks the end of a decided experiment."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    level = f"{100 * (1 - alpha):g}%"
    times = np.array(told.times)
    names = list(told.means)
    colour = {name: plt.get_cmap("tab10")(index % 10) for index, name in enumerate(names)}
    figure, (rewards, differences, traffic) = plt.subplots(3, 1, figsize=(10, 9), sharex=True, dpi=110)
    for name, means in told.means.items():
        role = "champion" if name == champion else "challenger"
        _plot_reward(rewards, times, means, colour[name], f"{name} ({role})")
    limits = [
        _plot_difference(differences, times, told, name, champion, colour[name], level)
        for name in told.contrasts
    ]
    if limits:
        differences.set_ylim(min(low for low, _ in limits), max(high for _, high in limits))
    differences.axhline(0.0, color="black", linewidth=1, linestyle="--")
    _traffic(traffic, series, names, colour)
    if decided is not None:
        _mark(decided, (rewards, differences, traffic), colour)
    _label(rewards, differences, traffic, title, level)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def _plot_reward(
    axes: Any, times: Any, means: Sequence[tuple[int, float | None]], colour: Any, label: str
) -> None:
    """One variant's weighted mean reward, from its first reward on."""
    shown = np.array([count > 0 and mean is not None for count, mean in means])
    mean = np.array([np.nan if value is None else value for _, value in means], dtype=np.float64)
    axes.plot(times[shown], mean[shown], color=colour, label=label, linewidth=2)


def _plot_difference(
    axes: Any, times: Any, told: Story, name: str, champion: str, colour: Any, level: str
) -> tuple[float, float]:
    """A challenger's estimated difference inside its confidence sequence; returns y limits for it."""
    looks = told.contrasts[name]
    shown = np.array([look.estimate is not None for look in looks])
    estimate = np.array([np.nan if look.estimate is None else look.estimate for look in looks])
    low = np.array([look.lower for look in looks])
    high = np.array([look.upper for look in looks])
    axes.plot(times[shown], estimate[shown], color=colour, label=f"{name} - {champion}", linewidth=2)
    axes.fill_between(
        times[shown], low[shown], high[shown], color=colour, alpha=0.2, label=f"{level} CS ({name})"
    )
    return _limits(low[shown], high[shown])


def _mark(decided: Decided, panels: Sequence[Any], colour: Mapping[str, Any]) -> None:
    """A vertical line at decidedAt on every panel, labelled with the decision on the first, and the
    status's sequences as bars on the second."""
    when = decided.at
    for axes in panels:
        axes.axvline(when, color="black", linewidth=1.5)
    for name, (lower, upper) in decided.bands.items():
        panels[1].vlines(
            when,
            lower,
            upper,
            color=colour.get(name, "black"),
            linewidth=6,
            label=f"{name}: CS in the status",
        )
    panels[0].annotate(
        f"{decision_label(decided.decision, when)} ",
        (when, 0.96),
        xycoords=("data", "axes fraction"),
        ha="right",
        va="top",
        fontsize="small",
        fontweight="bold",
    )


def _label(rewards: Any, differences: Any, traffic: Any, title: str, level: str) -> None:
    """Titles, axis labels, grids, legends and the time axis of the three panels."""
    import matplotlib.dates as mdates

    rewards.set_ylim(-0.05, 1.05)
    rewards.set_ylabel("mean reward")
    rewards.set_title(f"{title}: mean reward per variant (weighted by 1 / assignment probability)")
    differences.set_ylabel("difference in reward")
    differences.set_title(f"difference to the champion with its {level} confidence sequence")
    for axes in (rewards, differences, traffic):
        axes.grid(alpha=0.3)
        if axes.get_legend_handles_labels()[0]:
            axes.legend(loc="upper left", fontsize="small")
    locator = mdates.AutoDateLocator()  # type: ignore[no-untyped-call]
    traffic.xaxis.set_major_locator(locator)
    traffic.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))  # type: ignore[no-untyped-call]


def _limits(low: Floats, high: Floats) -> tuple[float, float]:
    """Y limits that show the settled part of the band; the first, very wide looks would flatten it."""
    if low.size == 0:
        return -1.0, 1.0
    settled = slice(low.size // 4, None)
    bottom, top = float(np.min(low[settled])), float(np.max(high[settled]))
    pad = 0.25 * max(top - bottom, 0.02)
    return max(-1.0, min(bottom, 0.0) - pad), min(1.0, max(top, 0.0) + pad)


def traffic_steps(series: Series, names: Sequence[str]) -> tuple[list[datetime], Floats]:
    """The traffic panel's data: interval edges (first request, then each snapshot) and per variant
    the share of each interval, repeated at the last edge (a step plot needs a value there) and not
    carried past it."""
    edges = [series.start, *series.edges]
    shares = np.array([[interval.get(name, 0.0) for interval in series.traffic] for name in names])
    return edges, np.concatenate([shares, shares[:, -1:]], axis=1)


def _traffic(axes: Any, series: Series, names: list[str], colour: dict[str, Any]) -> None:
    """Each interval's share of requests per variant, drawn over the interval it describes."""
    edges, shares = traffic_steps(series, names)
    axes.stackplot(
        edges, shares, labels=names, colors=[colour[name] for name in names], alpha=0.8, step="post"
    )
    axes.set_ylabel("share of requests (%)")
    axes.set_ylim(0, 100)
    axes.set_title("traffic per variant, by the weights the router assigned it with")
