"""Simulated experiments: is Kaizen's decision rule both faster and more trustworthy than the usual ones?

Every replicated experiment is a stream of requests; each request goes to the challenger or the
champion at random (50/50 unless stated) and earns a 0/1 reward (base success rate 0.5, the worst
case for variance). After EVERY request each rule looks at what it has seen. Settings are the
defaults of ``RolloutSettings``: alpha 0.05, minimum detectable effect (MDE) 0.05, regression
tolerance 0.02, 200 rewards per variant before any decision, steps 5/25/50 %.

Rules compared, all with the same 200-rewards minimum so that only the test differs:

* Kaizen — ``controllers.decisions.experiments.decision_rule.verdict_from_sums``, the very function the planner
  calls, fed numpy arrays (tests/unit/test_decision_rule.py checks it agrees with ``plan`` case by
  case): mSPRT confidence sequence, roll back when it lies below 0, promote when above 0. Run once at
  full exposure (50/50, the test itself) and once through the rollout steps (5 → 25 → 50 %, steps
  advanced by the same rule, allocation following the step).
* Flagger / Argo Rollouts style — a fixed threshold checked every analysis interval: the check fails
  when the challenger's running mean is below the champion's by more than the regression tolerance;
  roll back after 5 failed checks in total (Flagger's ``threshold: 5``). Flagger's default interval
  is 1 minute; here one interval is 40 requests (an agent fleet sending 40 requests a minute). It has
  no notion of "significantly better": it promotes whatever has not failed, so there is no
  false-promote figure for it.
* Fixed-horizon two-sample test peeked at every interval — Welch z at level alpha (n >= 200, so z and
  t agree), two-sided, acted on at the first peek that crosses.

(a) A/A (no difference), horizon 2 x the fixed-horizon sample size per arm: false rollback and false
    promote rates. (b) A true regression of 2 x MDE: median samples per arm until rollback, against
    the fixed-horizon sample size for the MDE at 80 % power (closed form). (c) The Thompson bandit
    (``controllers.decisions.experiments.bandit.thompson_weights``, recomputed every 500 requests as a
    reconcile would) against an oracle that always plays the best arm, a uniform split, and
    epsilon-greedy (epsilon 0.12: 3 % per arm, compared with Thompson at a 3 % floor as well as at
    the default 5 %); plus a cost-budget run (model routing: average cost within budget?). (d) Why
    the mixture scale is 2 x MDE: A/A error and samples to roll back for other scales.

    .venv/bin/python bench/stats_sim.py [--quick]
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
import numpy.typing as npt

from controllers.api.serving_settings import RolloutSettings
from controllers.decisions.experiments.bandit import thompson_weights
from controllers.decisions.experiments.decision_rule import Rule, Verdict, verdict_from_sums
from controllers.decisions.experiments.msprt import MIXTURE_SCALE
from controllers.decisions.experiments.observations import VariantObservations

SETTINGS = RolloutSettings()
RULE = Rule.from_settings(SETTINGS)
BASE = 0.5
MDE = SETTINGS.min_detectable_effect
INTERVAL = 40  # requests per analysis interval (Flagger's 1 minute)
FAILED_CHECKS = 5
CHUNK = 400  # replications per vectorised block (memory stays around 200 MB)

NONE, ROLLED_BACK, PROMOTED = 0, 1, 2
Ints = npt.NDArray[np.int64]


def fixed_horizon_per_arm(effect: float, alpha: float, power: float = 0.8) -> float:
    z = NormalDist().inv_cdf
    return 2 * BASE * (1 - BASE) * (z(1 - alpha / 2) + z(power)) ** 2 / effect**2


@dataclass
class Outcome:
    decision: Ints  # NONE / ROLLED_BACK / PROMOTED per replication
    samples: npt.NDArray[np.float64]  # mean samples per arm at the decision (horizon if none)

    def rate(self, which: int) -> float:
        return float(np.mean(self.decision == which))

    def median_samples(self) -> float:
        return float(np.median(self.samples))


def first(mask: npt.NDArray[np.bool_]) -> tuple[npt.NDArray[np.bool_], Ints]:
    """Per row: whether the mask is ever true, and the first index where it is."""
    return mask.any(axis=1), mask.argmax(axis=1)


Arrays = tuple[Ints, npt.NDArray[np.float64], Ints, npt.NDArray[np.float64], npt.NDArray[np.float64]]


def streams(rng: np.random.Generator, reps: int, requests: int, challenger_rate: float) -> Iterator[Arrays]:
    """Blocks of 50/50 request streams as running (n_c, sum_c, n_0, sum_0, samples per arm), one row each."""
    for start in range(0, reps, CHUNK):
        size = min(CHUNK, reps - start)
        to_challenger = rng.random((size, requests)) < 0.5
        reward = rng.random((size, requests)) < np.where(to_challenger, challenger_rate, BASE)
        n_c = np.cumsum(to_challenger, axis=1)
        n_0 = np.arange(1, requests + 1) - n_c
        s_c = np.cumsum(reward & to_challenger, axis=1).astype(np.float64)
        s_0 = np.cumsum(reward & ~to_challenger, axis=1).astype(np.float64)
        yield n_c, s_c, n_0, s_0, (n_c + n_0) / 2.0


def balanced_rules(
    rng: np.random.Generator, reps: int, requests: int, challenger_rate: float
) -> dict[str, Outcome]:
    """Kaizen at full exposure, Flagger-style and the peeked t-test on the same 50/50 streams."""
    results: dict[str, list[Outcome]] = {"kaizen": [], "flagger": [], "ttest": []}
    z = NormalDist().inv_cdf(1 - SETTINGS.alpha / 2)
    for n_c, s_c, n_0, s_0, per_arm in streams(rng, reps, requests, challenger_rate):
        codes, _, _ = verdict_from_sums(n_c, s_c, s_c, n_0, s_0, s_0, RULE.last_step, RULE)
        results["kaizen"].append(
            _first_decision(codes == Verdict.ROLL_BACK, codes == Verdict.PROMOTE, per_arm)
        )

        checks = np.arange(INTERVAL - 1, requests, INTERVAL)
        c_n, o_n, c_s, o_s = n_c[:, checks], n_0[:, checks], s_c[:, checks], s_0[:, checks]
        ready = (c_n >= SETTINGS.min_samples_per_variant) & (o_n >= SETTINGS.min_samples_per_variant)
        mean_c, mean_0 = c_s / np.maximum(c_n, 1), o_s / np.maximum(o_n, 1)
        failed = ready & (mean_c < mean_0 - SETTINGS.regression_tolerance)
        tripped = np.cumsum(failed, axis=1) >= FAILED_CHECKS
        never = np.zeros_like(tripped)
        results["flagger"].append(_first_decision(tripped, never, per_arm[:, checks]))

        variance = mean_c * (1 - mean_c) / np.maximum(c_n - 1, 1) + mean_0 * (1 - mean_0) / np.maximum(
            o_n - 1, 1
        )
        score = (mean_c - mean_0) / np.sqrt(np.maximum(variance, 1e-12))
        results["ttest"].append(
            _first_decision(ready & (score < -z), ready & (score > z), per_arm[:, checks])
        )
    return {
        name: Outcome(np.concatenate([o.decision for o in parts]), np.concatenate([o.samples for o in parts]))
        for name, parts in results.items()
    }


def mixture_scales(
    rng: np.random.Generator, reps: int, requests: int, scales: list[float]
) -> dict[float, tuple[float, float]]:
    """Per tau/MDE: (A/A false decision rate, median samples per arm to roll back 2 x MDE)."""
    rules = {scale: dataclasses.replace(RULE, tau2=(scale * MDE) ** 2) for scale in scales}
    null: dict[float, list[Outcome]] = {scale: [] for scale in scales}
    worse: dict[float, list[Outcome]] = {scale: [] for scale in scales}
    for rate, into in ((BASE, null), (BASE - 2 * MDE, worse)):
        for n_c, s_c, n_0, s_0, per_arm in streams(rng, reps, requests, rate):
            for scale, rule in rules.items():
                codes, _, _ = verdict_from_sums(n_c, s_c, s_c, n_0, s_0, s_0, rule.last_step, rule)
                into[scale].append(
                    _first_decision(codes == Verdict.ROLL_BACK, codes == Verdict.PROMOTE, per_arm)
                )
    found = {}
    for scale in scales:
        decided = np.concatenate([o.decision for o in null[scale]])
        samples = np.concatenate([o.samples for o in worse[scale]])
        found[scale] = (float(np.mean(decided != NONE)), float(np.median(samples)))
    return found


def _first_decision(
    roll_back: npt.NDArray[np.bool_], promote: npt.NDArray[np.bool_], per_arm: npt.NDArray[np.float64]
) -> Outcome:
    any_back, at_back = first(roll_back)
    any_promote, at_promote = first(promote)
    horizon = roll_back.shape[1]
    at_back = np.where(any_back, at_back, horizon)
    at_promote = np.where(any_promote, at_promote, horizon)
    decision = np.where(at_back < at_promote, ROLLED_BACK, np.where(at_promote < at_back, PROMOTED, NONE))
    at = np.minimum(np.minimum(at_back, at_promote), horizon - 1)
    samples = np.take_along_axis(per_arm, at[:, None], axis=1)[:, 0]
    return Outcome(decision.astype(np.int64), samples)


def rollout_with_steps(
    rng: np.random.Generator, reps: int, requests: int, challenger_rate: float
) -> tuple[Outcome, npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Kaizen through its weight steps: the allocation follows the step the same rule advances.

    Returns the outcome (samples = challenger rewards at the decision), requests at the decision and
    the step each replication ended on.
    """
    shares = np.array(SETTINGS.steps, dtype=np.float64) / 100.0
    n_c, n_0 = np.zeros(reps), np.zeros(reps)
    s_c, s_0 = np.zeros(reps), np.zeros(reps)
    step = np.zeros(reps, dtype=np.int64)
    decision = np.zeros(reps, dtype=np.int64)
    decided_at = np.full(reps, float(requests))
    challenger_at = np.zeros(reps)
    for t in range(requests):
        live = decision == NONE
        to_challenger = rng.random(reps) < shares[step]
        reward = rng.random(reps) < np.where(to_challenger, challenger_rate, BASE)
        n_c += live & to_challenger
        n_0 += live & ~to_challenger
        s_c += live & to_challenger & reward
        s_0 += live & ~to_challenger & reward
        codes, _, _ = verdict_from_sums(n_c, s_c, s_c, n_0, s_0, s_0, step, RULE)
        back, promote = live & (codes == Verdict.ROLL_BACK), live & (codes == Verdict.PROMOTE)
        decision[back], decision[promote] = ROLLED_BACK, PROMOTED
        decided_at[back | promote] = t + 1
        challenger_at[back | promote] = n_c[back | promote]
        step += live & (codes == Verdict.ADVANCE)
    challenger_at[decision == NONE] = n_c[decision == NONE]
    return Outcome(decision, challenger_at), decided_at, step.astype(np.float64)


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
            greedy[int(np.argmax(sums["epsilon_greedy"] / np.maximum(counts["epsilon_greedy"], 1)))] += (
                1 - EPSILON
            )
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
) -> tuple[float, float, float]:
    """Model routing under a cost budget: (mean cost per request, budget, reward vs the budget oracle)."""
    means, costs, budget = (
        {"big": 0.70, "small": 0.62, "tiny": 0.40},
        {"big": 10.0, "small": 2.0, "tiny": 1.0},
        3.0,
    )
    # Oracle: the best mix within budget is big + small with 10·w + 2·(1 - w) = 3.
    oracle = 0.125 * means["big"] + 0.875 * means["small"]
    total_cost = total_reward = 0.0
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
            pulls = rng.multinomial(batch, [result.weights[n] / 100.0 for n in means])
            for name, pulled in zip(means, pulls, strict=True):
                won = float(rng.binomial(pulled, means[name]))
                counts[name] += int(pulled)
                sums[name] += won
                total_cost += pulled * costs[name]
                total_reward += won
    served = reps * (horizon // batch) * batch
    return total_cost / served, budget, (total_reward / served) / oracle


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="1,000 replications; prints the same RESULT lines"
    )
    args = parser.parse_args()
    reps = 1_000 if args.quick else 10_000
    bandit_reps = 10 if args.quick else 60
    rng = np.random.default_rng(20260301)
    n_fixed = fixed_horizon_per_arm(MDE, SETTINGS.alpha)
    requests = math.ceil(4 * n_fixed)
    started = time.perf_counter()
    print(f"stats_sim: {reps:,} experiments per scenario, a look after every request, seed 20260301")
    print(
        f"fixed-horizon sample size for MDE {MDE} at 80% power, alpha {SETTINGS.alpha}: {n_fixed:.0f} per arm"
    )

    null = balanced_rules(rng, reps, requests, BASE)
    null_steps, _, null_step = rollout_with_steps(rng, reps, 2 * requests, BASE)
    print(
        f"\n(a) A/A, no true difference; horizon {requests:,} requests ({requests / 2 / n_fixed:.1f}x fixed n per arm)"
    )
    print(f"{'rule':<44}{'looks':<22}{'false rollback':>16}{'false promote':>16}")
    rows = [
        ("Kaizen mSPRT, 50/50 (the planner's rule)", "every request", null["kaizen"], True),
        ("Kaizen with rollout steps 5/25/50", "every request", null_steps, True),
        (
            f"Flagger-style threshold, {FAILED_CHECKS} failed checks",
            f"every {INTERVAL} requests",
            null["flagger"],
            False,
        ),
        ("fixed-horizon test peeked every interval", f"every {INTERVAL} requests", null["ttest"], True),
    ]
    for label, looks, outcome, promotes in rows:
        promote = f"{outcome.rate(PROMOTED):.4f}" if promotes else "n/a"
        print(f"{label:<44}{looks:<22}{outcome.rate(ROLLED_BACK):>16.4f}{promote:>16}")
    print(
        f"  (steps run {2 * requests:,} requests; the A/A challenger reached step >= 1 in {np.mean(null_step >= 1):.1%})"
    )

    effect = -2 * MDE
    worse = balanced_rules(rng, reps, requests, BASE + effect)
    worse_steps, worse_requests, _ = rollout_with_steps(rng, reps, 2 * requests, BASE + effect)
    print(f"\n(b) true regression of 2 x MDE ({effect:+.2f}); fixed horizon needs {n_fixed:.0f} per arm")
    print(f"{'rule':<44}{'rolled back':>12}{'median samples/arm':>20}{'x fixed n':>12}")
    for label, outcome in [
        ("Kaizen mSPRT, 50/50", worse["kaizen"]),
        ("Flagger-style threshold", worse["flagger"]),
        ("fixed-horizon test peeked", worse["ttest"]),
    ]:
        median = outcome.median_samples()
        print(f"{label:<44}{outcome.rate(ROLLED_BACK):>12.3f}{median:>20.0f}{median / n_fixed:>12.2f}")
    at_five = (
        fixed_horizon_per_arm(MDE, SETTINGS.alpha) * (1 + 1 / 19) / 2 * 20
    )  # requests for a 5/95 fixed test
    print(
        f"Kaizen with rollout steps: rolled back {worse_steps.rate(ROLLED_BACK):.3f}, median"
        f" {worse_steps.median_samples():.0f} challenger rewards and {np.median(worse_requests):,.0f} requests"
        f" (a fixed test at 5/95 needs {at_five:,.0f} requests: {np.median(worse_requests) / at_five:.2f}x)"
    )
    ratio = worse["kaizen"].median_samples() / n_fixed

    means = [0.50, 0.55, 0.60, 0.45]
    horizon, batch = 20_000, 500
    regret = bandit_regret(rng, bandit_reps, horizon, batch, means)
    cost, budget, reward_vs_oracle = bandit_budget(rng, max(3, bandit_reps // 4), horizon, batch)
    print(f"\n(c) bandit, arms {means}, {horizon:,} requests, weights every {batch}, {bandit_reps} runs")
    print(f"{'policy':<36}{'cumulative regret':>20}{'x uniform':>12}")
    print(f"{'oracle (always the best arm)':<36}{0.0:>20.1f}{0.0:>12.2f}")
    floor_only = horizon * THOMPSON_FLOORS["thompson"] * sum(max(means) - m for m in means)
    for name in (*THOMPSON_FLOORS, "epsilon_greedy", "uniform"):
        print(f"{name.replace('_', ' '):<36}{regret[name]:>20.1f}{regret[name] / regret['uniform']:>12.2f}")
    print(
        f"  (the 5% floor alone costs {floor_only:.0f} of Thompson's regret: the price of never starving a variant)"
    )
    print(
        f"cost budget {budget:g}/request: Thompson spent {cost:.2f}/request, reward {reward_vs_oracle:.2f}x the budget oracle"
    )
    scales = [0.5, 1.0, 2.0, 4.0, 8.0]
    sweep = mixture_scales(rng, reps // 5, requests, scales)
    print(
        f"\n(d) the mixture scale tau (msprt.MIXTURE_SCALE = {MIXTURE_SCALE:g} x MDE), {reps // 5:,} experiments each"
    )
    print(f"{'tau / MDE':<12}{'A/A false decisions':>22}{'2xMDE: samples/arm':>22}{'x fixed n':>12}")
    for scale, (false_rate, median) in sweep.items():
        print(f"{scale:<12g}{false_rate:>22.4f}{median:>22.0f}{median / n_fixed:>12.2f}")
    print(f"\nelapsed {time.perf_counter() - started:.0f}s")

    print(
        f"RESULT stats_sim aa_false_rollback_rate={null['kaizen'].rate(ROLLED_BACK):.4f} goal<={SETTINGS.alpha}"
    )
    print(
        f"RESULT stats_sim aa_false_promote_rate={null['kaizen'].rate(PROMOTED):.4f} goal<={SETTINGS.alpha}"
    )
    print(
        f"RESULT stats_sim aa_false_rollback_rate_with_steps={null_steps.rate(ROLLED_BACK):.4f} goal<={SETTINGS.alpha}"
    )
    print(f"RESULT stats_sim samples_to_rollback_ratio={ratio:.2f} goal<=0.5")
    print(f"RESULT stats_sim bandit_regret_vs_uniform={regret['thompson'] / regret['uniform']:.2f} goal<=0.5")
    print(f"RESULT stats_sim bandit_cost_vs_budget={cost / budget:.3f} goal<=1.0")


if __name__ == "__main__":
    main()
