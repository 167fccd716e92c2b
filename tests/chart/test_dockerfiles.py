"""The images' Dockerfiles: pinned bases, a non-root user, the contracted entrypoints (parsed, not built)."""

from __future__ import annotations

import fnmatch
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from controllers.builders.rayjob import RAY_VERSION
from tests.schemas import ROOT

OPERATOR = ROOT / "operator" / "Dockerfile"
TRAINER = ROOT / "trainer" / "Dockerfile"
DOCKERFILES = [OPERATOR, TRAINER]


def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    text = re.sub(r"\\\n", " ", path.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            out.append((keyword.upper(), rest.strip()))
    return out


def build_args(path: Path) -> dict[str, str]:
    args = {}
    for keyword, rest in instructions(path):
        if keyword == "ARG" and "=" in rest:
            name, _, default = rest.partition("=")
            args[name] = default
    return args


def base_images(path: Path) -> list[str]:
    """Each distinct FROM image, build-arg defaults substituted (earlier stages' names excluded)."""
    args = build_args(path)
    stages: set[str] = set()
    images = []
    for keyword, rest in instructions(path):
        if keyword == "FROM":
            image, *alias = rest.split(" AS ") if " AS " in rest else rest.split(" as ")
            image = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], image.strip())
            if image not in stages and image not in images:
                images.append(image)
            stages.update(a.strip() for a in alias)
    return images


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_base_images_are_pinned_and_never_latest(path: Path) -> None:
    images = base_images(path)
    assert images
    for image in images:
        name, _, tag = image.rpartition(":")
        assert name, f"{image} has no name"
        assert tag, f"{image} has no tag"
        assert "latest" not in image, image
        assert re.search(r"\d+\.\d+\.\d+", tag), f"{image}: pin a full version, not a moving tag"


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_the_final_stage_runs_as_a_numeric_non_root_user(path: Path) -> None:
    users = [rest for keyword, rest in instructions(path) if keyword == "USER"]
    assert users, "no USER: the image would run as root"
    uid = users[-1].split(":")[0]
    assert uid.isdigit(), f"USER {users[-1]}: use a numeric uid (runAsNonRoot can only check numbers)"
    assert int(uid) != 0, f"USER {users[-1]} is root"


def test_operator_image_is_python_3_11_slim_with_uid_65532_and_only_operator_extras() -> None:
    [base] = base_images(OPERATOR)  # both stages: the venv's interpreter link must stay valid
    assert re.fullmatch(r"python:3\.11\.\d+-slim(-\w+)?", base), base
    text = OPERATOR.read_text()
    assert "USER 65532:65532" in text
    assert '".[operator,gateway,gcs,azure]"' in text  # the operator writes snapshots to s3/gs/az
    assert "trainer" not in re.findall(r'"\.\[([\w,]+)\]"', text)[0].split(",")  # no torch, no Ray
    assert "PYTHONDONTWRITEBYTECODE=1" in text  # nothing written outside /tmp at run time


def test_trainer_image_matches_the_ray_version_the_operator_declares() -> None:
    args = build_args(TRAINER)
    assert args["RAY_VERSION"] == RAY_VERSION
    assert args["RAY_VARIANT"] == "cpu"
    [image] = base_images(TRAINER)
    assert image == f"rayproject/ray:{RAY_VERSION}-py311-cpu"
    entrypoint = [rest for keyword, rest in instructions(TRAINER) if keyword == "ENTRYPOINT"]
    assert entrypoint == ['["python", "-m", "trainer", "--config"]']
    assert '".[trainer,gcs,azure]"' in TRAINER.read_text()


