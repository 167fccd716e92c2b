"""The RayJob stand-in runs a RayJob's entrypoint on the real local Ray head and reports as KubeRay does.

Given a RayJob built by the operator's own builder, created in a real API server with KubeRay's CRD:
it runs once on Ray under its submission id, and its status goes through KubeRay's fields and values.
"""

from __future__ import annotations

import dataclasses
import json
import shlex
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from controllers.builders.jobspec import job_spec
from controllers.builders.rayjob import PodSettings, build_rayjob
from devstack.localray import LocalRayHead
from devstack.runtime import LocalRuntime
from tests.runtime.support import RAYJOBS, Cluster, wait_for
from trainer.config import BaseModelSpec, DatasetSpec, TrainerConfig


def _rayjob(namespace: str, entrypoint: str, *, with_job_id: bool = True) -> dict[str, Any]:
    config = TrainerConfig(
        run_name=f"run-{uuid.uuid4().hex[:8]}",
        base_model=BaseModelSpec(name="kaizen-tiny", uri="tiny://kaizen-tiny"),
        dataset=DatasetSpec(uri="/nonexistent/snapshot"),
        output_uri="/nonexistent/output",
    )
    job = dataclasses.replace(job_spec(config, 1, python=sys.executable), entrypoint=entrypoint)
    manifest = build_rayjob(
        config, job, PodSettings(image="kaizen-trainer:test"), namespace=namespace, attempt=1
    )
    if not with_job_id:
        del manifest["spec"]["jobId"]
    return manifest


def _python(code: str) -> str:
    return f"{shlex.quote(sys.executable)} -c {shlex.quote(code)}"


def _status(cluster: Cluster, namespace: str, name: str) -> dict[str, Any]:
    found = cluster.get(RAYJOBS, namespace, name) or {}
    return found.get("status") or {}


def _finished(cluster: Cluster, namespace: str, name: str) -> Callable[[], dict[str, Any] | None]:
    def probe() -> dict[str, Any] | None:
        status = _status(cluster, namespace, name)
        return status if status.get("jobDeploymentStatus") in ("Complete", "Failed") else None

    return probe


def _ray_jobs(head: LocalRayHead, submission_id: str) -> list[dict[str, Any]]:
    jobs = httpx.get(f"{head.dashboard_url}/api/jobs/", headers=head.auth_headers, timeout=30).json()
    return [job for job in jobs if job.get("submission_id") == submission_id]


def test_rayjob_runs_on_local_ray_and_completes_with_kuberays_status(
    runtime: LocalRuntime, cluster: Cluster, namespace: str, ray_head: LocalRayHead
) -> None:
    manifest = cluster.create(RAYJOBS, namespace, _rayjob(namespace, _python("print('kaizen says hello')")))
    name, job_id = manifest["metadata"]["name"], manifest["spec"]["jobId"]

    status = wait_for("the RayJob to finish", _finished(cluster, namespace, name))

    assert status["jobStatus"] == "SUCCEEDED"
    assert status["jobDeploymentStatus"] == "Complete"
    assert status["jobId"] == job_id
    assert status["rayClusterName"].startswith(name + "-")
    assert status["dashboardURL"] == ray_head.dashboard_url.removeprefix("http://")
    assert (status["succeeded"], status["failed"]) == (1, 0)
    assert status["startTime"] <= status["endTime"]
    assert set(status["rayJobInfo"]) == {"startTime", "endTime"}
    assert status["observedGeneration"] == manifest["metadata"]["generation"]
    [ray_job] = _ray_jobs(ray_head, job_id)
    assert ray_job["status"] == "SUCCEEDED"
    assert (
        ray_job["metadata"]["kaizen.dev/training-run"]
        == manifest["metadata"]["labels"]["kaizen.dev/training-run"]
    )
    assert (
        "ray.io/rayjob-finalizer" in (cluster.get(RAYJOBS, namespace, name) or {})["metadata"]["finalizers"]
    )


