"""Does the loop make the agents' model better, turn over turn, and does it keep bad models out?

Runs the loop on the embedded stack (what ``kaizen up`` starts) through the same code as its story
(``devstack.loop``): ``--turns`` turns of fresh corrections and ``--bad`` turns of a faulty tool's,
interleaved, every reward the checker's grade of what the served model wrote. Per turn it prints the
model, the decision and its evidence, the offline gate, the model's held-out pass rate and the
champion's after the turn (200 held-out tasks, Wilson 95 % intervals); then totals, judged from the
held-out rates, not from the experiments' own numbers: the final champion's lift over the base,
promotions of a model worse than the champion it replaced, rollbacks of a better one, and whether the
champion's rate ever fell beyond its interval.

    .venv/bin/python bench/loop_outcome.py [--turns 4] [--bad 3] [--quick]    # ~40 min on 2 cores
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
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
    policy = demo.coder_policy(demo.POLICY, "coder", storage, min_pairs=20)
    kubectl("apply", "-f", "-", stdin=json.dumps(policy))
    turns = loop.Loop(story, storage, demo.POLICY, stack.person_token(keys, "bench", demo.NAMESPACE))
    base = champion = turns.start()
    print(f"base: held-out pass rate {base.held_out}", flush=True)
    promoted_worse = rolled_back_better = fell = 0
    for number, faulty in enumerate(plan, start=1):
        who = (
            "a faulty tool rewrites the champion's answers" if faulty else "people correct its failed answers"
        )
        print(f"turn {number}: {who} ({TASKS} tasks)", flush=True)
        row = turns.turn(TASKS, faulty=faulty)
        previous = champion
        if row.decision == "Promote":
            promoted_worse += worse(row.held_out, previous.held_out)
            champion = row
        elif row.decision == "RollBack":
            rolled_back_better += worse(previous.held_out, row.held_out)
        fell += worse(champion.held_out, previous.held_out)
        print(f"RESULT loop_outcome turn={number} data={row.data.replace(' ', '_')} model={row.model}"
              f" decision={row.decision} held_out={row.held_out.rate:.3f} champion={champion.model}"
              f" champion_held_out={champion.held_out.rate:.3f}", flush=True)  # fmt: skip
        print(f"  evidence: {row.evidence}; offline gate: {row.gate}", flush=True)
    print(loop.table(turns.rows))
    bad = [r for r in turns.rows if r.data == "faulty tool"]
    lift = champion.held_out.rate - base.held_out.rate
    print(
        f"RESULT loop_outcome lift_pp={lift:.3f} goal>={GOAL_LIFT} (base {base.held_out}, final {champion.held_out})"
    )
    print(f"RESULT loop_outcome bad_promoted={sum(r.decision == 'Promote' for r in bad)}/{len(bad)}"
          f" bad_rolled_back={sum(r.decision == 'RollBack' for r in bad)}/{len(bad)}")  # fmt: skip
    print(f"RESULT loop_outcome worse_promoted={promoted_worse} better_rolled_back={rolled_back_better}"
          f" champion_fell_beyond_interval={fell}")  # fmt: skip
    ok = (
        lift >= GOAL_LIFT and promoted_worse == 0 and fell == 0 and all(r.decision == "RollBack" for r in bad)
    )
    print(f"loop_outcome: {time.monotonic() - started:.0f}s; goals {'met' if ok else 'NOT met'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