def test_both_images_install_every_object_storage_back_end() -> None:
    """s3fs comes with the operator and trainer extras, gcsfs and adlfs with the gcs and azure extras that
    both images install: a policy's outputUri may be s3://, gs:// or az:// whichever image reads it."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    assert [r.split(">")[0].split("=")[0] for r in extras["gcs"]] == ["gcsfs"]
    assert [r.split(">")[0].split("=")[0] for r in extras["azure"]] == ["adlfs"]
    for extra in ("operator", "trainer"):
        assert any(r.startswith("s3fs") for r in extras[extra]), extra
    for path in DOCKERFILES:
        installed = re.findall(r'"\.\[([\w,]+)\]"', path.read_text())
        assert installed, path.name
        assert {"gcs", "azure"} <= set(installed[-1].split(",")), path.name
    for module in ("s3fs", "gcsfs", "adlfs"):  # the trainer image imports each after installing
        assert module in TRAINER.read_text(), module


def test_the_trainer_dockerfile_names_the_image_field_policies_really_have() -> None:
    from controllers.api.training_settings import ScalingSettings, TrainingSettings

    text = TRAINER.read_text()
    assert "spec.training.scaling.image" in text
    assert "ray.image" not in text
    assert "scaling" in TrainingSettings.model_fields
    assert "image" in ScalingSettings.model_fields


def make_dry_run(*overrides: str) -> list[str]:
    done = subprocess.run(
        ["make", "-n", "images", "push-images", "BUILDER=buildah", *overrides],
        cwd=ROOT, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return done.stdout.splitlines()


def test_make_images_builds_both_dockerfiles_with_the_projects_version_and_pinned_timestamps() -> None:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    lines = make_dry_run()
    builds = [line for line in lines if " build " in line]
    assert any(f"-f operator/Dockerfile -t ghcr.io/kaizen-dev/kaizen:{version} ." in b for b in builds)
    assert any(
        f"-f trainer/Dockerfile --build-arg RAY_VARIANT=cpu -t ghcr.io/kaizen-dev/trainer:{version} ." in b
        for b in builds
    )
    assert any(
        f"--build-arg RAY_VARIANT=gpu -t ghcr.io/kaizen-dev/trainer:{version}-gpu ." in b for b in builds
    )
    assert all("--timestamp " in b for b in builds)  # reproducible: no build-time clock in layers
    pushes = " ".join(line for line in lines if " push " in line)
    for tag in (f"kaizen:{version}", f"trainer:{version}", f"trainer:{version}-gpu"):
        assert f"ghcr.io/kaizen-dev/{tag}" in pushes


def test_make_images_retags_for_another_registry() -> None:
    lines = make_dry_run("REGISTRY=registry.example.com/team", "TRAINER_VARIANTS=gpu")
    text = "\n".join(lines)
    assert "ghcr.io" not in text
    assert "-t registry.example.com/team/kaizen:" in text
    assert "buildah push registry.example.com/team/trainer:" in text
    assert "RAY_VARIANT=cpu" not in text


def test_build_context_leaves_out_the_virtualenv_tests_and_git() -> None:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    ignored = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    for entry in (".git", ".venv", "tests", "devstack", "**/__pycache__"):
        assert entry in ignored, entry
    for needed in ("pyproject.toml", "README.md", "controllers", "trainer", "operator"):
        assert needed not in ignored, needed


def build_context() -> list[str]:
    """The tracked files docker would send from the repository root: .dockerignore applied to each
    path and each of its parent folders (a pattern naming a folder leaves out all below it)."""
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    patterns = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()

    def ignored(path: str) -> bool:
        parts = path.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        return any(
            fnmatch.fnmatch(prefix, pattern)
            or fnmatch.fnmatch(prefix, pattern.removeprefix("**/"))
            or fnmatch.fnmatch(parts[min(i, len(parts) - 1)], pattern.removeprefix("**/"))
            for pattern in patterns
            for i, prefix in enumerate(prefixes)
        )

    return [path for path in tracked if not ignored(path)]


def test_the_images_never_carry_the_development_stack() -> None:
    context = build_context()
    assert any(path.startswith("controllers/operator/") for path in context)  # the product is sent
    shipped = [path for path in context if path.startswith("devstack/")]
    assert not shipped, f"the build context sends the development stack: {shipped[:5]}"
    for path in DOCKERFILES:
        copies = [rest for keyword, rest in instructions(path) if keyword == "COPY"]
        assert not [c for c in copies if "devstack" in c], f"{path.name} copies devstack"


def test_the_production_command_line_works_without_the_development_stack() -> None:
    """With devstack unimportable (as in the image), the operator, the gateway and `kaizen` load;
    `kaizen` simply has no `up`."""
    probe = (
        "import sys; sys.modules['devstack'] = None\n"
        "import controllers.operator.app, controllers.gateway.app\n"
        "from controllers.cli.main import app\n"
        "names = {c.name or c.callback.__name__ for c in app.registered_commands}\n"
        "print(sorted(names))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert "export" in done.stdout
    assert "'up'" not in done.stdout
