"""The operator's access to a policy's (or a run's) ``training.outputUri``, and what to say when it fails.

``resolve`` reads the Secret named by ``training.storage.secretRef`` (in the object's namespace) and
turns it into fsspec options (controllers.builders.storage); without a secretRef the operator uses its
own environment and pod identity. ``check_policy`` writes and deletes a probe object under a policy's
outputUri, so a wrong key or a missing bucket shows on the policy before a run needs it; its verdict
is kept per (generation, Secret resourceVersion) for a few minutes, not probed on every poll.

Failures become conditions that name the spec field to fix and what to do; no message holds a value
of the Secret (the store's error texts never do, and the options are never formatted).
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from controllers.api import kinds
from controllers.api.learningpolicy import LearningPolicy
from controllers.api.storage_settings import StorageAccess
from controllers.builders.storage import (
    OUTPUT_FIELD,
    SECRET_FIELD,
    StorageSettingsError,
    secret_values,
    storage_options,
)
from controllers.clients.objectstore import Problem, StorageError, probe_write
from controllers.decisions.conditions import READY, Want
from controllers.reconcile.deps import Dependencies
from controllers.reconcile.memory import StorageVerdict
from controllers.runtime.kube import Kube, KubeError

UNAVAILABLE = "StorageUnavailable"  # the settings or the credentials are wrong: a person must act
UNREACHABLE = "StorageUnreachable"  # the endpoint does not answer: the operator tries again
CHECK_PASSED_FOR = timedelta(minutes=5)
CHECK_FAILED_FOR = timedelta(minutes=1)  # a fix made outside Kubernetes (a bucket policy) shows soon


async def read_secret(
    storage: StorageAccess, namespace: str, kube: Kube
) -> tuple[dict[str, str] | None, str]:
    """The Secret's decoded keys (None without a secretRef) and its resourceVersion ("" without one)."""
    name = storage.secret_ref
    if not name:
        return None, ""
    try:
        secret = await kube.get(kinds.SECRETS, namespace, name)
    except KubeError as error:
        raise StorageSettingsError(
            SECRET_FIELD,
            f"cannot read Secret {name!r} ({error.status}); let the operator get Secrets in namespace"
            f" {namespace!r} (the chart's rbac.secretNames must list {name!r} when it is set)",
        ) from error
    if secret is None:
        raise StorageSettingsError(
            SECRET_FIELD,
            f"no Secret {name!r} in namespace {namespace!r}; create it with the store's credentials"
            " (docs/storage.md lists the keys per scheme) or name an existing one",
        )
    return secret_values(secret), str(secret["metadata"].get("resourceVersion") or "")


async def resolve(storage: StorageAccess, uri: str, namespace: str, kube: Kube) -> tuple[dict[str, Any], str]:
    """fsspec options for ``uri`` and the Secret's resourceVersion (what the options were made from)."""
    secret, version = await read_secret(storage, namespace, kube)
    return storage_options(uri, storage, secret), version


def want_for(error: StorageSettingsError | StorageError, storage: StorageAccess) -> Want:
    """The Ready condition for settings that cannot work or for a failed storage call."""
    return settings_want(error) if isinstance(error, StorageSettingsError) else failure_want(error, storage)


def settings_want(error: StorageSettingsError) -> Want:
    return Want.false(READY, UNAVAILABLE, f"{error}. Nothing is written to storage until then.")


def failure_want(error: StorageError, storage: StorageAccess) -> Want:
    """The Ready condition for a failed storage call: False for what a person must fix, Unknown (the
    operator tries again) for an endpoint that does not answer."""
    if error.problem == Problem.UNREACHABLE:
        return Want.unknown(
            READY,
            UNREACHABLE,
            f"storage at {error.uri} is unreachable ({error.detail}); the operator tries again. If it"
            " persists, check spec.training.storage.endpoint and the network path to it",
        )
    if error.problem == Problem.MISSING:
        return Want.false(
            READY,
            UNAVAILABLE,
            f"{OUTPUT_FIELD}: {error.uri} was not found ({error.detail}); create the bucket or correct"
            " outputUri",
        )
    if storage.secret_ref:
        what = (
            f"{SECRET_FIELD}: the store refused the credentials in Secret {storage.secret_ref!r}"
            f" ({error.detail}); put a key with read and write access to {error.uri} in the Secret"
        )
    else:
        what = (
            f"{OUTPUT_FIELD}: the store refused the operator's own identity at {error.uri} ({error.detail});"
            f" name a Secret with credentials in {SECRET_FIELD}, or give the operator's ServiceAccount"
            " read and write access there"
        )
    return Want.false(READY, UNAVAILABLE, what)


async def check_policy(body: dict[str, Any], policy: LearningPolicy, deps: Dependencies) -> Want | None:
    """None when the operator can write under the policy's outputUri, else the Ready condition that
    says why not. Reads the Secret on every call (one GET); probes only when the cached verdict is
    stale."""
    meta = body["metadata"]
    training = policy.spec.training
    try:
        options, version = await resolve(training.storage, training.output_uri, meta["namespace"], deps.kube)
    except StorageSettingsError as error:
        return settings_want(error)
    uid, key, now = meta.get("uid") or meta["name"], (int(meta.get("generation") or 0), version), deps.clock()
    cached = deps.storage_checks.get(uid)
    if cached is not None and cached.key == key and now < cached.until:
        return cached.want  # type: ignore[no-any-return]
    try:
        await asyncio.to_thread(probe_write, training.output_uri, options)
        want = None
    except StorageError as error:
        want = failure_want(error, training.storage)
    deps.storage_checks[uid] = StorageVerdict(
        key, want, now + (CHECK_FAILED_FOR if want else CHECK_PASSED_FOR)
    )
    return want


def forget_deleted(deps: Dependencies, live: set[str]) -> None:
    """Drop the verdicts of policies that no longer exist."""
    for uid in set(deps.storage_checks) - live:
        del deps.storage_checks[uid]
