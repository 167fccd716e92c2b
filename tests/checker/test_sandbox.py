"""The sandbox on its own, without the harnesses' guards: what the kernel boundary holds by itself."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from devstack.checker import sandbox
from devstack.checker.grade import TEST_INPUTS, Task, grade

PYTHON = "/usr/bin/python3"


def run_python(code: str, limits: sandbox.Limits | None = None) -> sandbox.Outcome:
    return sandbox.run([PYTHON, "-I", "/task/program.py"], {"program.py": code}, limits)


def test_the_callers_files_and_environment_are_not_there(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("s3cr3t")
    monkeypatch.setenv("KAIZEN_TEST_SECRET", "s3cr3t")
    probe = f"""
import os
for path in ({str(secret)!r}, {os.getcwd()!r}, {str(Path.home())!r}, "/etc/passwd", "/var"):
    print(path, os.path.exists(path))
print("env", sorted(os.environ))
print("pids", sorted(p for p in os.listdir("/proc") if p.isdigit()))
"""
    outcome = run_python(probe)
    assert outcome.returncode == 0, outcome.stderr
    lines = outcome.stdout.splitlines()
    assert all(line.endswith(" False") for line in lines[:5]), lines
    assert "KAIZEN_TEST_SECRET" not in outcome.stdout
    assert "s3cr3t" not in outcome.stdout
    assert lines[6] == "pids ['1', '2']"  # bubblewrap's init and the program: no other process in view


def test_the_task_folder_is_read_only_and_tmp_is_private(tmp_path: Path) -> None:
    outcome = run_python(
        "import os\n"
        "try:\n    open('/task/program.py', 'a').write('x')\nexcept OSError as e:\n    print('task', e.errno)\n"
        "open('/tmp/left-behind', 'w').write('x')\nprint('tmp', os.listdir('/tmp'))\n"
    )
    assert outcome.returncode == 0, outcome.stderr
    assert "task 30" in outcome.stdout  # EROFS
    assert "tmp ['left-behind']" in outcome.stdout
    assert not Path("/tmp/left-behind").exists()


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    server = socket.create_server(("127.0.0.1", 0))
    server.setblocking(False)
    yield server
    server.close()


def test_there_is_no_network_at_all(listener: socket.socket) -> None:
    port = listener.getsockname()[1]
    outcome = run_python(
        "import socket\n"
        f"for host in ('127.0.0.1', '10.0.0.1', '1.1.1.1'):\n"
        "    try:\n"
        f"        socket.create_connection((host, {port}), timeout=1)\n"
        "        print(host, 'connected')\n"
        "    except OSError as e:\n"
        "        print(host, 'refused', e.errno)\n"
    )
    assert outcome.returncode == 0, outcome.stderr
    assert "connected" not in outcome.stdout
    assert outcome.stdout.count("refused") == 3
    with pytest.raises(BlockingIOError):
        listener.accept()


def test_a_deadline_kills_a_program_that_waits_without_using_cpu() -> None:
    started = time.monotonic()
    outcome = run_python("import time\ntime.sleep(60)\n", sandbox.Limits(wall_seconds=1.0))
    assert outcome.timed_out
    assert time.monotonic() - started < 10


def test_a_cpu_limit_kills_a_busy_loop_before_the_deadline() -> None:
    outcome = run_python("while True:\n    pass\n", sandbox.Limits(wall_seconds=30.0, cpu_seconds=1))
    assert not outcome.timed_out
    assert outcome.returncode not in (0, None)


def test_an_output_flood_is_cut_at_the_source() -> None:
    limits = sandbox.Limits(file_bytes=2**20, output_bytes=4096)
    outcome = run_python("import sys\nwhile True:\n    sys.stdout.write('x' * 65536)\n", limits)
    assert outcome.returncode != 0  # SIGXFSZ at the file-size limit, long before the deadline
    assert len(outcome.stdout) == 4096


def test_memory_is_bounded() -> None:
    outcome = run_python(
        "b = bytearray(2 * 1024**3)\nprint('allocated')\n", sandbox.Limits(memory_bytes=256 * 2**20)
    )
    assert outcome.returncode != 0
    assert "MemoryError" in outcome.stderr
    assert "allocated" not in outcome.stdout


def test_without_bubblewrap_nothing_runs_and_the_error_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(sandbox.SandboxUnavailable, match="apt-get install bubblewrap"):
        run_python("print('ran')\n")


def test_a_forged_result_line_does_not_pass_a_wrong_answer() -> None:
    forged = '{"compiled": true, "defined": true, "outputs": ' + str([repr(v) for v in TEST_INPUTS]) + "}"
    answer = f"print('KAIZEN-RESULT ' + {forged!r})\ndef add_user(x):\n    return None\n"
    result = grade(Task("add_user", "python"), answer)
    assert result.tests_passed == 1  # None in, None out: only the test the wrong function really passes


def test_an_oversized_answer_is_not_run() -> None:
    result = grade(Task("add_user", "python"), "def add_user(x):\n    return x\n" + "#" * 20_000)
    assert not result.compiled
    assert result.reason == "answer too long"


@pytest.mark.parametrize(
    ("language", "attempt"),
    [
        ("python", "import os\nos.fork()\n"),
        ("python", "import subprocess\nsubprocess.run(['id'])\n"),
        ("python", "__import__('os').system('id')\n"),
        ("javascript", "try { require('child_process').execSync('id'); } catch (e) {}\n"),
    ],
)
def test_starting_a_process_fails_the_answer(language: str, attempt: str) -> None:
    right = {
        "python": "def add_user(x):\n    return x\n",
        "javascript": "function add_user(x) { return x; }\n",
    }
    result = grade(Task("add_user", language), attempt + right[language])
    assert result.tests_passed == 0
    assert "refused" in result.reason
