"""The Tiltfile's chart settings and paths are real (Tilt cannot run here: no Docker daemon, no kind).

Starlark is a subset of Python's syntax, so the file is parsed with ``ast``; the ``--set`` values it
gives ``helm()`` are rendered through the real chart, so a renamed value breaks this test, not
someone's morning.
"""

from __future__ import annotations

import ast
from typing import Any

import helm_python as helm

from tests.chart.chart import container, merged, one, pod_specs, render
from tests.schemas import ROOT

TILTFILE = ROOT / "Tiltfile"


def calls(name: str) -> list[ast.Call]:
    tree = ast.parse(TILTFILE.read_text())
    return [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == name
    ]


def keyword(call: ast.Call, name: str) -> Any:
    return next(ast.literal_eval(k.value) for k in call.keywords if k.arg == name)


def tilt_values() -> dict[str, Any]:
    [call] = calls("helm")
    values: dict[str, Any] = {}
    for setting in keyword(call, "set"):
        values = merged(values, helm.parse_set_string(setting))
    return values


def test_helm_settings_render_the_chart_with_the_images_tilt_builds() -> None:
    objects = render(tilt_values())
    built = {
        ast.literal_eval(c.args[0]) for c in [*calls("docker_build"), *calls("docker_build_with_restart")]
    }
    pod = one(objects, "Deployment", "kaizen-operator")["spec"]["template"]["spec"]
    images = {c["image"].split(":")[0] for _, spec in pod_specs(objects) for c in spec["containers"]}
    assert images == built == {"kaizen", "kaizen-operator"}
    assert container(pod, "operator")["image"].startswith("kaizen-operator:")
    assert container(pod, "gateway")["image"].startswith("kaizen:")


def test_live_update_syncs_into_the_image_source_folders() -> None:
    [call] = calls("docker_build_with_restart")
    assert keyword(call, "dockerfile") == "operator/Dockerfile"
    assert keyword(call, "entrypoint") == ["python", "/app/operator/main.py"]
    dockerfile = (ROOT / "operator" / "Dockerfile").read_text()
    for sync in calls("sync"):
        local, remote = (ast.literal_eval(a) for a in sync.args)
        assert (ROOT / local).is_dir(), local
        assert f"{local} ./{local}" in dockerfile, local  # the image keeps it under /app
        assert remote == f"/app/{local}", remote


def test_every_path_the_tiltfile_names_exists() -> None:
    for path in ("operator/Dockerfile", "charts/kaizen", "examples", "crds", "controllers/api"):
        assert path in TILTFILE.read_text(), path
        assert (ROOT / path).exists(), path
