"""Download an adapter folder from object storage with the pod's own credentials, all or nothing.

fsspec finds the credentials the way every AWS SDK does (botocore's chain): ``AWS_ACCESS_KEY_ID`` /
``AWS_SECRET_ACCESS_KEY`` from the storage Secret the pod takes as environment, or the web identity
token IRSA projects. ``AWS_ENDPOINT_URL`` and ``AWS_DEFAULT_REGION`` (set from ``spec.storage``) name
an S3-compatible store and its region. The files land in a scratch folder beside the target, which is
renamed onto the target only when every file is there: a reader never sees half an adapter.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path, PurePosixPath
from typing import Any

import fsspec

from controllers.clients.objectstore import Problem, classify

STORAGE_SCHEMES = ("s3", "gs", "gcs", "az", "abfs")
SCRATCH_PREFIX = ".partial-"
_ADVICE = {
    Problem.DENIED: "403 Forbidden with this pod's credentials: check the storage Secret (envFrom) or"
    " the ServiceAccount's cloud identity, and that it may read this bucket",
    Problem.MISSING: "not found: check the bucket and the adapter's path",
    Problem.UNREACHABLE: "the object store did not answer: check AWS_ENDPOINT_URL and the network",
}


class FetchError(RuntimeError):
    """A storage URI that could not be downloaded; the message names the URI and what to fix."""

    def __init__(self, uri: str, problem: str) -> None:
        super().__init__(f"lora_path {uri}: {problem}")
        self.uri = uri


def is_storage_uri(path: str) -> bool:
    return "://" in path and path.split("://", 1)[0] in STORAGE_SCHEMES


def storage_options(uri: str, env: dict[str, str]) -> dict[str, Any]:
    """fsspec options for ``uri``: the endpoint and region from the environment (s3:// only); the
    credentials are left to the SDK's own chain and never pass through here."""
    if not uri.startswith("s3://"):
        return {}
    client: dict[str, str] = {}
    if endpoint := env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL"):
        client["endpoint_url"] = endpoint
    if region := env.get("AWS_DEFAULT_REGION") or env.get("AWS_REGION"):
        client["region_name"] = region
    return {"client_kwargs": client} if client else {}


def _remote_files(fs: fsspec.AbstractFileSystem, root: str) -> list[tuple[str, PurePosixPath]]:
    """(object path, path relative to the adapter folder) of every object under ``root``."""
    found = []
    for path in fs.find(root):
        relative = PurePosixPath(path).relative_to(PurePosixPath(root))
        if path.endswith("/") or ".." in relative.parts:  # folder markers; keys that would escape
            continue
        found.append((path, relative))
    return found


def download(uri: str, target: Path) -> list[str]:
    """Make ``target`` a copy of the folder ``uri``, replacing what was there; the files' relative
    names. On any failure ``target`` is as it was and no scratch folder is left."""
    scratch = target.parent / f"{SCRATCH_PREFIX}{target.name}-{uuid.uuid4().hex[:8]}"
    try:
        fs, root = fsspec.core.url_to_fs(
            uri, skip_instance_cache=True, **storage_options(uri, dict(os.environ))
        )
        root = root.rstrip("/")
        files = _remote_files(fs, root)
        if not files:
            raise FetchError(uri, "no objects under this URI: check the adapter's path")
        for path, relative in files:
            local = scratch.joinpath(*relative.parts)
            local.parent.mkdir(parents=True, exist_ok=True)
            fs.get_file(path, str(local))
        if target.exists():
            shutil.rmtree(target)
        scratch.rename(target)
    except FetchError:
        raise
    except ImportError as error:  # gs:// and az:// need gcsfs / adlfs in the image
        raise FetchError(uri, f"this loader cannot read {uri.split('://')[0]}:// ({error})") from error
    except Exception as error:
        detail = f"{type(error).__name__}: {str(error)[:200]}"
        raise FetchError(uri, f"{_ADVICE[classify(error)]} ({detail})") from error
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return sorted(str(relative) for _, relative in files)


def clear_scratch(adapters: Path) -> None:
    """Remove scratch folders a killed loader left behind (the adapters' volume outlives it)."""
    for leftover in adapters.glob(f"{SCRATCH_PREFIX}*"):
        shutil.rmtree(leftover, ignore_errors=True)
