"""Small builders for store tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

# Yesterday at midnight: recent enough for every policy's default window (data.maxAge 30d) whenever
# the tests run — a fixed date would age out of it — and fixed for the whole session.
T0 = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=1)


def run(
    id: str,
    task: str,
    output: str,
    *,
    attempt: int = 1,
    ok: bool | None = None,
    prompt: str | None = None,
    agent: str = "coder",
    role: str = "coder",
    minutes: int = 0,
    **signals: Any,
) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": id,
        "created_at": T0 + timedelta(minutes=minutes),
        "agent": agent,
        "role": role,
        "task_id": task,
        "task_family": "",
        "model_variant": "",
        "prompt_variant": "",
        "attempt": attempt,
        "prompt": prompt if prompt is not None else f"solve {task}",
        "output": output,
        "request_id": None,
    }
    if ok is not None:
        row.update(compile_ok=ok, tests_passed=3 if ok else 0, tests_total=3)
    row.update(signals)
    return row
