"""What a RayJob's pods would be given, decided without any process: env resolution as the kubelet
does it, the refusals, and which folders the local Ray head may hide."""

from __future__ import annotations

import base64
import sys
from pathlib import Path
from typing import Any

import pytest

from controllers.builders.jobspec import JobSpec
from devstack.localray import check_hidden, image_env
from devstack.runtime import pods

NS = "team-a"


def _rayjob(head: dict[str, Any], *workers: dict[str, Any]) -> dict[str, Any]:
    return {
        "metadata": {"name": "job", "namespace": NS},
        "spec": {
            "rayClusterSpec": {
                "headGroupSpec": {"template": {"spec": head}},
                "workerGroupSpecs": [
                    {"groupName": f"g{i}", "template": {"spec": spec}} for i, spec in enumerate(workers)
                ],
            }
        },
    }


def _pod(**container: Any) -> dict[str, Any]:
    return {"containers": [{"name": "ray", **container}]}


def _secret(**data: str) -> dict[str, Any]:
    return {"data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}}


def test_only_variables_every_pod_sets_alike_reach_the_job() -> None:
    rayjob = _rayjob(
        _pod(env=[{"name": "A", "value": "1"}, {"name": "B", "value": "head"}, {"name": "C", "value": "3"}]),
        _pod(env=[{"name": "A", "value": "1"}, {"name": "B", "value": "worker"}]),
    )

    env, differing = pods.job_env(rayjob, {})

    assert env == {"A": "1"}
    assert differing == {"B", "C"}


def test_env_from_comes_first_and_env_overrides_it() -> None:
    spec = _pod(
        envFrom=[
            {"secretRef": {"name": "s"}},
            {"configMapRef": {"name": "c"}, "prefix": "C_"},
            {"configMapRef": {"name": "c"}},  # its key 1BAD is no variable name: skipped
        ],
        env=[{"name": "KEY", "value": "from-env"}, {"name": "BOTH", "value": "$(KEY)+$(C_X)"}],
    )
    objects = {
        (pods.SECRET, "s"): _secret(KEY="from-secret", OTHER="o"),
        (pods.CONFIG_MAP, "c"): {"data": {"X": "x", "1BAD": "-"}},
    }

    env, _ = pods.job_env(_rayjob(spec, spec), objects)

    assert env == {"KEY": "from-env", "OTHER": "o", "C_X": "x", "C_1BAD": "-", "X": "x", "BOTH": "from-env+x"}


@pytest.mark.parametrize(
    ("value", "expanded"),
    [("$(A)", "a"), ("$$(A)", "$(A)"), ("$(NOPE)", "$(NOPE)"), ("$A", "$A"), ("x$", "x$"), ("$(A", "$(A")],
)
def test_expansion_follows_the_kubelets_rules(value: str, expanded: str) -> None:
    assert pods.expand(value, {"A": "a"}) == expanded


@pytest.mark.parametrize(
    ("container", "objects", "message"),
    [
        ({"envFrom": [{"secretRef": {"name": "x"}}]}, {}, 'secret "x" not found'),
        ({"envFrom": [{"configMapRef": {"name": "x"}}]}, {}, 'configmap "x" not found'),
        (
            {"env": [{"name": "V", "valueFrom": {"secretKeyRef": {"name": "x", "key": "k"}}}]},
            {(pods.SECRET, "x"): _secret()},
            f"couldn't find key k in Secret {NS}/x",
        ),
        (
            {"env": [{"name": "V", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}]},
            {},
            "the local runtime cannot resolve valueFrom ['fieldRef'] status.podIP",
        ),
    ],
)
def test_what_the_kubelet_cannot_resolve_fails_the_pod(
    container: dict[str, Any], objects: dict[pods.Ref, Any], message: str
) -> None:
    with pytest.raises(pods.PodConfigError) as raised:
        pods.job_env(_rayjob(_pod(**container)), objects)
    assert str(raised.value).startswith(f"head: CreateContainerConfigError: {message}")


def test_optional_references_that_are_missing_are_left_out() -> None:
    spec = _pod(
        envFrom=[{"secretRef": {"name": "x", "optional": True}}],
        env=[{"name": "V", "valueFrom": {"secretKeyRef": {"name": "y", "key": "k", "optional": True}}}],
    )
    assert pods.job_env(_rayjob(spec), {}) == ({}, set())


def test_references_name_every_object_the_pods_need() -> None:
    head = _pod(envFrom=[{"secretRef": {"name": "s"}}]) | {"serviceAccountName": "sa"}
    worker = _pod(env=[{"name": "V", "valueFrom": {"configMapKeyRef": {"name": "c", "key": "k"}}}])
    assert pods.references(_rayjob(head, worker)) == {
        (pods.SECRET, "s"),
        (pods.CONFIG_MAP, "c"),
        (pods.SERVICE_ACCOUNT, "sa"),
    }


def test_a_missing_service_account_is_refused_as_admission_refuses_the_pod() -> None:
    rayjob = _rayjob(_pod() | {"serviceAccountName": "sa"})
    with pytest.raises(pods.PodConfigError, match='serviceaccount "sa" not found'):
        pods.job_env(rayjob, {(pods.SERVICE_ACCOUNT, "sa"): None})
    assert pods.job_env(rayjob, {(pods.SERVICE_ACCOUNT, "sa"): {}}) == ({}, set())


def test_only_node_local_scratch_volumes_are_given() -> None:
    scratch = _pod() | {"volumes": [{"name": "dshm", "emptyDir": {"medium": "Memory"}}]}
    claim = _pod() | {"volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "shared"}}]}
    host = _pod() | {"volumes": [{"name": "h", "hostPath": {"path": "/var"}}]}

    assert pods.unmountable(_rayjob(scratch, scratch)) is None
    assert "no shared volumes" in (pods.unmountable(_rayjob(scratch, claim)) or "")
    assert "worker group g0" in (pods.unmountable(_rayjob(scratch, claim)) or "")
    assert "hostPath volume" in (pods.unmountable(_rayjob(host)) or "")


def test_the_job_runs_in_a_fresh_folder_with_the_runtime_envs_variables_on_top() -> None:
    job = JobSpec("id", "python -m trainer --config '{}'", {"env_vars": {"OMP_NUM_THREADS": "2"}, "pip": []})

    wrapped = pods.in_pod(job, {"OMP_NUM_THREADS": "9", "AWS_REGION": "r"})

    assert wrapped.runtime_env == {"env_vars": {"OMP_NUM_THREADS": "2", "AWS_REGION": "r"}, "pip": []}
    assert wrapped.entrypoint.startswith("sh -c ")
    assert wrapped.entrypoint.endswith(" kzpod 'python -m trainer --config '\"'\"'{}'\"'\"''")


def test_the_heads_environment_keeps_the_image_and_drops_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "x")
    monkeypatch.setenv("KAIZEN_DATA_ROOT", "/var/lib/kaizen")
    monkeypatch.setenv("LC_ALL", "C.UTF-8")

    env = image_env({"KAIZEN_CACHE": "/cache"})

    assert not [name for name in env if name.startswith("AWS_")]
    assert env["KAIZEN_CACHE"] == "/cache"
    assert "KAIZEN_DATA_ROOT" not in env
    assert env["LC_ALL"] == "C.UTF-8"


def test_hidden_folders_may_not_cover_the_image(tmp_path: Path) -> None:
    venv = Path(sys.prefix).resolve()
    with pytest.raises(ValueError, match="would hide"):
        check_hidden([venv.parent], [venv])
    with pytest.raises(ValueError, match="would hide"):
        check_hidden([Path("/")], [])

    assert check_hidden([tmp_path / "ops"], [venv]) == [(tmp_path / "ops").resolve()]
    assert (tmp_path / "ops").is_dir()
