"""A throwaway PostgreSQL server in a folder, for tests and benchmarks that must stop, kill or restart it.

Uses the machine's PostgreSQL binaries (Debian's ``postgresql`` package; ``hack/postgres.sh``
installs it). ``initdb`` refuses to run as root, so as root the server runs as the ``postgres``
user. It listens on a free loopback port with trust authentication and keeps its socket in its
own folder, so several can run beside the machine's own server.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import psycopg

from devstack.ports import free_port


class PostgresError(RuntimeError):
    """The server could not be started; the message says what to look at."""


def _bin_dir() -> Path:
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name))
    if candidates:
        return Path(candidates[-1])
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).resolve().parent
    raise PostgresError(
        "PostgreSQL binaries not found; run `bash hack/postgres.sh` (installs Debian's postgresql)"
    )


@dataclass
class ThrowawayPostgres:
    """One PostgreSQL server whose data lives in ``workdir``."""

    workdir: Path
    port: int = 0
    database: str = "kaizen"

    @property
    def data(self) -> Path:
        return self.workdir / "data"

    @property
    def url(self) -> str:
        """SQLAlchemy URL (psycopg 3 driver)."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{self.database}"

    @property
    def dsn(self) -> str:
        return f"host=127.0.0.1 port={self.port} user=postgres dbname={self.database}"

    def init(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._chown(self.workdir)
        if not (self.data / "PG_VERSION").exists():
            self._run(
                "initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"
            )

    def start(self, timeout: float = 30.0) -> None:
        """Start (or restart) the server on its port, creating the cluster and database on first use."""
        self.init()
        self.port = self.port or free_port()
        options = f"-p {self.port} -k {self.workdir} -c listen_addresses=127.0.0.1 -c max_connections=200"
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-l",
            str(self.workdir / "postgres.log"),
            "-o",
            options,
            "-w",
            "-t",
            str(int(timeout)),
            "start",
        )
        with psycopg.connect(
            f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres", autocommit=True
        ) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (self.database,)).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{self.database}"')

    def stop(self, mode: str = "fast") -> None:
        """Stop the server; ``mode="immediate"`` is a crash (no checkpoint), as after a kill."""
        if (self.data / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop", check=False)

    def running(self) -> bool:
        try:
            with psycopg.connect(self.dsn, connect_timeout=1):
                return True
        except psycopg.OperationalError:
            return False

    def _run(self, tool: str, *args: str, check: bool = True) -> None:
        command = [str(_bin_dir() / tool), *args]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=120)
        if check and result.returncode != 0:
            log = self.workdir / "postgres.log"
            tail = log.read_text()[-2000:] if log.exists() else ""
            raise PostgresError(f"{tool} failed ({result.returncode}): {result.stderr.strip()}\n{tail}")

    @staticmethod
    def _chown(path: Path) -> None:
        if os.geteuid() == 0:
            shutil.chown(path, "postgres", "postgres")
            # The postgres user must be able to reach the folder through its parents (pytest's tmp dirs are 0700).
            for parent in path.parents:
                if parent == Path("/"):
                    break
                mode = parent.stat().st_mode
                if not mode & 0o001:
                    parent.chmod(mode | 0o001)
