"""The checker grades what a model wrote by running it: real interpreters, a real sandbox.

Every answer here goes through bubblewrap and Debian's python3 / node, as the demo's agents' do.
Hostile answers (files, sockets, processes, endless loops, floods) must score no passed test, and must
not get what they reached for: the sandbox and the harnesses are each checked for that.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest

from devstack.checker.grade import LANGUAGES, TEST_INPUTS, Task, grade

PY = Task("add_user", "python")
JS = Task("add_user", "javascript")
RIGHT = {"python": "def add_user(x):\n    return x\n", "javascript": "function add_user(x) { return x; }\n"}


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_right_answer_passes_every_test(language: str) -> None:
    result = grade(Task("add_user", language), RIGHT[language])
    assert (result.compiled, result.tests_passed, result.tests_total) == (
        True,
        len(TEST_INPUTS),
        len(TEST_INPUTS),
    )
    assert result.passed
    assert result.signals() == {
        "compile_ok": True,
        "tests_passed": len(TEST_INPUTS),
        "tests_total": len(TEST_INPUTS),
    }


def test_the_other_language_does_not_parse() -> None:
    assert grade(PY, RIGHT["javascript"]).compiled is False
    assert grade(JS, RIGHT["python"]).compiled is False
    assert grade(PY, RIGHT["javascript"]).tests_passed == 0


@pytest.mark.parametrize(
    ("task", "answer", "reason"),
    [
        (PY, "def add_usr(x):\n    return x\n", "no function add_user"),
        (JS, "function add_usr(x) { return x; }\n", "no function add_user"),
        (PY, "def add_user(x):\n    return str(x)\n", "wrong results"),
        (JS, "function add_user(x) { return x + 0; }\n", "wrong results"),
        (PY, "def add_user(x):\n    raise ValueError(x)\n", "wrong results"),
        (JS, "function add_user(x) { return x; \n", "does not parse"),
    ],
)
def test_a_wrong_answer_says_why(task: Task, answer: str, reason: str) -> None:
    result = grade(task, answer)
    assert not result.passed
    assert result.reason == reason


def test_a_partly_right_answer_counts_the_tests_it_passes() -> None:
    result = grade(PY, "def add_user(x):\n    return x if isinstance(x, (int, float)) else None\n")
    numbers = sum(isinstance(v, (int, float)) or v is None for v in TEST_INPUTS)
    assert result.compiled
    assert result.tests_passed == numbers < result.tests_total


@pytest.mark.parametrize(
    ("task", "answer"),
    [
        (PY, "print(open('/etc/hostname').read())\n" + RIGHT["python"]),
        (PY, "try:\n    open('/task/spec.json')\nexcept Exception:\n    pass\n" + RIGHT["python"]),
        (PY, "import pathlib\n" + RIGHT["python"]),
        (PY, "import os\nos.listdir('/')\n" + RIGHT["python"]),
        (PY, "import io\nio.open('/etc/passwd')\n" + RIGHT["python"]),
        (JS, "try { require('fs').readFileSync('/etc/passwd'); } catch (e) {}\n" + RIGHT["javascript"]),
        (JS, "try { process.binding('fs'); } catch (e) {}\n" + RIGHT["javascript"]),
        (JS, "import('fs').catch(() => 0);\n" + RIGHT["javascript"]),
    ],
)
def test_an_answer_that_reaches_for_files_fails_even_if_it_catches_the_error(task: Task, answer: str) -> None:
    result = grade(task, answer)
    assert result.tests_passed == 0
    assert "refused" in result.reason


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A TCP server on the host's loopback. A connection made to it waits in its backlog, accepted or
    not, even after the client is gone: so once the answer's process has ended, ``accept`` tells."""
    server = socket.create_server(("127.0.0.1", 0))
    server.setblocking(False)
    yield server
    server.close()


def connections(server: socket.socket) -> int:
    count = 0
    while True:
        try:
            server.accept()[0].close()
        except BlockingIOError:
            return count
        count += 1


@pytest.mark.parametrize(
    ("language", "attempt"),
    [
        (
            "python",
            "try:\n    import socket\n    socket.create_connection(('127.0.0.1', {port}), 1)\nexcept Exception:\n    pass\n",
        ),
        (
            "python",
            "try:\n    __import__('urllib.request').request.urlopen('http://127.0.0.1:{port}/')\nexcept Exception:\n    pass\n",
        ),
        ("javascript", "try {{ fetch('http://127.0.0.1:{port}/'); }} catch (e) {{}}\n"),
        ("javascript", "try {{ new WebSocket('ws://127.0.0.1:{port}/'); }} catch (e) {{}}\n"),
    ],
)
def test_an_answer_that_opens_a_socket_fails_and_reaches_nobody(
    listener: socket.socket, language: str, attempt: str
) -> None:
    port = listener.getsockname()[1]
    result = grade(Task("add_user", language), attempt.format(port=port) + RIGHT[language])
    assert result.tests_passed == 0
    assert "refused" in result.reason
    assert connections(listener) == 0


@pytest.mark.parametrize(
    ("task", "answer"),
    [
        (PY, "while True:\n    pass\n"),
        (PY, "def add_user(x):\n    while True:\n        pass\n"),
        (PY, "def add_user(x):\n    return add_user(x) or x\n"),
        (JS, "while (true) {}\n"),
        (JS, "function add_user(x) { for (;;) {} }\n"),
        (JS, "Promise.resolve().then(() => { for (;;) {} });\n" + RIGHT["javascript"]),
        (JS, "function add_user(x) { return add_user(x); }\n"),
    ],
)
def test_an_answer_that_never_ends_is_stopped_and_fails(task: Task, answer: str) -> None:
    started = time.monotonic()
    result = grade(task, answer)
    assert result.tests_passed == 0
    assert time.monotonic() - started < 15  # stopped by the CPU limit or the deadline, not left running
