"""Simulated experiments through the operator's own decision code: are the error rates what they claim?

Every replication is one A/B experiment. Requests arrive in blocks of BLOCK (a look after every block,
as the operator looks on every reconcile); each request goes to the challenger with the share of the
step its replication is at, and keeps that share; its reward arrives (at once, or after a random
delay) and joins the stream in arrival order. After each block every replication does what the
planner does, with the planner's functions, vectorised over thousands of replications at once:

* ``sequential.extend`` adds the rewards that arrived to its e-process state (extending block by
  block gives the same state as the operator's recomputation over the whole stream) and
  ``sequential.interval`` gives the confidence sequence [L, U] of challenger minus champion;
* the running intersection over the looks is kept (L = max, U = min, as ``Contrast.narrowed``);
* ``decision_rule.verdict`` decides from it and the rewards assigned to each arm. ADVANCE moves the
  replication to the next step's share for every later request; ROLL_BACK, PROMOTE and FUTILE
  (Inconclusive) end it; HORIZON requests without a decision stand for maxDuration (undecided).

Settings are the ``RolloutSettings`` defaults (alpha 0.05, MDE 0.05, tolerance 0.02, 200 rewards per
variant, Superiority) unless a scenario says otherwise. Splits: "1:19" is a fixed 5 % challenger share
(a single step, so it can be promoted there), "50/50" a fixed half, "planner" the steps 5 -> 25 -> 50.

(a)  A/A error rates: Bernoulli rewards at 0.01 ... 0.99, discrete skewed, bimodal and mostly-1.0
     rewards, constant rewards, minimum samples 20/50/200; (a2) the worst of them looked at five times
     as often. Each rate with its Monte-Carlo standard error and the upper end of its 95 % Wilson
     interval.
(b)  A/A under a drift of the mean both arms share, over the planner's steps, with and without
     delayed rewards (exponential delays: rewards arrive out of order and after the step they were
     assigned under).
(c)  Power: a challenger worse by 2 x MDE, challenger rewards to the first RollBack verdict against the
     per-arm sizes of a fixed-horizon test (two-sided alpha 0.05, power 0.8, true variances) for the
     true effect and for the MDE; looked at every FREQUENT_BLOCK requests, so that the time to a
     decision is the test's and not the wait for the next look (every BLOCK is shown beside it). A/A
     futility: challenger rewards to Inconclusive against the MDE-sized horizon.
(d)  The contrast: a fixed-horizon z-test acted on at every block.
(e)  The sequential sample-ratio test (``srm.check_sample_ratio``) looked at every block: false blocks
     of a correct split, and how fast a challenger served 10 % at weight 50 % is blocked.
(f)  The Thompson bandit (``bandit.thompson_weights``): regret, and a cost budget.

What the sequential test buys is validity under continuous looking, not speed. A fixed-horizon test
sized for the true effect needs about as many samples as the sequential test takes to roll that
effect back, and one sized for the MDE needs more — but a fixed-horizon test is valid only if nobody
acts on it before its horizon; acted on at every look, as an operator looks, it decides falsely far
more often than alpha (d). The sequential test keeps each error below alpha however often it is looked
at, under weight steps, drift and delayed rewards.

Machine-readable lines, one per goal: ``RESULT stats_sim <name>=<value> goal<=<x>`` (or ``goal>=``);
missed goals are listed after them. Goals on a rate allow two Monte-Carlo standard errors of a rate
at the goal (``mc_slack``), so a correct engine passes at any seed; the tables and the "worst A/A" lines
say whether every rate and its MC upper end are below alpha itself. Each section has its own seeded
random stream: every run prints the same numbers.

    PYTHONPATH=. .venv/bin/python bench/stats_sim.py [--quick]

``--quick`` (200 replications per scenario; tests/unit/test_stats_sim_bench.py) takes about 35 s on
two cores; the full run (2,000 replications per scenario) about 5.5 minutes (both measured on a
two-core machine that other jobs were also using).
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, fields, replace
from statistics import NormalDist
from typing import Protocol

import numpy as np
import numpy.typing as npt

from controllers.api.serving_settings import RolloutSettings
from controllers.decisions.experiments.bandit import thompson_weights
from controllers.decisions.experiments.decision_rule import Rule, Verdict, verdict
from controllers.decisions.experiments.observations import AllocationEpoch, VariantObservations
from controllers.decisions.experiments.sequential import SequenceState, extend, interval
from controllers.decisions.experiments.srm import MISMATCH_P_VALUE, check_sample_ratio
from devstack.checker.passrate import PassRate

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]
Bools = npt.NDArray[np.bool_]

SEED = 20260301
DEFAULTS = RolloutSettings()
ALPHA = DEFAULTS.alpha
MDE = DEFAULTS.min_detectable_effect
BLOCK = 50  # rewarded requests between two looks (without delay)
HORIZON = 100_000  # requests per replication before it counts as undecided (maxDuration)
ROWS_PER_BATCH = 16_000  # replications simulated together (memory stays below about 1 GB)
Z_POWER = NormalDist().inv_cdf(1 - ALPHA / 2) + NormalDist().inv_cdf(0.8)
ONE_TO_NINETEEN, EVEN, PLANNER = (5,), (50,), tuple(DEFAULTS.steps)
UNDECIDED = -1
FINAL = (Verdict.ROLL_BACK, Verdict.PROMOTE, Verdict.FUTILE)


# ---------------------------------------------------------------------------------------------
# Reward models


class Rewards(Protocol):
    def draw(self, rng: np.random.Generator, challenger: Bools, assigned_at: Floats) -> Floats: ...


@dataclass(frozen=True)
class Mixture:
    """Rewards from a mixture of point masses and uniform intervals: parts are (weight, low, high)."""

    parts: tuple[tuple[float, float, float], ...]

    def sample(self, rng: np.random.Generator, shape: tuple[int, ...]) -> Floats:
        weight, low, high = (np.array(column) for column in zip(*self.parts, strict=True))
        part = np.searchsorted(np.cumsum(weight) / weight.sum(), rng.random(shape), side="right")
        part = np.minimum(part, len(weight) - 1)
        width = high[part] - low[part]
        result: Floats = low[part] + np.where(width > 0, width * rng.random(shape), 0.0)
        return result

    @property
    def mean(self) -> float:
        total = sum(w for w, _, _ in self.parts)
        return sum(w * (lo + hi) / 2 for w, lo, hi in self.parts) / total

    @property
    def variance(self) -> float:
        total = sum(w for w, _, _ in self.parts)
        second = sum(w * (lo * lo + lo * hi + hi * hi) / 3 for w, lo, hi in self.parts) / total
        return second - self.mean**2


def bernoulli(p: float) -> Mixture:
    return Mixture(((1 - p, 0.0, 0.0), (p, 1.0, 1.0)))


@dataclass(frozen=True)
class Arms:
    """Rewards that depend on the arm only (the same object for both arms: an A/A test)."""

    champion: Mixture
    challenger: Mixture

    def draw(self, rng: np.random.Generator, challenger: Bools, assigned_at: Floats) -> Floats:
        base = self.champion.sample(rng, challenger.shape)
        if self.challenger == self.champion:
            return base
        result: Floats = np.where(challenger, self.challenger.sample(rng, challenger.shape), base)
        return result

    @property
    def effect(self) -> float:
        return self.challenger.mean - self.champion.mean


def same(model: Mixture) -> Arms:
    return Arms(model, model)


@dataclass(frozen=True)
class Drift:
    """0/1 rewards whose mean, shared by both arms, moves linearly from start to end over ``length``
    requests (by assignment time) and then stays at end."""

    start: float
    end: float
    length: float

    def draw(self, rng: np.random.Generator, challenger: Bools, assigned_at: Floats) -> Floats:
        mean = self.start + (self.end - self.start) * np.clip(assigned_at / self.length, 0.0, 1.0)
        result: Floats = (rng.random(challenger.shape) < mean).astype(np.float64)
        return result


@dataclass(frozen=True)
class Scenario:
    name: str
    rewards: Rewards
    steps: tuple[int, ...] = PLANNER
    min_samples: int = DEFAULTS.min_samples_per_variant
    mean_delay: float = 0.0  # mean of the exponential reward delay, in requests
    stop_on_futile: bool = True  # False: keep going past FUTILE to time the first ROLL_BACK verdict

    @property
    def rule(self) -> Rule:
        settings = RolloutSettings(steps=list(self.steps), min_samples_per_variant=self.min_samples)
        return Rule.from_settings(settings)

    @property
    def split(self) -> str:
        return {ONE_TO_NINETEEN: "1:19", EVEN: "50/50", PLANNER: "planner"}.get(self.steps, str(self.steps))


# ---------------------------------------------------------------------------------------------
# The simulation


@dataclass
class Outcomes:
    """Per replication of one scenario; challenger rewards are those assigned to the challenger."""

    ended: Ints  # the final verdict, or UNDECIDED at the horizon
    challenger: Floats  # challenger rewards when it ended
    requests: Floats  # requests assigned when it ended
    step: Ints  # step it ended at
    futile_challenger: Floats  # challenger rewards at the first FUTILE verdict (inf: never)
    futile_requests: Floats
    rollback_challenger: Floats  # challenger rewards at the first ROLL_BACK verdict (inf: never)
    rollback_requests: Floats

    def rate(self, which: Verdict) -> float:
        return float(np.mean(self.ended == which))


@dataclass
class _Live:
    """The replications still running, compacted as others finish."""

    row: Ints
    state: SequenceState
    lower: Floats
    upper: Floats
    step: Ints
    n_challenger: Floats
    n_champion: Floats
    requests: Floats
    pending: Floats  # (replication, request, column): requests whose rewards are in flight

    def keep(self, mask: Bools) -> None:
        self.row = self.row[mask]
        self.state = replace(
            self.state, **{f.name: getattr(self.state, f.name)[mask] for f in fields(SequenceState)}
        )
        for name in ("lower", "upper", "step", "n_challenger", "n_champion", "requests", "pending"):
            setattr(self, name, getattr(self, name)[mask])


REWARD, CHALLENGER, SHARE, ARRIVAL = range(4)  # the columns of a block of requests in flight


def _arrived(live: _Live, block: Floats, now: Floats) -> Floats:
    """The requests whose rewards have arrived by ``now`` (earlier pending ones and this block's),
    oldest arrival first, padded with entries of share 0 (which ``extend`` skips); the rest stay
    pending. Blocks are (replications, requests, columns)."""
    pool = np.concatenate([live.pending, block], axis=1)
    rows = np.arange(len(pool))[:, None]
    pool = pool[rows, np.argsort(pool[..., ARRIVAL], axis=1, kind="stable")]
    landed = (pool[..., ARRIVAL] <= now[:, None]).sum(axis=1)  # arrived first: a prefix of each row
    waiting = np.isfinite(pool[..., ARRIVAL]).sum(axis=1) - landed
    out = pool[:, : landed.max(initial=0)].copy()
    out[..., SHARE] = np.where(np.arange(out.shape[1]) < landed[:, None], out[..., SHARE], 0.0)
    offsets = landed[:, None] + np.arange(waiting.max(initial=0))
    rest = pool[rows, np.minimum(offsets, pool.shape[1] - 1)]
    rest[..., ARRIVAL] = np.where(offsets < landed[:, None] + waiting[:, None], rest[..., ARRIVAL], np.inf)
    live.pending = rest
    return out


@dataclass(frozen=True)
class _Batch:
    """Scenarios simulated together; replication rows are grouped by scenario, in order."""

    scenarios: Sequence[Scenario]
    reps: int
    scenario_of: Ints  # per row
    shares: Floats  # challenger share per scenario and step
    rules: list[Rule]
    delays: Floats
    keeps_going: Bools
    block: int  # requests between two looks

    @classmethod
    def of(cls, scenarios: Sequence[Scenario], reps: int, block: int) -> _Batch:
        most = max(len(s.steps) for s in scenarios)
        padded = [[*s.steps, *[s.steps[-1]] * (most - len(s.steps))] for s in scenarios]
        return cls(
            scenarios=scenarios,
            reps=reps,
            scenario_of=np.repeat(np.arange(len(scenarios)), reps),
            shares=np.array(padded, dtype=np.float64) / 100.0,
            rules=[s.rule for s in scenarios],
            delays=np.array([s.mean_delay for s in scenarios]),
            keeps_going=np.array([not s.stop_on_futile for s in scenarios]),
            block=block,
        )


def _look(live: _Live, batch: _Batch, rng: np.random.Generator) -> Ints:
    """One block of requests for every live replication, then the planner's verdict on each."""
    n = len(live.row)
    mine = batch.scenario_of[live.row]
    groups = np.searchsorted(mine, np.arange(len(batch.scenarios) + 1))  # rows are sorted by scenario
    share = batch.shares[mine, live.step]
    to_challenger = rng.random((n, batch.block)) < share[:, None]
    assigned_at = live.requests[:, None] + np.arange(batch.block)
    reward = np.empty((n, batch.block))
    for index, scenario in enumerate(batch.scenarios):
        rows = slice(groups[index], groups[index + 1])
        if rows.start < rows.stop:
            reward[rows] = scenario.rewards.draw(rng, to_challenger[rows], assigned_at[rows])
    live.requests = live.requests + batch.block
    share = np.repeat(share[:, None], batch.block, axis=1)
    delay = batch.delays[mine]
    if delay.any():
        arrival = assigned_at + rng.exponential(1.0, (n, batch.block)) * delay[:, None]
        block = _arrived(live, np.stack([reward, to_challenger, share, arrival], axis=-1), live.requests)
        reward, to_challenger, share = block[..., REWARD], block[..., CHALLENGER] > 0.5, block[..., SHARE]
    usable = share > 0  # padding of the delayed pool has share 0: extend skips it
    in_c, in_0 = to_challenger & usable, ~to_challenger & usable
    live.state = extend(live.state, reward, in_c, in_0, share, np.where(usable, 1.0 - share, 0.0), MDE)
    live.n_challenger = live.n_challenger + in_c.sum(axis=1)
    live.n_champion = live.n_champion + in_0.sum(axis=1)
    found = interval(live.state, ALPHA)
    live.lower = np.maximum(live.lower, found.lower)  # the running intersection, as Contrast.narrowed
    live.upper = np.maximum(np.minimum(live.upper, found.upper), live.lower)
    codes = np.empty(n, dtype=np.int64)
    for index, rule in enumerate(batch.rules):
        rows = slice(groups[index], groups[index + 1])
        codes[rows] = verdict(
            live.n_challenger[rows],
            live.n_champion[rows],
            live.lower[rows],
            live.upper[rows],
            live.step[rows],
            rule,
        )
    return codes


def simulate(
    scenarios: Sequence[Scenario], reps: int, rng: np.random.Generator, block: int = BLOCK
) -> list[Outcomes]:
    """``reps`` replications of each scenario, stepped together, a look every ``block`` requests;
    one Outcomes per scenario."""
    found: dict[int, Outcomes] = {}
    per_batch = max(1, ROWS_PER_BATCH // reps)
    for delayed in (False, True):  # delayed rewards need a pool of requests in flight: batched apart
        chosen = [i for i, s in enumerate(scenarios) if (s.mean_delay > 0) == delayed]
        for start in range(0, len(chosen), per_batch):
            part = chosen[start : start + per_batch]
            outcomes = _simulate_batch(_Batch.of([scenarios[i] for i in part], reps, block), rng)
            found.update(zip(part, outcomes, strict=True))
    return [found[i] for i in range(len(scenarios))]


def _simulate_batch(batch: _Batch, rng: np.random.Generator) -> list[Outcomes]:
    total, reps = len(batch.scenario_of), batch.reps
    never = np.full(total, np.inf)
    out = Outcomes(
        ended=np.full(total, UNDECIDED, dtype=np.int64),
        challenger=np.zeros(total),
        requests=np.zeros(total),
        step=np.zeros(total, dtype=np.int64),
        futile_challenger=never.copy(),
        futile_requests=never.copy(),
        rollback_challenger=never.copy(),
        rollback_requests=never.copy(),
    )
    live = _Live(
        row=np.arange(total),
        state=SequenceState.empty((total,)),
        lower=np.full(total, -np.inf),
        upper=np.full(total, np.inf),
        step=np.zeros(total, dtype=np.int64),
        n_challenger=np.zeros(total),
        n_champion=np.zeros(total),
        requests=np.zeros(total),
        pending=np.zeros((total, 0, 4)),
    )
    while len(live.row):
        codes = _look(live, batch, rng)
        for code, n_at, requests_at in (
            (Verdict.FUTILE, out.futile_challenger, out.futile_requests),
            (Verdict.ROLL_BACK, out.rollback_challenger, out.rollback_requests),
        ):
            first = (codes == code) & np.isinf(n_at[live.row])
            n_at[live.row[first]] = live.n_challenger[first]
            requests_at[live.row[first]] = live.requests[first]
        going = (codes == Verdict.FUTILE) & batch.keeps_going[batch.scenario_of[live.row]]
        final = np.isin(codes, FINAL) & ~going
        done = final | (live.requests >= HORIZON)
        rows = live.row[done]
        out.ended[rows] = np.where(final[done], codes[done], UNDECIDED)
        out.challenger[rows] = live.n_challenger[done]
        out.requests[rows] = live.requests[done]
        out.step[rows] = live.step[done]
        live.step = live.step + (codes == Verdict.ADVANCE)
        live.keep(~done)
    return [
        Outcomes(**{f.name: getattr(out, f.name)[i * reps : (i + 1) * reps] for f in fields(Outcomes)})
        for i in range(len(batch.scenarios))
    ]


# ---------------------------------------------------------------------------------------------
# Statistics of the outcomes


def standard_error(rate: float, n: int) -> float:
    return math.sqrt(max(rate * (1 - rate), 0.0) / n)


def wilson_upper(rate: float, n: int) -> float:
    """Upper end of the 95 % Wilson interval of a proportion ``rate`` of ``n`` simulated experiments."""
    return PassRate(round(rate * n), n).interval()[1]


def quantile(values: Floats, q: float) -> float:
    """Quantile where inf (never happened) counts as larger than everything."""
    return float(np.quantile(values, q, method="lower"))


def mc_slack(rate: float, n: int) -> float:
    """Two Monte-Carlo standard errors of a rate estimated from n replications, where it is exactly
    ``rate``: a goal on a rate gets this much room, so that a correct engine passes whatever the seed
    (at 200 replications the worst of some eighty rates near 0.03 exceeds 0.05 in about 40 % of seeds)."""
    return 2.0 * standard_error(rate, n)


def per_arm_horizon(effect: float, variance_challenger: float, variance_champion: float) -> float:
    """Fixed-horizon per-arm sample size of a two-sided level-alpha z-test with power 0.8."""
    return Z_POWER**2 * (variance_challenger + variance_champion) / effect**2


def challenger_horizon(
    effect: float, variance_challenger: float, variance_champion: float, share: float
) -> float:
    """Challenger samples of the same fixed-horizon test at a challenger share (allocation-matched)."""
    return Z_POWER**2 * (variance_challenger + variance_champion * share / (1 - share)) / effect**2


# ---------------------------------------------------------------------------------------------
# Goals


@dataclass
class Goals:
    lines: list[str] = field(default_factory=list)

    def add(self, name: str, value: float, op: str, goal: float) -> None:
        goal = round(goal, 4)
        met = value <= goal if op == "<=" else value >= goal
        shown = f"{value:.4f}" if math.isfinite(value) else "999999"
        self.lines.append(f"RESULT stats_sim {name}={shown} goal{op}{goal:g}" + ("" if met else "  MISSED"))


def print_result_lines(goals: Goals) -> None:
    for line in goals.lines:
        print(line.replace("  MISSED", ""))
    missed = [line.split()[2] for line in goals.lines if line.endswith("MISSED")]
    print(f"MISSED goals: {', '.join(missed)}" if missed else "all goals met")


# ---------------------------------------------------------------------------------------------
# (a) and (b): A/A error rates


def null_scenarios(drift_length: float | None = None) -> list[Scenario]:
    """Every A/A scenario; the drift ones need the expected experiment length (requests)."""
    if drift_length is not None:
        drifts = [(0.45, 0.55), (0.55, 0.45), (0.49, 0.51)]
        found = [Scenario(f"drift {a:.2f}->{b:.2f}", Drift(a, b, drift_length)) for a, b in drifts]
        delay = 10 * BLOCK
        found += [
            Scenario(f"delayed ~{delay}, Bernoulli 0.5", same(bernoulli(0.5)), mean_delay=delay),
            Scenario(
                f"delayed ~{delay}, drift 0.45->0.55", Drift(0.45, 0.55, drift_length), mean_delay=delay
            ),
            Scenario(
                f"delayed ~{delay}, drift 0.55->0.45", Drift(0.55, 0.45, drift_length), mean_delay=delay
            ),
        ]
        return found
    shapes = {
        "levels {0,.1,1} (.05/.9/.05)": Mixture(((0.05, 0.0, 0.0), (0.9, 0.1, 0.1), (0.05, 1.0, 1.0))),
        "bimodal U(0,.05)|U(.95,1)": Mixture(((0.5, 0.0, 0.05), (0.5, 0.95, 1.0))),
        "90% 1.0, else U(0,1)": Mixture(((0.9, 1.0, 1.0), (0.1, 0.0, 1.0))),
    }
    found = []
    for steps in (ONE_TO_NINETEEN, EVEN, PLANNER):
        found += [
            Scenario(f"Bernoulli {p:g}", same(bernoulli(p)), steps) for p in (0.01, 0.05, 0.5, 0.95, 0.99)
        ]
        found += [Scenario(name, same(model), steps) for name, model in shapes.items()]
        found.append(Scenario("constant 1.0", same(Mixture(((1.0, 1.0, 1.0),))), steps))
    for steps in (EVEN, PLANNER):  # the other base rate of the power section (c)
        found.append(Scenario("Bernoulli 0.9", same(bernoulli(0.9)), steps))
    for steps in (EVEN, PLANNER):  # minimum samples 200 (the default) are the Bernoulli rows above
        for minimum in (20, 50):
            found += [
                Scenario(f"Bernoulli {p:g}, min samples {minimum}", same(bernoulli(p)), steps, minimum)
                for p in (0.05, 0.95)
            ]
    return found


def print_null_table(title: str, scenarios: Sequence[Scenario], outcomes: Sequence[Outcomes]) -> None:
    """Per scenario: false RollBack and false Promote rates ± their MC standard errors, the upper end of
    the larger one's 95 % Wilson interval, how the rest ended, and challenger rewards to futility."""
    print(f"\n{title}")
    print(
        "  rates ± MC standard error; MC upper: upper end of the larger rate's 95 % Wilson interval;"
        " stepped: advanced at\n  least one step; futility p50: median challenger rewards to Inconclusive,"
        " x n(MDE): over the MDE-sized per-arm horizon"
    )
    header = f"{'scenario':<34}{'split':<9}{'false RollBack':>17}{'false Promote':>17}{'MC upper':>10}"
    print(header + f"{'futile':>8}{'undecided':>10}{'stepped':>9}{'futility p50':>13}{'x n(MDE)':>9}")
    for scenario, outcome in zip(scenarios, outcomes, strict=True):
        n = len(outcome.ended)
        back, promote = outcome.rate(Verdict.ROLL_BACK), outcome.rate(Verdict.PROMOTE)
        upper = max(wilson_upper(back, n), wilson_upper(promote, n))
        futile, undecided = outcome.rate(Verdict.FUTILE), float(np.mean(outcome.ended == UNDECIDED))
        stepped = f"{np.mean(outcome.step >= 1):.3f}" if len(scenario.steps) > 1 else "-"
        median = quantile(np.where(outcome.ended == Verdict.FUTILE, outcome.challenger, np.inf), 0.5)
        ratio = "-"
        if isinstance(scenario.rewards, Arms) and scenario.rewards.champion.variance > 0:
            variance = scenario.rewards.champion.variance
            ratio = f"{median / per_arm_horizon(MDE, variance, variance):.2f}"
        print(
            f"{scenario.name:<34}{scenario.split:<9}"
            f"{back:>8.4f} ±{standard_error(back, n):.4f}{promote:>8.4f} ±{standard_error(promote, n):.4f}"
            f"{upper:>10.4f}{futile:>8.3f}{undecided:>10.3f}{stepped:>9}{median:>13.0f}{ratio:>9}"
        )


def null_goals(
    goals: Goals, aa: Sequence[tuple[Scenario, Outcomes]], drift: Sequence[tuple[Scenario, Outcomes]]
) -> None:
    """Every A/A scenario's false RollBack and false Promote rate (drift included), and the rest."""
    every = [*aa, *drift]
    print()
    for name, which in (("rollback", Verdict.ROLL_BACK), ("promote", Verdict.PROMOTE)):
        worst, outcome = max(every, key=lambda pair: pair[1].rate(which))
        rate, n = outcome.rate(which), len(outcome.ended)
        upper = max(wilson_upper(o.rate(which), len(o.ended)) for _, o in every)
        below = "below" if upper <= ALPHA else "NOT below"
        print(
            f"worst A/A false {name}: {rate:.4f} ± {standard_error(rate, n):.4f} ({worst.name}, {worst.split});"
            f" the largest MC upper end {upper:.4f} is {below} alpha {ALPHA}"
        )
        goals.add(f"aa_false_{name}_max", rate, "<=", ALPHA + mc_slack(ALPHA, n))
    either = [o.rate(Verdict.ROLL_BACK) + o.rate(Verdict.PROMOTE) for _, o in drift]
    goals.add("drift_false_decision_max", max(either), "<=", 2 * ALPHA)
    constant = [o for s, o in every if s.name.startswith("constant")]
    decided = max(o.rate(Verdict.ROLL_BACK) + o.rate(Verdict.PROMOTE) for o in constant)
    goals.add("constant_false_decision", decided, "<=", 0.0)


# ---------------------------------------------------------------------------------------------
# (c): power and futility


POWER_BASES = (0.5, 0.9)
FREQUENT_BLOCK = 10  # requests between looks where the time to a decision is measured


def regression_scenarios() -> list[Scenario]:
    """Per base and split, a challenger worse by 2 x MDE, timed to its first RollBack verdict."""
    return [
        Scenario(
            f"{base:g} -> {base - 2 * MDE:g}",
            Arms(bernoulli(base), bernoulli(base - 2 * MDE)),
            steps,
            stop_on_futile=False,
        )
        for base in POWER_BASES
        for steps in (EVEN, PLANNER)
    ]


def frequent_null_scenarios() -> list[Scenario]:
    """The A/A scenarios of (a) with the most false promotions and false rollbacks (in runs of 6,000
    replications), looked at every FREQUENT_BLOCK requests: looking five times as often must not
    break the bound."""
    return [
        Scenario("Bernoulli 0.5", same(bernoulli(0.5)), EVEN),
        Scenario("Bernoulli 0.05", same(bernoulli(0.05)), PLANNER),
    ]


def power_section(goals: Goals, regressions: Sequence[tuple[Scenario, Outcomes, Outcomes]]) -> None:
    """Challenger rewards to RollBack against fixed-horizon sizes, per regression (outcomes with looks
    every FREQUENT_BLOCK and every BLOCK requests)."""
    print(
        f"\n(c) power: challenger mean lower by 2 x MDE = {2 * MDE:g}, looks every {FREQUENT_BLOCK} requests"
        "\n    n(true), n(MDE): per-arm fixed-horizon sizes (two-sided alpha 0.05, power 0.8, the true variances"
        "\n    of both arms) for the true effect and for the MDE. 'RollBack' counts challenger rewards to the"
        "\n    first RollBack verdict (never: infinite), the replication running on past a FUTILE verdict to"
        f"\n    find it; '@{BLOCK}' the same with looks every {BLOCK} requests. 'stop' counts rewards to"
        "\n    RollBack or Inconclusive, whichever the real rule says first, and 'first' how often each."
    )
    header = f"{'scenario':<14}{'split':<9}{'n(true)':>8}{'n(MDE)':>8}{'RollBack p50':>13}{'p90':>6}"
    print(
        header
        + f"{'x n(true)':>10}{'x n(MDE)':>9}{f'p50 @{BLOCK}':>8}{'stop p50':>9}{'first RollBack / Inconclusive':>31}"
    )
    to_true, to_mde = [], []
    for scenario, outcome, coarse in regressions:
        assert isinstance(scenario.rewards, Arms)
        arms = scenario.rewards
        var_c, var_0 = arms.challenger.variance, arms.champion.variance
        n_true, n_mde = per_arm_horizon(abs(arms.effect), var_c, var_0), per_arm_horizon(MDE, var_c, var_0)
        back = outcome.rollback_challenger
        median, p90 = quantile(back, 0.5), quantile(back, 0.9)
        stop = quantile(np.minimum(back, outcome.futile_challenger), 0.5)
        first = np.mean(outcome.rollback_requests < outcome.futile_requests)
        inconclusive = np.mean(outcome.futile_requests < outcome.rollback_requests)
        to_true.append(median / n_true)
        to_mde.append(median / n_mde)
        print(
            f"{scenario.name:<14}{scenario.split:<9}{n_true:>8.0f}{n_mde:>8.0f}{median:>13.0f}{p90:>6.0f}"
            f"{median / n_true:>10.2f}{median / n_mde:>9.2f}{quantile(coarse.rollback_challenger, 0.5):>8.0f}"
            f"{stop:>9.0f}{first:>20.3f} / {inconclusive:.3f}"
        )
        if scenario.steps == PLANNER:
            share = scenario.steps[0] / 100
            matched = challenger_horizon(abs(arms.effect), var_c, var_0, share)
            requests = quantile(outcome.rollback_requests, 0.5)
            print(
                f"{'':<23}a fixed-horizon test at {share:.0%} needs {matched:.0f} challenger samples"
                f" ({matched / share:,.0f} requests); RollBack took {requests:,.0f} requests (p50)"
            )
    goals.add("rollback_vs_true_horizon_p50_max", max(to_true), "<=", 1.2)
    goals.add("rollback_vs_mde_horizon_p50_max", max(to_mde), "<=", 0.5)


def futility_section(goals: Goals, nulls: Sequence[tuple[Scenario, Outcomes]]) -> None:
    """A/A challenger rewards to Inconclusive-by-futility against the MDE-sized horizon."""
    print(f"\nA/A futility (looks every {BLOCK} requests): challenger rewards to Inconclusive")
    print(f"{'scenario':<14}{'split':<9}{'n(MDE)':>8}{'futile':>8}{'p50':>6}{'p90':>6}{'x n(MDE)':>9}")
    futility = []
    for scenario, outcome in nulls:
        assert isinstance(scenario.rewards, Arms)
        variance = scenario.rewards.champion.variance
        n_mde = per_arm_horizon(MDE, variance, variance)
        to_futile = np.where(outcome.ended == Verdict.FUTILE, outcome.challenger, np.inf)
        median = quantile(to_futile, 0.5)
        futility.append(median / n_mde)
        print(
            f"{scenario.name:<14}{scenario.split:<9}{n_mde:>8.0f}{outcome.rate(Verdict.FUTILE):>8.3f}"
            f"{median:>6.0f}{quantile(to_futile, 0.9):>6.0f}{median / n_mde:>9.2f}"
        )
    goals.add("futility_vs_mde_horizon_p50_max", max(futility), "<=", 2.0)


# ---------------------------------------------------------------------------------------------
# (d): the contrast — a fixed-horizon test peeked at every block


def peeked_fixed_horizon(
    rng: np.random.Generator, reps: int, p: float = 0.5
) -> tuple[float, float, float, float]:
    """A/A at 50/50, Bernoulli p: a Welch z-test planned for the MDE (two-sided alpha), run to its
    horizon and acted on at every block once each arm has the minimum samples.

    Returns (false rollback, false promote) when peeked, and the same when looked at once at the end."""
    per_arm = per_arm_horizon(MDE, p * (1 - p), p * (1 - p))
    looks = math.ceil(2 * per_arm / BLOCK)
    z = NormalDist().inv_cdf(1 - ALPHA / 2)
    to_challenger = rng.random((reps, looks * BLOCK)) < 0.5
    reward = rng.random((reps, looks * BLOCK)) < p
    ends = np.arange(BLOCK - 1, looks * BLOCK, BLOCK)
    n_c = np.cumsum(to_challenger, axis=1)[:, ends]
    n_0 = ends + 1 - n_c
    s_c = np.cumsum(reward & to_challenger, axis=1)[:, ends]
    s_0 = np.cumsum(reward & ~to_challenger, axis=1)[:, ends]
    mean_c, mean_0 = s_c / np.maximum(n_c, 1), s_0 / np.maximum(n_0, 1)
    variance = mean_c * (1 - mean_c) / np.maximum(n_c - 1, 1) + mean_0 * (1 - mean_0) / np.maximum(n_0 - 1, 1)
    score = (mean_c - mean_0) / np.sqrt(np.maximum(variance, 1e-12))
    ready = (n_c >= DEFAULTS.min_samples_per_variant) & (n_0 >= DEFAULTS.min_samples_per_variant)
    low, high = ready & (score < -z), ready & (score > z)
    back_at = np.where(low.any(axis=1), low.argmax(axis=1), looks)
    promote_at = np.where(high.any(axis=1), high.argmax(axis=1), looks)
    return (
        float(np.mean(back_at < promote_at)),
        float(np.mean(promote_at < back_at)),
        float(np.mean(low[:, -1])),
        float(np.mean(high[:, -1])),
    )


# ---------------------------------------------------------------------------------------------
# (e): the sample-ratio test


@dataclass(frozen=True)
class Epoch:
    """One set of router weights in a sample-ratio simulation."""

    weight: int  # the challenger's weight, percent
    served: float  # the share of new units the challenger actually gets
    units: int
    every: int  # units between looks


def _srm_draws(rng: np.random.Generator, reps: int, plan: Sequence[Epoch]) -> list[Ints]:
    """Per epoch, the challenger's new units between looks, per replication."""
    return [rng.binomial(e.every, e.served, size=(reps, e.units // e.every)) for e in plan]


def srm_first_block(rng: np.random.Generator, reps: int, plan: Sequence[Epoch]) -> Floats:
    """Units (over all epochs) at the first look where ``check_sample_ratio`` reports a mismatch
    (inf: never). Units are requests, each new, so every request counts in its epoch."""
    draws = _srm_draws(rng, reps, plan)
    blocked_at = np.full(reps, np.inf)
    for rep in range(reps):
        done: list[AllocationEpoch] = []
        units = 0
        for epoch, counts in zip(plan, draws, strict=True):
            challenger = 0
            weights = {"challenger": epoch.weight, "champion": 100 - epoch.weight}
            for look, count in enumerate(counts[rep], start=1):
                challenger += int(count)
                seen = {"challenger": challenger, "champion": look * epoch.every - challenger}
                current = AllocationEpoch(weights, seen)
                if not check_sample_ratio([*done, current]).ok:
                    blocked_at[rep] = units + look * epoch.every
                    break
            if math.isfinite(blocked_at[rep]):
                break
            done.append(current)
            units += epoch.units
    return blocked_at


def chi_square_peeked(rng: np.random.Generator, reps: int, plan: Sequence[Epoch]) -> float:
    """The contrast: a chi-square test of each epoch's split at p < MISMATCH_P_VALUE, at every look."""
    blocked = np.zeros(reps, dtype=bool)
    threshold = NormalDist().inv_cdf(1 - MISMATCH_P_VALUE / 2)  # df 1: chi-square = z^2
    for epoch, counts in zip(plan, _srm_draws(rng, reps, plan), strict=True):
        share = epoch.weight / 100
        seen = np.cumsum(counts, axis=1)
        total = epoch.every * np.arange(1, counts.shape[1] + 1)
        score = np.abs(seen - share * total) / np.sqrt(total * share * (1 - share))
        blocked |= (score > threshold).any(axis=1)
    return float(np.mean(blocked))


def srm_section(goals: Goals, rng: np.random.Generator, reps: int, power_reps: int) -> None:
    """False blocks of a correct A/A split looked at every BLOCK requests, and how fast a challenger
    served 10 % at weight 50 % is blocked (looked at every 10 requests in that epoch)."""
    length = 4_000
    correct = [Epoch(5, 0.05, length, BLOCK), Epoch(25, 0.25, length, BLOCK), Epoch(50, 0.50, length, BLOCK)]
    false_at = srm_first_block(rng, reps, correct)
    false_rate = float(np.mean(np.isfinite(false_at)))
    chi_rate = chi_square_peeked(rng, reps, correct)
    broken = [*correct[:2], Epoch(50, 0.10, 1_000, 10)]
    caught_at = srm_first_block(rng, power_reps, broken) - 2 * length
    caught = float(np.mean(np.isfinite(caught_at) & (caught_at > 0)))
    early = float(np.mean(caught_at <= 0))
    print(f"\n(e) sample-ratio test (unit Request), threshold p < {MISMATCH_P_VALUE:g}")
    print(
        f"A/A, weights 5 -> 25 -> 50 % ({length:,} requests each), a look every {BLOCK}, {reps:,} experiments:"
        f" blocked {false_rate:.4f} ± {standard_error(false_rate, reps):.4f}"
        f" (MC upper {wilson_upper(false_rate, reps):.4f});"
        f"\n  a chi-square test of each epoch at p < {MISMATCH_P_VALUE:g}, peeked at the same looks: {chi_rate:.4f}"
    )
    print(
        f"challenger served 10 % at weight 50 % after two correct epochs, {power_reps:,} experiments, a look"
        f" every 10 requests: blocked within 1,000 requests {caught:.3f}, after {quantile(caught_at, 0.5):.0f}"
        f" (p50) / {quantile(caught_at, 0.9):.0f} (p90) requests of the broken epoch"
        f" (blocked before it: {early:.4f})"
    )
    goals.add("srm_false_block_rate", false_rate, "<=", MISMATCH_P_VALUE + mc_slack(MISMATCH_P_VALUE, reps))
    goals.add("srm_mismatch_blocked_rate", caught, ">=", 0.99)


# ---------------------------------------------------------------------------------------------
# (f): the Thompson bandit


THOMPSON_FLOORS = {"thompson": 0.05, "thompson_floor_3%": 0.03}
EPSILON = 0.12  # 3 % per arm with 4 arms: the same forced exploration as Thompson with a 3 % floor


def bandit_regret(
    rng: np.random.Generator, reps: int, horizon: int, batch: int, means: list[float]
) -> dict[str, float]:
    """Mean cumulative (pseudo-)regret of Thompson, epsilon-greedy and uniform against the oracle.

    Thompson runs with the default floor (5 % per arm) and with epsilon-greedy's own per-arm floor
    (epsilon / arms = 3 %), so that the exploration each is forced to do is the same.
    """
    names = [f"arm{i}" for i in range(len(means))]
    mu, best = np.array(means), max(means)
    policies = [*THOMPSON_FLOORS, "epsilon_greedy"]
    regret = dict.fromkeys(policies, 0.0)
    for _ in range(reps):
        counts = {policy: np.zeros(len(means)) for policy in policies}
        sums = {policy: np.zeros(len(means)) for policy in policies}
        for _ in range(horizon // batch):
            shares = {}
            for policy, floor in THOMPSON_FLOORS.items():
                observations = [
                    VariantObservations(name=n, rewards=int(c), reward_sum=float(s))
                    for n, c, s in zip(names, counts[policy], sums[policy], strict=True)
                ]
                seed = int(rng.integers(2**62))
                weights = thompson_weights(observations, exploration_floor=floor, seed=seed).weights
                shares[policy] = np.array([weights[n] for n in names]) / 100.0
            greedy = np.full(len(means), EPSILON / len(means))
            leader = int(np.argmax(sums["epsilon_greedy"] / np.maximum(counts["epsilon_greedy"], 1)))
            greedy[leader] += 1 - EPSILON
            shares["epsilon_greedy"] = greedy
            for name, share in shares.items():
                pulls = rng.multinomial(batch, share)
                counts[name] += pulls
                sums[name] += rng.binomial(pulls, mu)
                regret[name] += float(pulls @ (best - mu)) / reps
    regret["uniform"] = horizon * (best - float(mu.mean()))
    return regret


def bandit_budget(
    rng: np.random.Generator, reps: int, horizon: int, batch: int
) -> tuple[float, float, float, float]:
    """Model routing under a cost budget: (mean cost per request at the weights, mean cost per request
    served, budget, reward vs the budget oracle)."""
    means = {"big": 0.70, "small": 0.62, "tiny": 0.40}
    costs, budget = {"big": 10.0, "small": 2.0, "tiny": 1.0}, 3.0
    oracle = 0.125 * means["big"] + 0.875 * means["small"]  # big + small with 10 w + 2 (1 - w) = 3
    total_cost = total_reward = planned_cost = 0.0
    for _ in range(reps):
        counts, sums = dict.fromkeys(means, 0), dict.fromkeys(means, 0.0)
        for _ in range(horizon // batch):
            observations = [VariantObservations(name=n, rewards=counts[n], reward_sum=sums[n]) for n in means]
            result = thompson_weights(
                observations,
                exploration_floor=0.05,
                seed=int(rng.integers(2**62)),
                costs=costs,
                max_cost_per_request=budget,
            )
            planned_cost += batch * sum(result.weights[n] * costs[n] for n in means) / 100.0
            pulls = rng.multinomial(batch, [result.weights[n] / 100.0 for n in means])
            for name, pulled in zip(means, pulls, strict=True):
                won = float(rng.binomial(pulled, means[name]))
                counts[name] += int(pulled)
                sums[name] += won
                total_cost += pulled * costs[name]
                total_reward += won
    served = reps * (horizon // batch) * batch
    return planned_cost / served, total_cost / served, budget, (total_reward / served) / oracle


def bandit_section(goals: Goals, rng: np.random.Generator, reps: int) -> None:
    means, horizon, batch = [0.50, 0.55, 0.60, 0.45], 20_000, 500
    regret = bandit_regret(rng, reps, horizon, batch, means)
    planned, cost, budget, reward_vs_oracle = bandit_budget(rng, max(3, reps // 4), horizon, batch)
    print(f"\n(f) bandit, arms {means}, {horizon:,} requests, weights every {batch}, {reps} runs")
    print(f"{'policy':<36}{'cumulative regret':>20}{'x uniform':>12}")
    print(f"{'oracle (always the best arm)':<36}{0.0:>20.1f}{0.0:>12.2f}")
    for name in (*THOMPSON_FLOORS, "epsilon_greedy", "uniform"):
        print(f"{name.replace('_', ' '):<36}{regret[name]:>20.1f}{regret[name] / regret['uniform']:>12.2f}")
    floor_only = horizon * THOMPSON_FLOORS["thompson"] * sum(max(means) - m for m in means)
    print(
        f"  (the 5% floor alone costs {floor_only:.0f} of Thompson's regret: the price of never starving a variant)"
    )
    print(
        f"cost budget {budget:g}/request: Thompson's weights cost {planned:.3f}/request (served: {cost:.3f},"
        f" with the multinomial noise of who gets which request), reward {reward_vs_oracle:.2f}x the budget oracle"
    )
    goals.add("bandit_regret_vs_uniform", regret["thompson"] / regret["uniform"], "<=", 0.5)
    goals.add("bandit_cost_vs_budget", planned / budget, "<=", 1.0)


# ---------------------------------------------------------------------------------------------
# Running the sections


def section_rng(section: str) -> np.random.Generator:
    """Each section draws from its own seeded stream, so a change in one leaves the others' numbers."""
    return np.random.default_rng([SEED, ord(section)])


@contextmanager
def timed(label: str) -> Iterator[None]:
    started = time.perf_counter()
    yield
    print(f"  [{label}: {time.perf_counter() - started:.1f}s]")


Pairs = list[tuple[Scenario, Outcomes]]


def null_sections(reps: int) -> tuple[Pairs, Pairs]:
    """(a) and (b): the A/A scenarios, then drift over the median length of the planner's A/A."""
    with timed("A/A"):
        nulls = null_scenarios()
        null_outcomes = simulate(nulls, reps, section_rng("a"))
        print_null_table("(a) A/A: no difference between the arms", nulls, null_outcomes)
    reference = next(i for i, s in enumerate(nulls) if s.name == "Bernoulli 0.5" and s.steps == PLANNER)
    length = float(np.median(null_outcomes[reference].requests))
    with timed("drift"):
        drifts = null_scenarios(drift_length=length)
        drift_outcomes = simulate(drifts, reps, section_rng("b"))
        print_null_table(
            f"(b) A/A under drift over {length:,.0f} requests (the median planner A/A length), planner steps;"
            " delayed rewards keep the share they were assigned under",
            drifts,
            drift_outcomes,
        )
    return list(zip(nulls, null_outcomes, strict=True)), list(zip(drifts, drift_outcomes, strict=True))


def power_sections(goals: Goals, reps: int, nulls: Pairs) -> Pairs:
    """(a2) and (c): regressions looked at every BLOCK and every FREQUENT_BLOCK requests, the worst A/A
    scenarios at the frequent looks (returned), and futility from the A/A runs of (a)."""
    with timed("power and frequent looks"):
        rng = section_rng("c")
        regressions = regression_scenarios()
        coarse = simulate(regressions, reps, rng)
        frequent_nulls = frequent_null_scenarios()
        fine = simulate([*regressions, *frequent_nulls], reps, rng, block=FREQUENT_BLOCK)
        aa_frequent = list(zip(frequent_nulls, fine[len(regressions) :], strict=True))
        print_null_table(
            f"(a2) A/A looked at every {FREQUENT_BLOCK} requests instead of every {BLOCK}",
            frequent_nulls,
            fine[len(regressions) :],
        )
        known = dict(nulls)
        bases = [
            Scenario(f"Bernoulli {p:g}", same(bernoulli(p)), st)
            for p in POWER_BASES
            for st in (EVEN, PLANNER)
        ]
        power_section(goals, list(zip(regressions, fine[: len(regressions)], coarse, strict=True)))
        futility_section(goals, [(s, known[s]) for s in bases])
    return aa_frequent


def contrast_section(reps: int) -> None:
    """(d): the fixed-horizon test acted on at every block."""
    with timed("peeked fixed-horizon test"):
        back, promote, once_back, once_promote = peeked_fixed_horizon(section_rng("d"), reps)
        print(
            f"\n(d) contrast: a fixed-horizon z-test planned for the MDE (two-sided alpha {ALPHA}), A/A"
            f" Bernoulli 0.5 at 50/50, {reps:,} runs\n  acted on at every block: false RollBack"
            f" {back:.4f}, false Promote {promote:.4f}; looked at once, at its horizon:"
            f" {once_back:.4f}, {once_promote:.4f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200 replications per scenario (CI size)")
    args = parser.parse_args()
    reps = 200 if args.quick else 2_000
    started = time.perf_counter()
    goals = Goals()
    print(
        f"stats_sim: {reps:,} experiments per scenario, a look every {BLOCK} rewarded requests, horizon"
        f" {HORIZON:,} requests, alpha {ALPHA}, MDE {MDE}, seed {SEED}"
    )
    nulls, drifts = null_sections(reps)
    aa_frequent = power_sections(goals, reps, nulls)
    null_goals(goals, [*nulls, *aa_frequent], drifts)
    contrast_section(10 * reps)
    with timed("sample ratio"):
        srm_section(goals, section_rng("e"), 5 * reps, reps)
    with timed("bandit"):
        bandit_section(goals, section_rng("f"), 10 if args.quick else 40)
    print(f"\nelapsed {time.perf_counter() - started:.0f}s")
    print_result_lines(goals)


if __name__ == "__main__":
    main()
