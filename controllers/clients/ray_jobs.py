"""An async client for the Ray Jobs REST API (the dashboard's ``/api/jobs/``) over httpx.

Used when a policy trains on an existing Ray cluster instead of a RayJob. Submission is idempotent by
construction: the submission id is deterministic, Ray refuses an id it has already seen (the head
relays the job agent's "already exists" as an HTTP 500), and that refusal is reported as ``ALREADY_SUBMITTED`` — the success of an earlier
attempt whose answer was lost. So a submit can be retried after any timeout or restart without ever
starting the job twice. Connection errors and 5xx answers are retried with backoff; other errors are
raised as RayJobsError with the server's text.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from types import TracebackType
from typing import Any

import httpx

from controllers.builders.jobspec import JobSpec

_ALREADY_EXISTS = "already exists"


class JobStatus(StrEnum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    STOPPED = "STOPPED"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"

    @property
    def terminal(self) -> bool:
        return self in (JobStatus.STOPPED, JobStatus.SUCCEEDED, JobStatus.FAILED)


class SubmitOutcome(StrEnum):
    SUBMITTED = "Submitted"
    ALREADY_SUBMITTED = "AlreadySubmitted"


@dataclass(frozen=True)
class JobInfo:
    submission_id: str
    status: JobStatus
    message: str
    entrypoint: str
    metadata: dict[str, str]
    start_time: int | None
    end_time: int | None
    driver_exit_code: int | None

    @classmethod
    def from_api(cls, body: dict[str, Any]) -> JobInfo:
        return cls(
            submission_id=str(body.get("submission_id") or body.get("job_id") or ""),
            status=JobStatus(body["status"]),
            message=str(body.get("message") or ""),
            entrypoint=str(body.get("entrypoint") or ""),
            metadata=dict(body.get("metadata") or {}),
            start_time=body.get("start_time"),
            end_time=body.get("end_time"),
            driver_exit_code=body.get("driver_exit_code"),
        )


class RayJobsError(RuntimeError):
    def __init__(self, message: str, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code

    @property
    def transient(self) -> bool:
        return self.status_code is None or self.status_code >= 500


class RayJobsClient:
    """``async with RayJobsClient("http://ray-head:8265", token=...) as ray: await ray.submit(job)``.

    ``token`` is the cluster's authentication token (Ray >= 2.52 enables token auth by default),
    sent as a bearer token; a cluster without auth ignores it."""

    def __init__(
        self,
        address: str,
        *,
        client: httpx.AsyncClient | None = None,
        timeout: float = 10.0,
        retries: int = 3,
        backoff: float = 0.5,
        token: str | None = None,
    ) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._client = client or httpx.AsyncClient(
            base_url=address.rstrip("/"), timeout=timeout, headers=headers
        )
        self._owns_client = client is None
        self._retries = retries
        self._backoff = backoff

    async def __aenter__(self) -> RayJobsClient:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()

    async def _request(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        answered: Callable[[httpx.Response], bool] = lambda response: response.status_code < 500,
    ) -> httpx.Response:
        """One call, retried on connection errors and on responses that are not ``answered`` (5xx)."""
        delay = self._backoff
        for attempt in range(self._retries + 1):
            try:
                response = await self._client.request(method, path, json=body)
            except httpx.TransportError as error:
                failure: RayJobsError = RayJobsError(f"{method} {path}: {error!r}")
            else:
                if answered(response):
                    return response
                failure = RayJobsError(f"{method} {path}: {response.text[-2000:]}", response.status_code)
            if attempt == self._retries:
                raise failure
            await asyncio.sleep(delay)
            delay *= 2
        raise AssertionError("unreachable")

    async def version(self) -> dict[str, Any]:
        response = await self._request("GET", "/api/version")
        _raise_for(response)
        result: dict[str, Any] = response.json()
        return result

    async def submit(self, job: JobSpec) -> SubmitOutcome:
        """Submit ``job``; ALREADY_SUBMITTED when Ray already knows its submission id."""
        response = await self._request("POST", "/api/jobs/", job.request_body(), answered=_submit_answered)
        if response.is_error and _ALREADY_EXISTS in response.text:
            return SubmitOutcome.ALREADY_SUBMITTED
        _raise_for(response)
        return SubmitOutcome.SUBMITTED

    async def get(self, submission_id: str) -> JobInfo | None:
        """The job's state, or None when Ray has never seen this id."""
        response = await self._request("GET", f"/api/jobs/{submission_id}")
        if response.status_code == 404:
            return None
        _raise_for(response)
        return JobInfo.from_api(response.json())

    async def jobs(self) -> list[JobInfo]:
        response = await self._request("GET", "/api/jobs/")
        _raise_for(response)
        return [JobInfo.from_api(item) for item in response.json() if item.get("submission_id")]

    async def logs(self, submission_id: str) -> str:
        response = await self._request("GET", f"/api/jobs/{submission_id}/logs")
        _raise_for(response)
        return str(response.json().get("logs", ""))

    async def stop(self, submission_id: str) -> bool:
        """Ask Ray to stop the job; False when it had already finished."""
        response = await self._request("POST", f"/api/jobs/{submission_id}/stop")
        _raise_for(response)
        return bool(response.json().get("stopped"))

    async def delete(self, submission_id: str) -> bool:
        """Forget a finished job (its logs and info); Ray refuses to delete a running one."""
        response = await self._request("DELETE", f"/api/jobs/{submission_id}")
        _raise_for(response)
        return bool(response.json().get("deleted"))

    async def wait(
        self,
        submission_id: str,
        *,
        until: Callable[[JobInfo], bool] = lambda info: info.status.terminal,
        timeout: float = 600.0,
        interval: float = 0.5,
    ) -> JobInfo:
        """Poll until ``until(info)`` holds (by default: the job finished); TimeoutError otherwise."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            info = await self.get(submission_id)
            if info is not None and until(info):
                return info
            if loop.time() > deadline:
                state = info.status.value if info else "unknown to Ray"
                raise TimeoutError(f"job {submission_id} still {state} after {timeout:.0f}s")
            await asyncio.sleep(interval)


def _submit_answered(response: httpx.Response) -> bool:
    # The head relays the job agent's refusal of a known id as a 500 wrapping the agent's 400.
    return response.status_code < 500 or _ALREADY_EXISTS in response.text


def _raise_for(response: httpx.Response) -> None:
    if response.is_error:
        raise RayJobsError(
            f"{response.request.method} {response.request.url.path}: {response.status_code} {response.text[-2000:]}",
            response.status_code,
        )
