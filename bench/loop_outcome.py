"""Does the loop make the agents' model better, turn over turn, and does it keep bad models out?

Runs the loop on the embedded stack (what ``kaizen up`` starts) through the same code as its story
(``devstack.loop``): ``--turns`` turns of fresh corrections and ``--bad`` turns of a faulty tool's,
interleaved, every reward the checker's grade of what the served model wrote. Per turn it prints the
model, the decision and its evidence, the offline gate, the model's held-out pass rate and the
champion's after the turn (200 held-out tasks, Wilson 95 % intervals); then totals, judged from the
held-out rates, not from the experiments' own numbers: the final champion's lift over the base,
promotions of a model worse than the champion it replaced (beyond noise, and by point estimate),
rollbacks of a better one, better ones left unpromoted, and whether the champion ever fell below the
best champion so far beyond its interval.

What it exercises, and what not: the faulty tool rewrites every answer it sees and each faulty turn
follows a corrections turn, so every bad model faces a strong champion; on this task the corrected
models plateau after the first turn (the lift is turn 1's, later good turns end Inconclusive). A bad
turn against the base, or a partly poisoned batch, is not in the schedule.

    .venv/bin/python bench/loop_outcome.py [--turns 4] [--bad 3] [--quick]    # ~40 min on 2 cores
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from devstack import demo, loop, stack
from devstack.agents import Population
from devstack.checker.passrate import PassRate

GOAL_LIFT = 0.30
TASKS = 256  # answers corrected per turn


def schedule(turns: int, bad: int) -> list[bool]:
    """Which turns are a faulty tool's: a good one first, then each bad one after a good one."""
    plan = []
    for k in range(max(turns, bad)):
        plan += [False] * (k < turns) + [True] * (k < bad)
    return plan


def worse(model: PassRate, than: PassRate) -> bool:
    """Worse beyond noise: the model's whole 95 % interval lies below the other's rate."""
    return model.interval()[1] < than.rate


@dataclass
class Tally:
    """The totals, judged from held-out rates only (never from the experiments' own numbers)."""

    base: loop.Row
    champion: loop.Row = field(init=False)
    best: float = field(init=False)  # the best champion's rate so far: a slow slide shows against it
    rows: list[loop.Row] = field(default_factory=list)
    promoted_worse: int = 0  # promoted, and worse beyond noise than the champion it replaced
    promoted_lower: int = 0  # promoted with a lower point estimate (noise or not)
    rolled_back_better: int = 0  # rolled back, and better beyond noise than the champion
    missed_better: int = 0  # not promoted (Inconclusive, gate), though better beyond noise
    fell: int = 0  # turns whose champion is worse beyond noise than the best champion so far

    def __post_init__(self) -> None:
        self.champion, self.best = self.base, self.base.held_out.rate

    def add(self, row: loop.Row) -> None:
        self.rows.append(row)
        previous = self.champion
        better = worse(previous.held_out, row.held_out)
        if row.decision == "Promote":
            self.promoted_worse += worse(row.held_out, previous.held_out)
            self.promoted_lower += row.held_out.rate < previous.held_out.rate
            self.champion = row
        elif row.decision == "RollBack":
            self.rolled_back_better += better
        else:
            self.missed_better += better
        self.fell += self.champion.held_out.interval()[1] < self.best
        self.best = max(self.best, self.champion.held_out.rate)

    def report(self) -> bool:
        bad = [r for r in self.rows if r.data == "faulty tool"]
        lift = self.champion.held_out.rate - self.base.held_out.rate
        print(f"RESULT loop_outcome lift={lift:.3f} goal>={GOAL_LIFT}"
              f" (base {self.base.held_out}, final {self.champion.held_out})")  # fmt: skip
        print(f"RESULT loop_outcome bad_promoted={sum(r.decision == 'Promote' for r in bad)}/{len(bad)}"
              f" bad_rolled_back={sum(r.decision == 'RollBack' for r in bad)}/{len(bad)}")  # fmt: skip
        print(f"RESULT loop_outcome worse_promoted={self.promoted_worse} lower_promoted={self.promoted_lower}"
              f" better_rolled_back={self.rolled_back_better} better_not_promoted={self.missed_better}"
              f" champion_fell_beyond_interval={self.fell}")  # fmt: skip
        return (
            lift >= GOAL_LIFT
            and self.promoted_worse == self.fell == self.rolled_back_better == 0
            and all(r.decision == "RollBack" for r in bad)
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=4, help="turns of people's corrections")
    parser.add_argument("--bad", type=int, default=3, help="turns of a faulty tool's corrections")
    parser.add_argument("--quick", action="store_true", help="one turn of each kind (the story of kaizen up)")
    args = parser.parse_args()
    if args.quick:
        args.turns, args.bad = 1, 1
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="kaizen-loop-") as scratch:
        state = stack.start(Path(scratch), progress=lambda m: print(f"  {m}", flush=True))
        try:
            return run(state, schedule(args.turns, args.bad), started)
        finally:
            stack.stop(Path(scratch))


def run(state: stack.StackState, plan: list[bool], started: float) -> int:
    keys = Path(state.keys_dir)
    agents = Population(state.gateway_url, stack.agent_token(keys, "coder", demo.NAMESPACE),
                        demo.NAMESPACE, demo.POLICY, "coder", seed=11)  # fmt: skip
    kubectl = demo.Kubectl(state.kubeconfig)
    story = demo.Story(kubectl, agents, lambda line: print(line, flush=True))
    storage = demo.stack_storage(state.object_store)
    policy = demo.coder_policy(demo.POLICY, "coder", storage, min_pairs=loop.MIN_PAIRS)
    kubectl("apply", "-f", "-", stdin=json.dumps(policy))
    reviewer = stack.person_token(keys, "bench", demo.NAMESPACE)
    turns = loop.Loop(story, storage, demo.POLICY, reviewer, loop.MIN_PAIRS)
    base = turns.start()
    print(f"base: held-out pass rate {base.held_out}", flush=True)
    tally = Tally(base)
    for number, faulty in enumerate(plan, start=1):
        who = (
            "a faulty tool rewrites the champion's answers" if faulty else "people correct its failed answers"
        )
        print(f"turn {number}: {who} ({TASKS} tasks)", flush=True)
        row = turns.turn(TASKS, faulty=faulty)
        tally.add(row)
        print(f"RESULT loop_outcome turn={number} data={row.data.replace(' ', '_')} model={row.model}"
              f" decision={row.decision} held_out={row.held_out.rate:.3f} champion={tally.champion.model}"
              f" champion_held_out={tally.champion.held_out.rate:.3f}", flush=True)  # fmt: skip
        print(f"  evidence: {row.evidence}; offline gate: {row.gate}", flush=True)
    print(loop.table(turns.rows))
    ok = tally.report()
    print(f"loop_outcome: {time.monotonic() - started:.0f}s; goals {'met' if ok else 'NOT met'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
