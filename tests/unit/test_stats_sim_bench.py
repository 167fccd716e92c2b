"""bench/stats_sim.py --quick runs, prints every RESULT line, and each meets its goal (it is seeded)."""

from __future__ import annotations

import operator
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RESULT = re.compile(r"^RESULT stats_sim (\w+)=([0-9.]+) goal(<=|>=)([0-9.]+)$")


def test_quick_simulation_prints_results_that_meet_their_goals() -> None:
    run = subprocess.run(
        [sys.executable, "bench/stats_sim.py", "--quick"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    results = {}
    for line in run.stdout.splitlines():
        if line.startswith("RESULT"):
            match = RESULT.match(line)
            assert match, f"malformed RESULT line: {line}"
            name, value, op, goal = match.groups()
            results[name] = (float(value), op, float(goal))
    assert set(results) == {
        "aa_false_rollback_rate",
        "aa_false_promote_rate",
        "aa_false_rollback_rate_with_steps",
        "samples_to_rollback_ratio",
        "bandit_regret_vs_uniform",
        "bandit_cost_vs_budget",
    }
    compare = {"<=": operator.le, ">=": operator.ge}
    missed = {name: r for name, r in results.items() if not compare[r[1]](r[0], r[2])}
    assert not missed, missed
    assert "Flagger-style threshold" in run.stdout
