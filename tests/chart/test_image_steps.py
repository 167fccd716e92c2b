"""The images' build steps, run for real where no image builder can pull their bases.

Each Dockerfile's COPY sources go into a fresh build context; its RUN commands run there with the
image's paths mapped onto temporary folders: the operator's own ``python -m venv /opt/kaizen`` makes
the clean virtualenv its install goes into; for the trainer, whose base (rayproject/ray) brings Python,
a fresh virtualenv stands in for the base's Python (Ray then comes from the index, not the base). Then
the image's command answers. The one difference from a build: pip may use this machine's wheel cache
(the Dockerfiles set PIP_NO_CACHE_DIR, which would download torch again on every run).

Minutes and the package index: ``make image-steps``. Deselected from the default run (the
``image_steps`` marker), not skipped.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.chart.test_dockerfiles import OPERATOR, TRAINER, instructions
from tests.schemas import ROOT

pytestmark = pytest.mark.image_steps
SKIPPED_STEPS = ("groupadd",)  # user accounts: the image's business, not the build's outcome


def _context(dockerfile: Path, root: Path) -> Path:
    """A build context holding what the Dockerfile's COPY instructions take from the repository."""
    context = root / "context"
    for keyword, rest in instructions(dockerfile):
        if keyword != "COPY" or "--from=" in rest:
            continue
        *sources, _ = [part for part in rest.split() if not part.startswith("--")]
        for source in sources:
            origin, target = ROOT / source, context / source
            if origin.is_dir():
                shutil.copytree(
                    origin, target, ignore=shutil.ignore_patterns("__pycache__"), dirs_exist_ok=True
                )
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(origin, target)
    return context


def _steps(dockerfile: Path, paths: dict[str, Path]) -> list[str]:
    """The RUN commands, with the image's absolute paths mapped onto local folders."""
    steps = []
    for keyword, rest in instructions(dockerfile):
        if keyword == "RUN" and not rest.startswith(SKIPPED_STEPS):
            for image_path, local in sorted(paths.items(), key=lambda item: -len(item[0])):
                rest = re.sub(rf"(?<![\w/]){re.escape(image_path)}(?=[/\s\"']|$)", str(local), rest)
            steps.append(rest)
    return steps


def _run(command: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    print(f"$ {command}", flush=True)
    return subprocess.run(["sh", "-ec", command], cwd=cwd, env=env, capture_output=True, text=True)


def _clean_env(bin_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHON", "PIP_NO_CACHE"))}
    env["PATH"] = f"{bin_dir}:{env.get('PATH', '/usr/bin:/bin')}"
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


def test_the_operator_images_steps_install_into_a_clean_venv_and_its_command_starts(tmp_path: Path) -> None:
    context = _context(OPERATOR, tmp_path)
    venv = tmp_path / "opt-kaizen"
    env = _clean_env(Path(sys.base_prefix) / "bin")  # the base image's Python, until the venv exists
    for step in _steps(OPERATOR, {"/opt/kaizen": venv, "/app": context, "/src": context}):
        done = _run(step, context, env)
        assert done.returncode == 0, f"{step}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        env["PATH"] = f"{venv / 'bin'}:{env['PATH']}"  # after `python -m venv`, as the final stage's PATH
    env["PYTHONPATH"] = str(context)
    started = _run(f"{venv}/bin/python {context}/operator/main.py --help", tmp_path, env)
    assert started.returncode == 0, started.stderr[-3000:]
    assert "--metrics-port" in started.stdout
    listed = _run(f"{venv}/bin/python -m pip list --format=freeze", tmp_path, env).stdout
    installed = {line.split("==")[0].lower() for line in listed.splitlines()}
    assert {"s3fs", "gcsfs", "adlfs", "kopf"} <= installed
    assert "torch" not in installed  # the operator image has no training stack


def test_the_trainer_images_steps_install_into_a_clean_venv_and_its_entrypoint_checks_the_config(
    tmp_path: Path,
) -> None:
    context = _context(TRAINER, tmp_path)
    base = tmp_path / "base-python"  # the base image's Python, without Ray: the step must bring it
    subprocess.run([Path(sys.base_prefix) / "bin" / "python3", "-m", "venv", str(base)], check=True)
    env = _clean_env(base / "bin") | {"TORCH_INDEX_URL": ""}
    for step in _steps(TRAINER, {"/home/ray/kaizen": context}):
        done = _run(step, context, env)
        assert done.returncode == 0, f"{step}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    refused = _run(f"{base}/bin/python -m trainer --config '{{}}'", tmp_path, env)  # the ENTRYPOINT
    assert refused.returncode == 2, refused.stderr[-3000:]
    assert "invalid config" in refused.stderr
    assert "runName" in refused.stderr