def test_failing_entrypoint_is_reported_failed_with_rays_message(
    runtime: LocalRuntime, cluster: Cluster, namespace: str
) -> None:
    code = "import sys; print('the trainer broke'); sys.exit(3)"
    name = cluster.create(RAYJOBS, namespace, _rayjob(namespace, _python(code)))["metadata"]["name"]

    status = wait_for("the RayJob to finish", _finished(cluster, namespace, name))

    assert status["jobStatus"] == "FAILED"
    assert status["jobDeploymentStatus"] == "Failed"
    assert status["reason"] == "AppFailed"
    assert "exit code 3" in status["message"]
    assert (status["succeeded"], status["failed"]) == (0, 1)


def test_rayjob_without_job_id_gets_one_recorded_before_it_is_submitted(
    runtime: LocalRuntime, cluster: Cluster, namespace: str, ray_head: LocalRayHead
) -> None:
    manifest = _rayjob(namespace, _python("print(1)"), with_job_id=False)
    name = cluster.create(RAYJOBS, namespace, manifest)["metadata"]["name"]

    status = wait_for("the RayJob to finish", _finished(cluster, namespace, name))

    assert status["jobId"].startswith(name + "-")
    assert [job["status"] for job in _ray_jobs(ray_head, status["jobId"])] == ["SUCCEEDED"]


def test_restarting_the_stand_in_mid_job_never_runs_the_job_twice(
    runtime_factory: Callable[[], LocalRuntime],
    cluster: Cluster,
    namespace: str,
    ray_head: LocalRayHead,
    tmp_path: Path,
) -> None:
    marker = tmp_path / "runs.txt"
    code = f"import time; open({str(marker)!r}, 'a').write('ran\\n'); time.sleep(6)"
    first = runtime_factory().start()
    manifest = cluster.create(RAYJOBS, namespace, _rayjob(namespace, _python(code)))
    name, job_id = manifest["metadata"]["name"], manifest["spec"]["jobId"]
    wait_for("the job to run", lambda: _status(cluster, namespace, name).get("jobStatus") == "RUNNING")

    first.kill()
    runtime_factory().start()
    status = wait_for("the RayJob to finish", _finished(cluster, namespace, name))

    assert status["jobStatus"] == "SUCCEEDED"
    assert len(_ray_jobs(ray_head, job_id)) == 1
    assert marker.read_text() == "ran\n"


def test_deleting_a_rayjob_stops_its_ray_job(
    runtime: LocalRuntime, cluster: Cluster, namespace: str, ray_head: LocalRayHead
) -> None:
    manifest = cluster.create(RAYJOBS, namespace, _rayjob(namespace, _python("import time; time.sleep(120)")))
    name, job_id = manifest["metadata"]["name"], manifest["spec"]["jobId"]
    wait_for("the job to run", lambda: _status(cluster, namespace, name).get("jobStatus") == "RUNNING")

    cluster.delete(RAYJOBS, namespace, name)

    wait_for("the RayJob to be gone", lambda: cluster.get(RAYJOBS, namespace, name) is None)
    stopped = wait_for(
        "Ray to stop the job", lambda: [j for j in _ray_jobs(ray_head, job_id) if j["status"] == "STOPPED"]
    )
    assert len(stopped) == 1


def test_an_invalid_runtime_environment_fails_validation_naming_the_field(
    runtime: LocalRuntime, cluster: Cluster, namespace: str
) -> None:
    manifest = _rayjob(namespace, _python("print(1)"))
    manifest["spec"]["runtimeEnvYAML"] = json.dumps(["not", "a", "mapping"])
    name = cluster.create(RAYJOBS, namespace, manifest)["metadata"]["name"]

    status = wait_for(
        "validation to fail",
        lambda: _status(cluster, namespace, name).get("jobDeploymentStatus") == "ValidationFailed"
        and _status(cluster, namespace, name),
    )

    assert status["reason"] == "ValidationFailed"
    assert status["message"].startswith("spec.runtimeEnvYAML")
