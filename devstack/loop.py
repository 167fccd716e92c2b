"""The loop turning on the embedded stack, with rewards from the checker: one code path for the story
``kaizen up`` tells (two turns) and for bench/loop_outcome.py (N turns, K bad models).

A turn: agents' answers that the checker failed are corrected (the first turn's come from the agents'
work with the base before Kaizen; later ones from the route, which the champion serves); the
corrections, posted as preference pairs, start the policy's next TrainingRun; its adapter is served
and its Experiment decides on the agents' traffic, every reward being the checker's grade of what the
served model wrote. A bad turn is a faulty tool's: it "corrects" every answer into the other
language, and the run's held-out split comes from the same poisoned pairs, so the offline gate passes.
After a rollback, a person reviews the pairs waiting in the queue and rejects the ones whose corrected
answer the checker fails, so the next turn does not train on them again.

Each model is also measured on held-out tasks (names no corpus or task contains) by downloading its
adapter from the object store and grading its answers (``devstack.checker.heldout``): the pass rates
that say, from outside the experiment, whether the loop got better.
"""

from __future__ import annotations

import base64
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from devstack.agents import Answer, graded
from devstack.checker import heldout
from devstack.checker.grade import Task, grade
from devstack.checker.passrate import PassRate
from devstack.demo import Storage, Story
from devstack.objectstore import REGION
from trainer import tiny

MIN_PAIRS = 20  # the story's trigger.minNewPairs: a turn's corrections start one run
HELD_OUT = 200  # tasks per held-out measurement: the floor, Wilson half-width ~7 points at 50 %


@dataclass(frozen=True)
class Row:
    """One model of the story: its data, its held-out pass rate, the offline gate and the decision."""

    model: str
    data: str  # "pre-trained", "corrections" or "faulty tool"
    held_out: PassRate
    gate: str = "-"
    decision: str = "-"
    evidence: str = ""


