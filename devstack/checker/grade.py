"""Grade what a model wrote for "Write <name> in <language>." by running it.

The answer must parse in the language the prompt asks for, define the function the prompt names, and
return its argument unchanged for each test input: the checks an agent's CI would run. Python and
JavaScript are the task's languages because both can be parsed *and executed* in a few tens of
milliseconds with interpreters every machine of ours has; each answer runs in its own sandbox
process (``devstack.checker.sandbox``). An answer that reaches for files, the network or a process,
runs past its deadline or floods its output scores no passed test. The grade becomes the run's
``signals`` exactly as an agent would report them.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devstack.checker import sandbox
from trainer import tiny_coder

LANGUAGES = tiny_coder.ASKED  # the task asks only for languages this checker can run
# Inputs an identity function must return unchanged; each is one test.
TEST_INPUTS: tuple[Any, ...] = (0, 7, -3, 2.5, "kaizen", "", [1, 2], {"k": "v"}, True, None)
_PROMPT = re.compile(r"Write (?P<name>[A-Za-z_][A-Za-z0-9_]{0,63}) in (?P<language>[a-z]+)\.")
_HARNESS = Path(__file__).parent
_FILES = {"python": ("harness_python.py", "answer.py"), "javascript": ("harness_javascript.js", "answer.js")}
_MAX_ANSWER = 16 * 1024
VIOLATION = 86  # the harnesses' exit status for an attempt to reach outside


@dataclass(frozen=True)
class Task:
    name: str
    language: str

    @property
    def prompt(self) -> str:
        return tiny_coder.prompt(self.name, self.language)

    @classmethod
    def from_prompt(cls, prompt: str) -> Task | None:
        match = _PROMPT.search(prompt)
        if match is None or match["language"] not in LANGUAGES:
            return None
        return cls(match["name"], match["language"])


@dataclass(frozen=True)
class Grade:
    compiled: bool
    tests_passed: int
    tests_total: int
    reason: str  # why tests failed, in a few words ("" when all passed)

    @property
    def passed(self) -> bool:
        return self.compiled and self.tests_passed == self.tests_total

    def signals(self) -> dict[str, Any]:
        """The run's ``signals`` as the gateway takes them."""
        return {
            "compile_ok": self.compiled,
            "tests_passed": self.tests_passed,
            "tests_total": self.tests_total,
        }


def expected(language: str, value: Any) -> str:
    """What the harness prints for ``value`` returned unchanged."""
    if language == "python":
        return repr(value)
    return json.dumps(value, separators=(",", ":"))


def _command(language: str) -> tuple[list[str], sandbox.Limits]:
    if language == "python":
        return ["/usr/bin/python3", "-I", "-S", "-B", "/task/harness_python.py"], sandbox.Limits()
    # V8 reserves far more address space than it uses: bound its heap instead of RLIMIT_AS.
    # --experimental-vm-modules: so that a dynamic import() reaches the harness's refusal.
    node = [
        "/usr/bin/node",
        "--max-old-space-size=64",
        "--experimental-permission",
        "--allow-fs-read=/task/*",
    ]
    flags = ["--experimental-vm-modules", "--no-warnings"]
    return [*node, *flags, "/task/harness_javascript.js"], sandbox.Limits(memory_bytes=None)


def grade(task: Task, answer: str) -> Grade:
    """Run ``answer`` against ``task``'s tests in a sandbox and say how it did."""
    total = len(TEST_INPUTS)
    if len(answer.encode()) > _MAX_ANSWER:
        return Grade(False, 0, total, "answer too long")
    harness, answer_file = _FILES[task.language]
    files = {
        harness: (_HARNESS / harness).read_text(encoding="utf-8"),
        answer_file: answer,
        "spec.json": json.dumps({"name": task.name, "inputs": list(TEST_INPUTS)}),
    }
    argv, limits = _command(task.language)
    outcome = sandbox.run(argv, files, limits)
    if outcome.timed_out:
        return Grade(True, 0, total, "timed out")
    result = _result(outcome.stdout)
    if outcome.returncode != 0 or result is None:
        # Killed by a limit (a signal) or by the harness's guard: the answer parsed and was running.
        # (bubblewrap reports a child killed by signal N as exit 128 + N).
        code = outcome.returncode or 0
        ran = code == VIOLATION or code < 0 or code > 128
        why = "killed at a time or memory limit" if code > 128 or code < 0 else f"exit {code}"
        refused = outcome.stderr.strip().splitlines()[-1:] or [why]
        return Grade(ran or bool(result and result.get("compiled")), 0, total, refused[0][:200])
    if not result.get("compiled"):
        return Grade(False, 0, total, "does not parse")
    if not result.get("defined"):
        return Grade(True, 0, total, f"no function {task.name}")
    outputs = result.get("outputs", [])
    passed = sum(
        out == expected(task.language, value) for out, value in zip(outputs, TEST_INPUTS, strict=False)
    )
    return Grade(True, passed, total, "" if passed == total else "wrong results")


def _result(stdout: str) -> dict[str, Any] | None:
    """The harness's result line: the last line that carries its mark."""
    lines = [line for line in stdout.splitlines() if line.startswith("KAIZEN-RESULT ")]
    if not lines:
        return None
    try:
        value = json.loads(lines[-1].removeprefix("KAIZEN-RESULT "))
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
