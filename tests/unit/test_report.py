"""The report on the planner's own arithmetic: sequential bands over reward prefixes, weighted means,
a decided Experiment's status as the table, and a plot that ends at decidedAt."""

from __future__ import annotations

import ast
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from controllers.api.experiment import VariantStatus
from controllers.decisions.experiments import report as report_module
from controllers.decisions.experiments.contrast import arm_mean, contrast
from controllers.decisions.experiments.observations import RewardStream, VariantObservations
from controllers.decisions.experiments.report import (
    Series,
    decision_label,
    format_table,
    from_status,
    story,
    summarize,
)
from controllers.decisions.experiments.report_plot import Decided, render, traffic_steps

T0 = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)
STEPS = ((0, 5), (1_000, 25), (2_000, 50))  # from request i on, the challenger's weight in percent


def challenger_weight(i: int) -> int:
    return next(weight for start, weight in reversed(STEPS) if i >= start)


def simulated(
    requests: int = 3_000, buckets: int = 12, challenger_rate: float = 0.45, end: datetime | None = None
) -> Series:
    """Requests every 10 s under the weight steps, each rewarded 30 s later; the champion's success
    rate is 0.6. The snapshots run from the first request to ``end`` (default: the last reward)."""
    rng = np.random.default_rng(7)
    rows, recorded, served = [], [], {"champion": 0, "challenger": 0}
    for i in range(requests):
        share = challenger_weight(i)
        variant = "challenger" if rng.random() < share / 100 else "champion"
        served[variant] += 1
        rate = challenger_rate if variant == "challenger" else 0.6
        rows.append((variant, {"challenger": share, "champion": 100 - share}, float(rng.random() < rate)))
        recorded.append((T0 + timedelta(seconds=10 * i + 30)).timestamp())
    last = datetime.fromtimestamp(recorded[-1], UTC)
    end = end or last
    edges = tuple(T0 + (end - T0) * (k / buckets) for k in range(1, buckets + 1))
    stamps = np.array([(T0 + timedelta(seconds=10 * i)).timestamp() for i in range(requests)])
    ends = np.searchsorted(stamps, [edge.timestamp() for edge in edges], side="right")
    traffic = []
    for begin, stop in zip([0, *ends[:-1]], ends, strict=True):
        mean = float(np.mean([challenger_weight(i) for i in range(begin, stop)])) if stop > begin else 0.0
        traffic.append({"challenger": mean, "champion": 100.0 - mean if stop > begin else 0.0})
    return Series(
        start=T0,
        edges=edges,
        stream=RewardStream.from_rows(rows),
        recorded=np.array(recorded),
        traffic=tuple(traffic),
        observations={
            "champion": VariantObservations("champion", assigned=served["champion"], latency_p95_ms=210.0),
            "challenger": VariantObservations(
                "challenger", assigned=served["challenger"], errors=7, latency_p95_ms=260.0
            ),
        },
    )


def test_the_band_is_the_sequential_test_over_each_prefix_kept_as_a_running_intersection() -> None:
    series = simulated()
    told = story(series, "champion", alpha=0.05, min_detectable_effect=0.05)
    looks = told.contrasts["challenger"]
    assert len(looks) == len(series.edges) == 12
    lowest, highest, smallest = -1.0, 1.0, 1.0
    for count, look in zip(series.counts(), looks, strict=True):
        fresh = contrast(
            series.prefix(count), "challenger", "champion", alpha=0.05, min_detectable_effect=0.05
        )
        lowest, highest = max(lowest, fresh.lower), min(highest, fresh.upper)
        smallest = min(smallest, fresh.p_value)
        assert look.lower == pytest.approx(lowest, abs=1e-9)
        assert look.upper == pytest.approx(max(highest, lowest), abs=1e-9)
        assert look.p_value == pytest.approx(smallest, rel=1e-9)
    lower, upper = np.array([look.lower for look in looks]), np.array([look.upper for look in looks])
    assert np.all(np.diff(lower) >= 0)
    assert np.all(np.diff(upper - lower) <= 0)
    assert np.all(np.diff([look.p_value for look in looks]) <= 0)
    assert upper[-1] < 0  # 0.45 against 0.6: shown worse
    assert upper[0] - lower[0] > 2 * (upper[-1] - lower[-1])  # and it did narrow


def test_means_are_weighted_by_assignment_probability_and_samples_are_assigned_rewards() -> None:
    series = simulated()
    told = story(series, "champion", alpha=0.05, min_detectable_effect=0.05)
    for name in ("champion", "challenger"):
        for count, (samples, mean) in zip(series.counts(), told.means[name], strict=True):
            assert (samples, mean) == arm_mean(series.prefix(count), name)
    final = told.contrasts["challenger"][-1]
    assert final.challenger_rewards == int(
        (series.stream.arm == series.stream.names.index("challenger")).sum()
    )
    assert final.estimate == pytest.approx(told.means["challenger"][-1][1] - told.means["champion"][-1][1])


