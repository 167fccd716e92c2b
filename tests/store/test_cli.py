"""The store's command line, as a platform engineer would use it: ingest, mine, export, and bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def kaizen(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "controllers.cli.main", *args], capture_output=True, text=True, timeout=120
    )


def test_ingest_mine_and_export_from_the_command_line(store_url: str, tmp_path: Path) -> None:
    runs = tmp_path / "runs.jsonl"
    runs.write_text(
        "\n".join(
            json.dumps(r)
            for r in [
                {
                    "agent": "coder",
                    "role": "coder",
                    "taskId": "t1",
                    "prompt": "add two numbers, ping a@b.io",
                    "output": "return a - b",
                    "signals": {"compileOk": True, "testsPassed": 0, "testsTotal": 2},
                },
                {
                    "agent": "coder",
                    "role": "coder",
                    "taskId": "t1",
                    "attempt": 2,
                    "prompt": "add two numbers, ping a@b.io",
                    "output": "return a + b",
                    "signals": {"compileOk": True, "testsPassed": 2, "testsTotal": 2},
                },
            ]
        )
        + "\n"
    )
    first = kaizen("ingest", str(runs), "--database-url", store_url)
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout) == {"records": 2, "inserted": 2}
    again = kaizen("ingest", str(runs), "--database-url", store_url)
    assert json.loads(again.stdout) == {"records": 2, "inserted": 0}
    mined = kaizen("pairs", "mine", "--database-url", store_url)
    assert json.loads(mined.stdout)["errorRecovery"] == 1
    exported = kaizen("export", str(tmp_path / "snap"), "--database-url", store_url)
    assert exported.returncode == 0, exported.stderr
    manifest = json.loads(exported.stdout)
    assert manifest["train_rows"] + manifest["eval_rows"] == 1
    assert manifest["scrubbed"] == {"EMAIL": 1}
    assert manifest["content_hash"].startswith("sha256:")


def test_a_bad_line_names_the_line_and_field_and_loads_nothing(store_url: str, tmp_path: Path) -> None:
    runs = tmp_path / "runs.jsonl"
    runs.write_text(
        json.dumps({"agent": "coder", "taskId": "t", "prompt": "p", "output": "o"})
        + "\n"
        + json.dumps(
            {"agent": "coder", "taskId": "t", "prompt": "p", "output": "o", "signals": {"testsTotal": -1}}
        )
        + "\n"
    )
    result = kaizen("ingest", str(runs), "--database-url", store_url)
    assert result.returncode == 1
    assert f"{runs}:2: signals.testsTotal" in result.stderr
    assert "nothing was loaded" in result.stderr
    exported = kaizen("export", str(tmp_path / "snap"), "--method", "SFT", "--database-url", store_url)
    assert json.loads(exported.stdout)["train_rows"] == 0


def test_sft_export_of_one_namespace_with_roles_that_are_not_file_names(
    store_url: str, tmp_path: Path
) -> None:
    roles = ["a/b", "r" * 128, "coder"]
    runs = tmp_path / "runs.jsonl"
    runs.write_text(
        "\n".join(
            json.dumps(
                {
                    "agent": "coder",
                    "role": role,
                    "taskId": f"t{i}",
                    "prompt": f"task {i}",
                    "output": f"out {i}",
                    "signals": {"compileOk": True, "testsPassed": 2, "testsTotal": 2},
                }
            )
            for i, role in enumerate(roles)
        )
        + "\n"
    )
    loaded = kaizen("ingest", str(runs), "--namespace", "team-a", "--database-url", store_url)
    assert json.loads(loaded.stdout) == {"records": 3, "inserted": 3}, loaded.stderr
    # the same file into another namespace is other records, not a replay of the first load
    elsewhere = kaizen("ingest", str(runs), "--namespace", "team-b", "--database-url", store_url)
    assert json.loads(elsewhere.stdout) == {"records": 3, "inserted": 3}, elsewhere.stderr
    exported = kaizen(
        "export",
        str(tmp_path / "sft"),
        "--method",
        "SFT",
        "--namespace",
        "team-a",
        "--database-url",
        store_url,
    )
    assert exported.returncode == 0, exported.stderr
    manifest = json.loads(exported.stdout)
    assert manifest["train_rows"] + manifest["eval_rows"] == 3
    assert len(manifest["files"]) == 3
    assert all("/" not in name and len(name) < 100 for name in manifest["files"])
    nothing = kaizen(
        "export",
        str(tmp_path / "none"),
        "--method",
        "SFT",
        "--namespace",
        "team-c",
        "--database-url",
        store_url,
    )
    assert json.loads(nothing.stdout)["train_rows"] == 0
