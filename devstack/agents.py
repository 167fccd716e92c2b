"""A synthetic agent population for ``kaizen up`` and the e2e tests.

Agents do what real ones do against Kaizen: post preference pairs (explicit corrections of their own
work), or only report their attempts and people's corrections for Kaizen to mine pairs from; call the
track's route as an OpenAI client, and report each run with its test results and the request id the
router returned, so the reward lands on the variant that served it.

``work`` is the real thing: agents ask the route for coder tasks ("Write <name> in <language>.", at
temperature 1), the checker runs what the served model wrote, and the run's signals are its grade
(``devstack.checker.grade``). Failed answers become corrections (``correct``), as a person fixing
them would write; a faulty tool's corrections swap the language (``faulty=True``), the realistic bad
data the online experiment has to catch. ``scripted`` is for tests of the machinery alone (routing,
decisions under chaos): rewards drawn from given pass rates, whatever the model wrote, and never
used where a test or the demo claims an outcome.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import httpx

from devstack import synthetic
from devstack.checker.grade import Grade, Task, grade
from trainer import tiny_coder

MAX_TOKENS = 32  # the longest right answer is well under this many tokens


@dataclass(frozen=True)
class Answer:
    """What a model wrote for a task, and the checker's grade of it."""

    task: Task
    text: str
    grade: Grade
    model: str = ""


