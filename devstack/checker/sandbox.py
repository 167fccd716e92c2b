"""Run a program that a model wrote, with nothing to reach and a deadline.

The boundary is the kernel's, through bubblewrap (the tool Flatpak uses to confine apps): a new
user, PID, network, IPC and UTS namespace, so the program sees no network interface but loopback in
its own empty namespace and no other process; a root filesystem holding only ``/usr`` read-only
(interpreters and their libraries), a fresh ``/tmp`` and the task's own folder read-only; an empty
environment. Resource limits bound CPU time, memory and file size, and a wall-clock deadline kills
the whole namespace (``--die-with-parent`` and the PID namespace take every child with it).

Compared: seccomp bindings for Python (pyseccomp, last released 2021) filter syscalls but leave the
filesystem in view; Python's audit hooks and Node's permission model each cover one language and
neither is a boundary on its own; nsjail and gVisor are not in Debian's stable archive. The language
harnesses still use those in-process guards, not as the boundary but so that an *attempt* to reach
outside is scored as a failure instead of an exception the program could catch.
"""

from __future__ import annotations

import os
import resource
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

INSTALL_HINT = "install bubblewrap (apt-get install bubblewrap, or: bash hack/sandbox.sh)"
TASK_DIR = "/task"


class SandboxUnavailable(RuntimeError):
    """The machine cannot confine a program; nothing was run."""


@dataclass(frozen=True)
class Limits:
    wall_seconds: float = 5.0
    cpu_seconds: int = 2
    memory_bytes: int | None = 512 * 2**20  # address space; None for runtimes that reserve more (V8)
    file_bytes: int = 2**20
    output_bytes: int = 64 * 2**10


@dataclass(frozen=True)
class Outcome:
    returncode: int | None  # None when the deadline killed it
    stdout: str
    stderr: str

    @property
    def timed_out(self) -> bool:
        return self.returncode is None


def bubblewrap() -> str:
    path = shutil.which("bwrap")
    if path is None:
        raise SandboxUnavailable(f"no sandbox for model-written programs: {INSTALL_HINT}")
    return path


def _usr_links() -> list[str]:
    """Debian's merged /usr: /bin, /lib, /lib64 and /sbin are links into it; keep them so."""
    args: list[str] = []
    for name in ("bin", "lib", "lib64", "sbin"):
        target = Path("/", name)
        if target.is_symlink():
            args += ["--symlink", os.readlink(target), f"/{name}"]
    return args


def command(work: str, argv: Sequence[str]) -> list[str]:
    """The bubblewrap command line that runs ``argv`` with ``work`` mounted read-only at /task."""
    return [
        bubblewrap(),
        "--unshare-all",  # user, pid, net, ipc, uts, cgroup: no network, no other process
        "--die-with-parent",
        "--new-session",  # no TIOCSTI into the caller's terminal
        "--clearenv",
        "--setenv", "PATH", "/usr/bin",
        "--setenv", "HOME", "/tmp",
        "--setenv", "LANG", "C.UTF-8",
        "--ro-bind", "/usr", "/usr",
        *_usr_links(),
        "--proc", "/proc",
        "--dev", "/dev",
        "--tmpfs", "/tmp",
        "--ro-bind", work, TASK_DIR,
        "--chdir", TASK_DIR,
        "--cap-drop", "ALL",
        "--",
        *argv,
    ]  # fmt: skip


def _limit(limits: Limits) -> None:
    """Runs in the child before exec: the limits hold for bubblewrap and all it starts."""
    resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_seconds, limits.cpu_seconds))
    resource.setrlimit(resource.RLIMIT_FSIZE, (limits.file_bytes, limits.file_bytes))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if limits.memory_bytes is not None:
        resource.setrlimit(resource.RLIMIT_AS, (limits.memory_bytes, limits.memory_bytes))


def run(argv: Sequence[str], files: Mapping[str, str], limits: Limits | None = None) -> Outcome:
    """Write ``files`` into a fresh folder, run ``argv`` confined with it at /task, and return what
    happened: at most ``limits.output_bytes`` of each stream (a program cannot flood the caller)."""
    limits = limits or Limits()
    with tempfile.TemporaryDirectory(prefix="kaizen-check-") as scratch:
        work = Path(scratch, "task")
        work.mkdir(mode=0o755)
        for name, text in files.items():
            (work / name).write_text(text, encoding="utf-8")
        # Output goes to files the program cannot see, so RLIMIT_FSIZE stops a flood at the source.
        with open(Path(scratch, "out"), "w+b") as out, open(Path(scratch, "err"), "w+b") as err:
            process = subprocess.Popen(
                command(str(work), argv),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                preexec_fn=lambda: _limit(limits),
                start_new_session=True,
            )
            try:
                code: int | None = process.wait(timeout=limits.wall_seconds)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
                code = None
            return Outcome(code, _head(out, limits.output_bytes), _head(err, limits.output_bytes))


def _head(file: BinaryIO, size: int) -> str:
    file.seek(0)
    return file.read(size).decode("utf-8", "replace")