def test_summary_before_a_decision_is_the_last_snapshot() -> None:
    series = simulated()
    told = story(series, "champion", alpha=0.05, min_detectable_effect=0.05)
    champion, challenger = summarize(series, "champion", told)
    assert (champion.variant, champion.role, challenger.role) == ("champion", "Champion", "Challenger")
    assert champion.lower is None
    assert champion.p_value is None
    last = told.contrasts["challenger"][-1]
    assert (challenger.lower, challenger.upper, challenger.p_value) == (last.lower, last.upper, last.p_value)
    assert (challenger.samples, challenger.mean_reward) == told.means["challenger"][-1]
    assert challenger.weight == 50  # the last interval's router weights
    assert challenger.error_rate == 7 / series.observations["challenger"].assigned
    assert challenger.latency_p95_ms == 260.0
    rows = summarize(series, "champion", told, {"champion": 100, "challenger": 0})
    assert [row.weight for row in rows] == [100, 0]


STATUS = [
    VariantStatus(
        name="challenger",
        weight=0,
        samples=512,
        mean_reward=0.4421,
        confidence_lower=-0.1834,
        confidence_upper=-0.0123,
        p_value=0.00042,
        error_rate=0.0137,
        latency_p95_ms=263.0,
        cost_per_request=410.0,
    ),
    VariantStatus(
        name="champion",
        weight=100,
        samples=1_533,
        mean_reward=0.6012,
        error_rate=0.0,
        latency_p95_ms=211.0,
        cost_per_request=402.0,
    ),
]


def test_a_decided_experiment_shows_exactly_its_status() -> None:
    rows = from_status(STATUS, "champion")
    assert [row.variant for row in rows] == ["champion", "challenger"]
    for row in rows:
        status = next(s for s in STATUS if s.name == row.variant)
        assert (row.weight, row.samples, row.mean_reward) == (
            status.weight,
            status.samples,
            status.mean_reward,
        )
        assert (row.lower, row.upper, row.p_value) == (
            status.confidence_lower,
            status.confidence_upper,
            status.p_value,
        )
        assert (row.error_rate, row.latency_p95_ms) == (status.error_rate, status.latency_p95_ms)
    lines = format_table(rows, 0.05).splitlines()
    assert lines[2].split() == [
        "challenger",
        "Challenger",
        "0%",
        "512",
        "0.442",
        "[-0.183,",
        "-0.012]",
        "0.00042",
        "1.37%",
        "263ms",
    ]


def test_the_plot_data_of_a_decided_experiment_ends_at_decided_at(tmp_path: Path) -> None:
    decided_at = T0 + timedelta(hours=5, minutes=3, seconds=4)
    series = simulated(end=decided_at)
    told = story(series, "champion", alpha=0.05, min_detectable_effect=0.05)
    assert told.times[-1] == decided_at
    assert series.counts()[-1] < len(series.stream)  # later rewards exist in the data: not shown
    edges, shares = traffic_steps(series, ["champion", "challenger"])
    assert edges[0] == T0
    assert edges[-1] == decided_at
    assert shares.shape == (2, len(edges))  # one value per edge: nothing carried past decidedAt
    assert decision_label("RollBack", decided_at) == "RollBack 13:03:04"
    path = tmp_path / "decided.png"
    render(
        series,
        told,
        "champion",
        path,
        alpha=0.05,
        title="team/coder-exp",
        decided=Decided("RollBack", decided_at, {"challenger": (-0.21, -0.03)}),
    )
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert path.stat().st_size > 40_000  # three panels with lines and bands, not an empty canvas


def test_the_report_computes_with_the_sequential_test_only() -> None:
    tree = ast.parse(Path(report_module.__file__).read_text())
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert "controllers.decisions.experiments.sequential" in imported
    assert not any(module and module.endswith("msprt") for module in imported)


def test_table_has_one_aligned_line_per_variant() -> None:
    series = simulated(requests=600)
    told = story(series, "champion", alpha=0.05, min_detectable_effect=0.05)
    rows = summarize(series, "champion", told, {"champion": 100, "challenger": 0})
    lines = format_table(rows, 0.05).splitlines()
    assert len(lines) == 3
    assert lines[0].startswith("VARIANT")
    assert "95% CS (VS CHAMPION)" in lines[0]
    column = lines[0].index("WEIGHT")
    assert lines[1][column:].startswith("100%")
    assert lines[2][column:].startswith("0%")
    assert lines[1].split()[-4:] == ["-", "-", "0.00%", "210ms"]