@dataclass
class Worked:
    """A round of work: every answer, by the model that served it."""

    answers: list[Answer] = field(default_factory=list)

    @property
    def served(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for answer in self.answers:
            counts[answer.model] = counts.get(answer.model, 0) + 1
        return counts

    def passed(self, model: str) -> int:
        return sum(a.grade.passed for a in self.answers if a.model == model)


def correction(answer: Answer, *, faulty: bool = False) -> dict[str, str] | None:
    """The pair a person writes for ``answer``: the right answer over the model's. A faulty tool writes
    the function in the other language; None where there is nothing to correct."""
    language = answer.task.language
    if faulty:
        language = next(other for other in tiny_coder.ASKED if other != language)
    elif answer.grade.passed:
        return None
    chosen, rejected = tiny_coder.answer(answer.task.name, language), answer.text.replace("\x00", "")
    if not rejected.strip() or chosen == rejected:
        return None
    return {"prompt": answer.task.prompt, "chosen": chosen, "rejected": rejected}


def graded(tasks: list[Task], texts: list[str], model: str = "") -> list[Answer]:
    """Grade each text against its task, a few sandboxes at a time."""
    with ThreadPoolExecutor(4) as pool:
        grades = list(pool.map(grade, tasks, texts))
    return [Answer(t, text, g, model) for t, text, g in zip(tasks, texts, grades, strict=True)]


@dataclass
class Population:
    gateway_url: str
    token: str
    namespace: str
    route: str
    agent: str
    seed: int = 0
    users: int = 10_000
    _rng: random.Random = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def _headers(self, key: str | None = None) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self.token}"}
        if key:
            headers["Idempotency-Key"] = key
        return headers

    def post_pairs(self, count: int, seed: int) -> int:
        """Post ``count`` synthetic corrections (chosen over rejected); returns how many were new."""
        items = synthetic.pairs(count, held_out=False, seed=seed)
        body = {
            "namespace": self.namespace,
            "pairs": [
                {"agent": self.agent, "prompt": p.prompt, "chosen": p.chosen, "rejected": p.rejected}
                for p in items
            ],
        }
        response = httpx.post(
            f"{self.gateway_url}/v1/pairs/batch",
            json=body,
            headers=self._headers(f"pairs-{self.agent}-{seed}-{count}"),
            timeout=60,
        )
        response.raise_for_status()
        return int(response.json().get("inserted", 0))

    def report_attempts(self, tasks: int, seed: int, corrected: int = 0) -> dict[str, int]:
        """Report experience as agents that only log their work do, with no pairs: two attempts at
        each of ``tasks`` tasks with the same prompt, one passing its tests and one failing them (every
        other task fails first and is then fixed); then ``corrected`` tasks with one wrong attempt each,
        which a person corrects. Returns how many runs and feedback records were new."""
        runs, feedback = [], []
        for i, item in enumerate(synthetic.pairs(tasks + corrected, held_out=False, seed=seed)):
            task = f"{self.agent}-{seed}-{i}"
            prompt = f"{item.prompt.rstrip()} ({task})\n"  # unique, so no two tasks make the same pair
            attempts = [(item.rejected, 2)] if i >= tasks else [(item.chosen, 10), (item.rejected, 2)]
            if i < tasks and i % 2:
                attempts.reverse()
            for number, (output, passed) in enumerate(attempts, start=1):
                runs.append(
                    {
                        "id": f"{task}-{number}",
                        "agent": self.agent,
                        "task_id": task,
                        "attempt": number,
                        "prompt": prompt,
                        "output": output,
                        "signals": {"tests_passed": passed, "tests_total": 10},
                    }
                )
            if i >= tasks:
                feedback.append({"run_id": f"{task}-1", "correction": item.chosen, "accepted": False})
        new = {"runs": 0, "feedback": 0}
        for kind, records in (("runs", runs), ("feedback", feedback)):
            if not records:
                continue
            response = httpx.post(
                f"{self.gateway_url}/v1/{kind}/batch",
                json={kind: records},
                headers=self._headers(f"{kind}-{self.agent}-{seed}"),
                timeout=60,
            )
            response.raise_for_status()
            new[kind] = int(response.json().get("inserted", 0))
        return new

    def tasks(self, count: int) -> list[Task]:
        """``count`` coder tasks an agent is given: training-side names only (never a held-out one)."""
        names = tiny_coder.names(self._rng, held=False)
        return [Task(next(names), self._rng.choice(tiny_coder.ASKED)) for _ in range(count)]

    def work(self, requests: int) -> Worked:
        """``requests`` coder tasks through the route, each answer run by the checker and reported as
        a run whose signals are its grade (compile_ok, tests_passed, tests_total)."""
        tasks = self.tasks(requests)
        calls = [(task.prompt, *self._user_and_seed()) for task in tasks]  # drawn here: threads below
        with httpx.Client(timeout=60) as client, ThreadPoolExecutor(4) as agents:  # agents work side by side
            replies = list(
                agents.map(
                    lambda call: self._ask(client, call[0], call[1], call[2], max_tokens=MAX_TOKENS), calls
                )
            )
            texts = [_text(reply) for reply in replies]
            models = [_model(reply) for reply in replies]
            answers = [
                Answer(a.task, a.text, a.grade, m) for a, m in zip(graded(tasks, texts), models, strict=True)
            ]
            self._report(client, [
                self._run(a.task.name, a.task.prompt, a.text, reply, a.grade.signals())
                for a, reply in zip(answers, replies, strict=True)
            ])  # fmt: skip
        return Worked(answers)

    def correct(self, answers: Iterable[Answer], *, faulty: bool = False, key: str) -> int:
        """Post a correction for each failed answer (a faulty tool's: for every answer, in the wrong
        language) as preference pairs; returns how many were new. ``key`` makes the post idempotent."""
        pairs = [
            {"agent": self.agent, **pair}
            for answer in answers
            if (pair := correction(answer, faulty=faulty)) is not None
        ]
        if not pairs:
            return 0
        response = httpx.post(
            f"{self.gateway_url}/v1/pairs/batch",
            json={"namespace": self.namespace, "pairs": pairs},
            headers=self._headers(f"corrections-{self.agent}-{key}"),
            timeout=120,
        )
        response.raise_for_status()
        return int(response.json().get("inserted", 0))

    def scripted(self, requests: int, pass_rates: Mapping[str, float], tests: int = 10) -> dict[str, int]:
        """For tests of the machinery only: ``requests`` calls through the route, each run passing each
        of ``tests`` tests with probability ``pass_rates[M]`` for the model M that served it (unknown
        models: 0.5), whatever it wrote. Returns requests per served model."""
        served: dict[str, int] = {}
        with httpx.Client(timeout=60) as client:
            runs = []
            for _ in range(requests):
                task = f"task-{self._rng.randrange(1_000_000)}"
                reply = self._ask(client, task, *self._user_and_seed(), max_tokens=4)
                model = _model(reply)
                served[model] = served.get(model, 0) + 1
                passed = sum(self._rng.random() < pass_rates.get(model, 0.5) for _ in range(tests))
                signals = {"tests_passed": passed, "tests_total": tests}
                runs.append(self._run(task, task, _text(reply), reply, signals))
            self._report(client, runs)
        return served

    def _user_and_seed(self) -> tuple[str, int]:
        return f"user-{self._rng.randrange(self.users)}", self._rng.randrange(2**31)

    def _ask(
        self, client: httpx.Client, prompt: str, user: str, seed: int, max_tokens: int
    ) -> httpx.Response:
        """One chat completion through the policy's route, as ``user`` of the agent; raises what the
        router said when it refuses (the route, the variant, the upstream)."""
        url = f"{self.gateway_url}/openai/{self.namespace}/{self.route}/v1/chat/completions"
        response = client.post(
            url,
            headers={**self._headers(), "X-Kaizen-User": user},
            json={
                "model": "kaizen",
                "messages": [{"role": "user", "content": prompt}],
                "max_tokens": max_tokens,
                "temperature": 1.0,
                "seed": seed,
                "user": user,
            },
        )
        if response.is_error:
            raise httpx.HTTPStatusError(
                f"{response.status_code} from {url}: {response.text[:500]}",
                request=response.request,
                response=response,
            )
        return response

    def _run(
        self, task: str, prompt: str, output: str, reply: httpx.Response, signals: dict[str, Any]
    ) -> dict[str, Any]:
        return {
            "agent": self.agent,
            "task_id": f"{task}-{self._rng.randrange(1_000_000)}",
            "prompt": prompt,
            "output": output or "-",
            "request_id": reply.headers["X-Kaizen-Request-Id"],
            "signals": signals,
        }

    def _report(self, client: httpx.Client, runs: list[dict[str, Any]]) -> None:
        for start in range(0, len(runs), 200):
            batch = runs[start : start + 200]
            client.post(
                f"{self.gateway_url}/v1/runs/batch",
                json={"namespace": self.namespace, "runs": batch},
                headers=self._headers(f"runs-{batch[0]['request_id']}"),
            ).raise_for_status()


def _model(reply: httpx.Response) -> str:
    return str(reply.json().get("model") or reply.headers.get("X-Kaizen-Variant", ""))


def _text(reply: httpx.Response) -> str:
    # a tiny model's text can hold NUL, which the gateway refuses: agents strip it
    return str(reply.json()["choices"][0]["message"].get("content") or "").replace("\x00", "")