@dataclass
class Loop:
    story: Story
    storage: Storage
    policy: str
    reviewer_token: str  # a person's: rejecting pairs takes reviews/create
    min_pairs: int  # the policy's trigger.minNewPairs: fewer new corrections start no run
    held_out_tasks: int = HELD_OUT
    base: Path = field(default_factory=lambda: tiny.resolve("tiny://kaizen-coder"))
    rows: list[Row] = field(default_factory=list)
    turns: int = 0

    @property
    def say(self) -> Callable[[str], None]:
        return self.story.say

    def measure(self, run: str | None = None) -> PassRate:
        """The held-out pass rate of ``run``'s adapter (downloaded for the measurement and removed
        after it), or of the base when no run is named."""
        with tempfile.TemporaryDirectory(prefix="kaizen-adapter-") as folder:
            adapter = self._download(run, Path(folder)) if run else None
            model, tokenizer = heldout.load(self.base, adapter)
            return heldout.pass_rate(model, tokenizer, heldout.tasks(self.held_out_tasks))

    def start(self) -> Row:
        """The base's row: the pass rate every turn is compared with."""
        row = Row("kaizen-coder (base)", "pre-trained", self.measure())
        self.rows.append(row)
        return row

    def history(self, count: int) -> list[Answer]:
        """The agents' answers from before Kaizen, written by the base itself at temperature 1."""
        model, tokenizer = heldout.load(self.base)
        tasks = self.story.agents.tasks(count)
        texts = heldout.sample(model, tokenizer, [t.prompt for t in tasks], seed=self.turns)
        return graded(tasks, texts, "kaizen-coder")

    def turn(self, tasks: int, *, faulty: bool = False) -> Row:
        """One turn: corrections of ``tasks`` answers (a faulty tool's when ``faulty``), a run, its
        model served and decided on. Returns the turn's row."""
        self.turns += 1
        run, agents = f"{self.policy}-{self.turns:04d}", self.story.agents
        answers = self.history(tasks) if self.turns == 1 else agents.work(tasks).answers
        failed = sum(not a.grade.passed for a in answers)
        posted = agents.correct(answers, faulty=faulty, key=f"{self.policy}-turn-{self.turns}")
        who = "a faulty tool rewrote" if faulty else "people corrected"
        self.say(f"  {len(answers)} answers, {failed} failed by the checker; {who} {posted} of them")
        if posted < self.min_pairs:  # say so now rather than wait for a run the policy will not start
            raise RuntimeError(
                f"only {posted} new corrections, fewer than the policy's trigger.minNewPairs"
                f" ({self.min_pairs}): no {run} will start; correct more answers or lower the trigger"
            )
        if not self._trained(run):
            self._review_after(run)
            return self._record(Row(run, _data(faulty), self.measure(run), "not met", "-"))
        gate = self._gate(run)
        self.story.serve(run)
        held = self.measure(run)
        self.say(f"  held-out pass rate of {run}: {held} (offline gate: {gate})")
        status = self.story.experiment(run)["status"]
        row = Row(run, _data(faulty), held, gate, status["decision"], _evidence(status))
        self.say(f"  ✓ {row.decision}: {status.get('decisionReason', '')}")
        if row.decision == "RollBack":
            self._review_after(run)
        return self._record(row)

    def _review_after(self, run: str) -> None:
        """After a rollback or a failed gate, a person reviews what the run trained on."""
        self.say(f"  a person reviews the queue after {run}: {self.reject_bad_pairs()} pairs rejected")

    def _record(self, row: Row) -> Row:
        self.rows.append(row)
        return row

    def _trained(self, run: str) -> bool:
        self.story.trained(run)
        conditions = (
            (self.story.kubectl.get("trainingrun", run) or {}).get("status", {}).get("conditions", [])
        )
        return any(c["type"] == "GatePassed" and c["status"] == "True" for c in conditions)

    def _gate(self, run: str) -> str:
        metrics = (self.story.kubectl.get("trainingrun", run) or {})["status"].get("metrics", {})
        return f"preference accuracy {metrics.get('preferenceAccuracy', 0):.2f}"

    def _download(self, run: str, folder: Path) -> Path:
        """The run's adapter, downloaded into ``folder`` from the object store with the policy's
        storage Secret."""
        uri = (self.story.kubectl.get("trainingrun", run) or {})["status"]["adapter"]["uri"]
        secret = self.story.kubectl.get("secret", self.storage.access["secretRef"]) or {}
        keys = {k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()}
        import fsspec

        fs = fsspec.filesystem(
            "s3",
            key=keys["AWS_ACCESS_KEY_ID"],
            secret=keys["AWS_SECRET_ACCESS_KEY"],
            client_kwargs={"endpoint_url": self.storage.access["endpoint"], "region_name": REGION},
        )
        for name in ("adapter_config.json", "adapter_model.safetensors"):
            fs.get(f"{uri.removeprefix('s3://').rstrip('/')}/{name}", str(folder / name))
        return folder

    def reject_bad_pairs(self) -> int:
        """What a person does after a rollback: read the pending pairs of the track and reject each one
        whose corrected answer fails the checker (approving the rest, so they leave the queue)."""
        agents, rejected, seen = self.story.agents, 0, set[str]()
        headers = {"Authorization": f"Bearer {self.reviewer_token}"}
        while True:
            queue = httpx.get(
                f"{agents.gateway_url}/v1/review/queue",
                params={"agent": agents.agent, "limit": 500, "namespace": agents.namespace},
                headers=headers, timeout=60,
            )  # fmt: skip
            queue.raise_for_status()
            pairs = queue.json()["pairs"]
            if not pairs:
                return rejected
            if seen.intersection(p["id"] for p in pairs):  # a verdict did not take: never loop on it
                raise RuntimeError(f"pairs stayed in the review queue after a verdict: {sorted(seen)[:3]}")
            seen.update(p["id"] for p in pairs)
            with ThreadPoolExecutor(4) as pool:  # each review runs the corrected answer
                reviews = list(pool.map(review_verdict, pairs))
            rejected += sum(r["decision"] == "rejected" for r in reviews)
            httpx.post(
                f"{agents.gateway_url}/v1/reviews/batch",
                json={"namespace": agents.namespace, "reviews": reviews},
                headers={**headers, "Idempotency-Key": f"review-{pairs[0]['id']}-{len(pairs)}"},
                timeout=60,
            ).raise_for_status()


def review_verdict(pair: dict[str, Any]) -> dict[str, Any]:
    """A person's verdict on a pending pair: rejected when its corrected answer fails the checker."""
    task = Task.from_prompt(pair["prompt"])
    good = task is not None and grade(task, pair["chosen"]).passed
    note = "" if good else "the corrected answer fails the checker"
    return {"kind": "pair", "id": pair["id"], "decision": "approved" if good else "rejected", "note": note}


def _data(faulty: bool) -> str:
    return "faulty tool" if faulty else "corrections"


def _evidence(status: dict[str, Any]) -> str:
    return ", ".join(
        f"{v['name']} n={v.get('samples', 0)} mean {v.get('meanReward', 0) or 0:.2f}"
        for v in status.get("variants", [])
    )


def table(rows: list[Row]) -> str:
    """The story's table: model, data, held-out pass rate by the checker, offline gate, decision."""
    header = ("MODEL", "TRAINED ON", "HELD-OUT PASS RATE (checker, 95% CI)", "OFFLINE GATE", "DECISION")
    lines = [header] + [(r.model, r.data, str(r.held_out), r.gate, r.decision) for r in rows]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip() for line in lines
    )
