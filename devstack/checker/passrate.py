"""A pass rate with its Wilson 95 % interval: the one place both the held-out measurements and the
statistics benchmark (bench/stats_sim.py, for Monte-Carlo error) take it from. Pure arithmetic, no
model libraries, so the benchmark imports it cheaply."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class PassRate:
    passed: int
    tasks: int

    @property
    def rate(self) -> float:
        return self.passed / self.tasks if self.tasks else 0.0

    def interval(self, z: float = 1.96) -> tuple[float, float]:
        """Wilson score interval: honest near 0 and 1, where the normal one is not."""
        n, p = self.tasks, self.rate
        if n == 0:
            return 0.0, 1.0
        centre = (p + z * z / (2 * n)) / (1 + z * z / n)
        half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
        return max(0.0, centre - half), min(1.0, centre + half)

    def __str__(self) -> str:
        low, high = self.interval()
        return f"{self.rate:.1%} [{low:.1%}, {high:.1%}] ({self.passed}/{self.tasks})"
