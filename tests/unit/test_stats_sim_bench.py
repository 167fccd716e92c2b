"""bench/stats_sim.py --quick runs the operator's decision code on simulated experiments, prints every
RESULT line, and each meets its goal.

The simulation is seeded, so the numbers are the same every run. Goals on error rates allow two
Monte-Carlo standard errors (``stats_sim.mc_slack``): at 200 replications a correct engine's worst A/A
rate (about 0.03 in the full run) lands anywhere up to about 0.07, and a broken one (the old engine's
0.83 under drift) fails by far."""

from __future__ import annotations

import operator
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RESULT = re.compile(r"^RESULT stats_sim (\w+)=([0-9.]+) goal(<=|>=)([0-9.]+)$")
EXPECTED = {
    "aa_false_rollback_max",
    "aa_false_promote_max",
    "drift_false_decision_max",
    "constant_false_decision",
    "rollback_vs_true_horizon_p50_max",
    "rollback_vs_mde_horizon_p50_max",
    "futility_vs_mde_horizon_p50_max",
    "srm_false_block_rate",
    "srm_mismatch_blocked_rate",
    "bandit_regret_vs_uniform",
    "bandit_cost_vs_budget",
}


def run_quick() -> str:
    run = subprocess.run(
        [sys.executable, "bench/stats_sim.py", "--quick"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=170,
        check=True,
    )
    return run.stdout


def parse(stdout: str) -> dict[str, tuple[float, str, float]]:
    results: dict[str, tuple[float, str, float]] = {}
    for line in stdout.splitlines():
        if line.startswith("RESULT"):
            match = RESULT.match(line)
            assert match, f"malformed RESULT line: {line}"
            name, value, op, goal = match.groups()
            assert name not in results, f"RESULT {name} printed twice"
            results[name] = (float(value), op, float(goal))
    return results


def test_quick_simulation_prints_results_that_meet_their_goals() -> None:
    stdout = run_quick()
    results = parse(stdout)
    assert set(results) == EXPECTED
    compare = {"<=": operator.le, ">=": operator.ge}
    missed = {name: r for name, r in results.items() if not compare[r[1]](r[0], r[2])}
    assert not missed, missed
    assert "all goals met" in stdout
    for section in (
        "(a) A/A",
        "(b) A/A under drift",
        "(c) power",
        "(d) contrast",
        "(e) sample-ratio",
        "(f) bandit",
    ):
        assert section in stdout, section
