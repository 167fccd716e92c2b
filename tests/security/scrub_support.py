"""Helpers of the scrubbing tests: plant the corpus in a store through the CLI, export, read it all back."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from tests.security.scrub_corpus import Item

ROOT = Path(__file__).resolve().parents[2]


def kaizen(*args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    return subprocess.run(
        [sys.executable, "-m", "controllers.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=ROOT,
    )


def _jsonl(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


def plant(store_url: str, folder: Path, items: list[Item]) -> None:
    """Every item's text as a run's prompt, another run's output, a correction, an explicit pair's
    prompt/chosen/rejected and an annotation's reason; then mine pairs (corrections become pairs)."""
    n = len(items)
    text = [item.text for item in items]
    ok = {"compileOk": True, "testsPassed": 2, "testsTotal": 2}
    runs = [
        {
            "id": f"r{i}",
            "agent": "coder",
            "role": "coder",
            "taskId": f"t{i}",
            "prompt": text[i],
            "output": text[(i + 1) % n],
            "signals": ok,
        }
        for i in range(n)
    ]
    feedback = [{"id": f"f{i}", "runId": f"r{i}", "correction": text[(i + 2) % n]} for i in range(n)]
    pairs = [
        {"prompt": text[i], "chosen": text[(i + 3) % n], "rejected": text[(i + 4) % n], "agent": "coder"}
        for i in range(n)
    ]
    notes = [{"id": f"a{i}", "runId": f"r{i}", "reason": text[(i + 5) % n][:512]} for i in range(n)]
    for kind, records in (("runs", runs), ("feedback", feedback), ("pairs", pairs), ("annotations", notes)):
        loaded = kaizen(
            "ingest",
            str(_jsonl(folder / f"{kind}.jsonl", records)),
            "--kind",
            kind,
            "--database-url",
            store_url,
        )
        assert loaded.returncode == 0, loaded.stderr
    mined = kaizen("pairs", "mine", "--database-url", store_url)
    assert mined.returncode == 0, mined.stderr
    assert json.loads(mined.stdout)["humanCorrection"] >= n


def exported_texts(folder: Path) -> list[str]:
    """Every file under ``folder`` as text, plus each JSON line's and Parquet row's decoded strings."""
    texts: list[str] = []
    for path in sorted(folder.rglob("*")):
        if path.suffix == ".parquet":
            texts.append(str(pq.read_table(path).to_pylist()))
        elif path.suffix in (".jsonl", ".json"):
            raw = path.read_text(encoding="utf-8")
            texts.append(raw)
            docs = [raw] if path.suffix == ".json" else [line for line in raw.splitlines() if line.strip()]
            texts.extend(json.dumps(json.loads(doc), ensure_ascii=False) for doc in docs)
    return texts


def survivors(items: list[Item], texts: list[str]) -> list[str]:
    """The planted values that appear anywhere in ``texts``."""
    joined = "\n".join(texts)
    return [f"{item.category}: {item.value}" for item in items if item.value in joined]
