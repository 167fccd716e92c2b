"""A synthetic agent population for ``kaizen up`` and the e2e tests.

Agents do what real ones do against Kaizen: post preference pairs (explicit corrections of their own
work), or only report their attempts and people's corrections for Kaizen to mine pairs from; call the
track's route as an OpenAI client, and report each run with its test results and the request id the
router returned, so the reward lands on the variant that served it. A tiny CPU model
cannot really solve tasks, so an agent's test pass rate is set per served *model* by ``quality`` — the
knob that makes one adapter better and another worse, said plainly wherever the demo shows it.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field

import httpx

from devstack import synthetic


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

    def work(self, requests: int, quality: Mapping[str, float], tests: int = 10) -> dict[str, int]:
        """``requests`` tasks through the route; a run served by model M passes each of ``tests`` tests
        with probability ``quality[M]`` (unknown models: 0.5). Returns requests per served model."""
        url = f"{self.gateway_url}/openai/{self.namespace}/{self.route}/v1/chat/completions"
        served: dict[str, int] = {}
        runs = []
        with httpx.Client(timeout=60) as client:
            for _ in range(requests):
                user = f"user-{self._rng.randrange(self.users)}"
                task = f"task-{self._rng.randrange(1_000_000)}"
                response = client.post(
                    url,
                    headers={**self._headers(), "X-Kaizen-User": user},
                    json={
                        "model": "kaizen",
                        "messages": [{"role": "user", "content": task}],
                        "max_tokens": 4,
                        "user": user,
                    },
                )
                if response.is_error:  # say what the router said: the route, the variant, the upstream
                    raise httpx.HTTPStatusError(
                        f"{response.status_code} from {url}: {response.text[:500]}",
                        request=response.request,
                        response=response,
                    )
                model = str(response.json().get("model") or response.headers.get("X-Kaizen-Variant", ""))
                served[model] = served.get(model, 0) + 1
                passed = sum(self._rng.random() < quality.get(model, 0.5) for _ in range(tests))
                runs.append(
                    {
                        "agent": self.agent,
                        "task_id": task,
                        "prompt": task,
                        # a tiny model's text can hold NUL, which the gateway refuses: agents strip it
                        "output": (response.json()["choices"][0]["message"].get("content") or "-").replace(
                            "\x00", ""
                        ),
                        "request_id": response.headers["X-Kaizen-Request-Id"],
                        "signals": {"tests_passed": passed, "tests_total": tests},
                    }
                )
            for start in range(0, len(runs), 200):
                batch = runs[start : start + 200]
                client.post(
                    f"{self.gateway_url}/v1/runs/batch",
                    json={"namespace": self.namespace, "runs": batch},
                    headers=self._headers(f"runs-{batch[0]['request_id']}"),
                ).raise_for_status()
        return served
