"""The report's table: the planner's numbers, the running p-value, kubectl-style columns."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from controllers.decisions.experiments.observations import VariantObservations
from controllers.decisions.experiments.report import format_table, summarize

T0 = datetime(2026, 6, 1, tzinfo=UTC)


def snapshot(
    hour: int, n: int, challenger_mean: float
) -> tuple[datetime, dict[str, VariantObservations], dict[str, int]]:
    def obs(name: str, count: int, mean: float, errors: int = 0) -> VariantObservations:
        return VariantObservations(
            name=name,
            assigned=count,
            rewards=count,
            reward_sum=count * mean,
            reward_sum_squares=count * mean,
            errors=errors,
            latency_p95_ms=210.0,
        )

    return (
        T0 + timedelta(hours=hour),
        {
            "champion": obs("champion", 3 * n, 0.6),
            "challenger": obs("challenger", n, challenger_mean, errors=n // 50),
        },
        {"champion": 75, "challenger": 25},
    )


def test_summary_reads_the_last_snapshot_and_keeps_the_smallest_p_value_seen() -> None:
    # A challenger that looked clearly worse at hour 2 and less so at hour 3.
    series = [snapshot(1, 100, 0.5), snapshot(2, 400, 0.40), snapshot(3, 800, 0.55)]
    rows = summarize(series, "champion", alpha=0.05, min_detectable_effect=0.05)
    assert [row.variant for row in rows] == ["champion", "challenger"]
    champion, challenger = rows
    assert champion.lower is None
    assert champion.p_value is None
    assert challenger.samples == 800
    assert challenger.weight == 25
    assert challenger.lower is not None
    assert challenger.upper is not None
    assert challenger.lower < -0.05 < challenger.upper
    assert challenger.p_value is not None
    assert challenger.p_value < 1e-4  # from hour 2, not from the last look
    assert challenger.error_rate == 16 / 800


def test_table_has_one_aligned_line_per_variant() -> None:
    rows = summarize(
        [snapshot(1, 400, 0.40)],
        "champion",
        alpha=0.05,
        min_detectable_effect=0.05,
        weights={"champion": 100, "challenger": 0},
    )
    lines = format_table(rows, 0.05).splitlines()
    assert len(lines) == 3
    assert lines[0].startswith("VARIANT")
    assert "95% CS (VS CHAMPION)" in lines[0]
    column = lines[0].index("WEIGHT")
    assert lines[1][column:].startswith("100%")
    assert lines[2][column:].startswith("0%")
    assert lines[1].split()[-4:] == ["-", "-", "0.00%", "210ms"]
