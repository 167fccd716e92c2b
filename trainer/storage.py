"""The one place that opens a storage URI: local paths, s3:// (and any other fsspec URI), with what the
environment says and nothing else.

A trainer pod gets its storage from environment variables only — ``AWS_ACCESS_KEY_ID`` and
``AWS_SECRET_ACCESS_KEY`` (or a pod identity), ``AWS_ENDPOINT_URL`` and ``AWS_DEFAULT_REGION`` — which
botocore reads by itself, so no credential ever travels in the TrainerConfig. What this module adds is
bounds: every request has a connect and a read timeout and a bounded number of retries, so a store
that goes away fails the attempt with a clear ``StorageError`` after a minute or so instead of hanging
it; the operator's next attempt then resumes from the newest checkpoint that reached the store.

Ray Train gets the same filesystem (``ray_storage``), wrapped for pyarrow, so checkpoints, the dataset,
the adapter and the manifest all go through one client with one set of limits.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

import fsspec
from fsspec import AbstractFileSystem

# Per request: a store that does not accept a connection in 10 s, or stops answering for 30 s, is
# retried (botocore's "standard" mode: exponential backoff with jitter), and after the last try the
# attempt fails. A refused connection fails in seconds; a store that swallows packets within minutes
# (s3fs repeats a timed-out read up to 5 times on top of botocore's tries).
CONNECT_TIMEOUT_S = 10
READ_TIMEOUT_S = 30
DEFAULT_MAX_ATTEMPTS = 3
_S3_PROTOCOLS = ("s3", "s3a")


class StorageError(OSError):
    """The store refused a request or could not be reached; the message says which URI and what to do."""


def max_attempts() -> int:
    return int(os.environ.get("AWS_MAX_ATTEMPTS") or DEFAULT_MAX_ATTEMPTS)


def _s3_options() -> dict[str, Any]:
    """s3fs options: timeouts and retries only. Credentials, endpoint and region are left to botocore,
    which reads them from the environment (AWS_MAX_ATTEMPTS and AWS_RETRY_MODE override the retries)."""
    attempts = max_attempts()
    mode = os.environ.get("AWS_RETRY_MODE") or "standard"
    return {
        # A fresh client per call reads the environment as it is now (fsspec's cache would hand back
        # a client made under other credentials); calls are few, and Ray keeps the one it is given.
        "skip_instance_cache": True,
        "config_kwargs": {
            "connect_timeout": CONNECT_TIMEOUT_S,
            "read_timeout": READ_TIMEOUT_S,
            "retries": {"max_attempts": attempts, "mode": mode},
        },
    }


def protocol(uri: str) -> str:
    """The URI's scheme ("file" for plain paths)."""
    scheme, separator, _ = uri.partition("://")
    return scheme.lower() if separator else "file"


def is_local(uri: str) -> bool:
    return protocol(uri) in ("file", "local")


def filesystem(uri: str) -> tuple[AbstractFileSystem, str]:
    """The fsspec filesystem for ``uri`` and the path within it."""
    options = _s3_options() if protocol(uri) in _S3_PROTOCOLS else {}
    fs, path = fsspec.core.url_to_fs(uri, **options)
    return fs, str(path)


def ray_storage(uri: str) -> tuple[str, Any]:
    """Ray Train's ``storage_path`` and ``storage_filesystem`` for ``uri``: a plain absolute path and
    None for local storage, else the path within the store and this module's filesystem for pyarrow."""
    if is_local(uri):
        return uri.removeprefix("file://"), None
    from pyarrow.fs import FSSpecHandler, PyFileSystem

    fs, path = filesystem(uri)
    return path, PyFileSystem(FSSpecHandler(fs))


def _causes(error: BaseException) -> Iterator[BaseException]:
    """The error and everything it wraps: chained causes and what Ray Train carries from its workers
    and its controller."""
    seen: set[int] = set()
    pending = [error]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        wrapped = [current.__cause__, current.__context__]
        wrapped += list(getattr(current, "worker_failures", {}).values())
        for name in ("_base_exc", "controller_failure", "health_check_failure"):
            wrapped.append(getattr(current, name, None))
        pending.extend(item for item in wrapped if isinstance(item, BaseException))


def _endpoint() -> str:
    return os.environ.get("AWS_ENDPOINT_URL") or "the default AWS endpoint (AWS_ENDPOINT_URL is not set)"


def storage_problem(error: BaseException) -> str | None:
    """What is wrong with the store, in words, if ``error`` is (or wraps) a storage failure."""
    from botocore import exceptions as boto  # type: ignore[import-untyped]

    for cause in _causes(error):
        if isinstance(cause, StorageError):
            return str(cause)
        if isinstance(cause, boto.NoCredentialsError):
            return (
                "no storage credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (the Secret "
                "that spec.training.storage names) or give the pod an identity that can use the bucket"
            )
        if isinstance(cause, PermissionError):
            return (
                f"the object store at {_endpoint()} refused the request (403 Forbidden: {cause}): the "
                "credentials in AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY are missing, wrong, or not "
                "allowed to use this bucket; fix the Secret that spec.training.storage names, then retry"
            )
        if isinstance(cause, boto.EndpointConnectionError | boto.ConnectTimeoutError | boto.ReadTimeoutError):
            return (
                f"the object store at {_endpoint()} could not be reached ({cause}) after "
                f"{max_attempts()} tries; the next attempt resumes from the newest checkpoint "
                "that reached the store"
            )
    return None


@contextlib.contextmanager
def explained(action: str, uri: str) -> Iterator[None]:
    """Turn a failure of the store behind ``uri`` inside the block into a StorageError naming ``action``
    and ``uri`` (local paths keep their own errors: a PermissionError there is not a 403)."""
    try:
        yield
    except StorageError:
        raise
    except Exception as error:
        if is_local(uri):
            raise
        problem = storage_problem(error)
        if problem is None:
            raise
        raise StorageError(f"{action} {uri}: {problem}") from error
