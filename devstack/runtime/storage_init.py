"""The stand-in's storage initializer: object-store URIs fetched with the credentials KServe would use.

KServe's storage initializer runs in the predictor pod under ``predictor.serviceAccountName``; it finds
its credentials in the Secrets that ServiceAccount lists (``AWS_ACCESS_KEY_ID`` /
``AWS_SECRET_ACCESS_KEY``, with the endpoint, TLS and region in the Secret's
``serving.kserve.io/s3-endpoint``, ``s3-usehttps`` and ``s3-region`` annotations). This module does the
same against the real API server and the real S3-protocol server: no ServiceAccount, or one listing no
usable Secret, means no credentials (an authenticated bucket refuses an anonymous caller with 403;
the stand-in says so without asking); the wrong key is refused by the store itself with 403. Objects land in a fresh folder owned by one server —
never a path of the operator's or the trainer's.

Local paths and ``tiny://`` stand for weights already in the image or on a volume and are not fetched.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from controllers.api.kindinfo import Resource
from controllers.runtime.kube import Kube

SERVICE_ACCOUNTS = Resource("", "v1", "serviceaccounts")
SECRETS = Resource("", "v1", "secrets")
ANNOTATION = "serving.kserve.io/"
REMOTE_SCHEMES = ("s3://",)
CREDENTIAL_KEYS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL", "AWS_DEFAULT_REGION")


class StorageError(RuntimeError):
    """A URI the storage initializer could not fetch; the message names it and the store's answer."""


def is_remote(uri: str) -> bool:
    return uri.startswith(REMOTE_SCHEMES)


def _decoded(secret: dict[str, Any]) -> dict[str, str]:
    import base64

    return {key: base64.b64decode(value).decode() for key, value in (secret.get("data") or {}).items()}


async def credentials(kube: Kube, namespace: str, service_account: str | None) -> dict[str, str]:
    """The environment the storage initializer (and a runtime LoRA loader) runs with: the keys of the
    first Secret the ServiceAccount lists that holds AWS keys, and its annotations' endpoint and region.
    Empty: anonymous."""
    if not service_account:
        return {}
    account = await kube.get(SERVICE_ACCOUNTS, namespace, service_account)
    for ref in (account or {}).get("secrets") or []:
        secret = await kube.get(SECRETS, namespace, ref.get("name", ""))
        data = _decoded(secret or {})
        if "AWS_ACCESS_KEY_ID" not in data:
            continue
        notes = (secret or {}).get("metadata", {}).get("annotations") or {}
        env = {key: data[key] for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY") if key in data}
        if endpoint := notes.get(ANNOTATION + "s3-endpoint"):
            scheme = "http" if notes.get(ANNOTATION + "s3-usehttps", "1") == "0" else "https"
            env["AWS_ENDPOINT_URL"] = endpoint if "://" in endpoint else f"{scheme}://{endpoint}"
        env["AWS_DEFAULT_REGION"] = notes.get(ANNOTATION + "s3-region", "us-east-1")
        return env
    return {}


def fetch(uri: str, destination: Path, env: dict[str, str]) -> Path:
    """Copy every object under ``uri`` into ``destination`` (created empty) with ``env``'s credentials."""
    import s3fs  # type: ignore[import-untyped]

    key, secret = env.get("AWS_ACCESS_KEY_ID"), env.get("AWS_SECRET_ACCESS_KEY")
    if not key or not secret:
        raise StorageError(
            f"storage-initializer: failed to download {uri}: no credentials (403 Forbidden for an"
            " anonymous caller): set predictor.serviceAccountName to a ServiceAccount whose secrets list"
            " a Secret with AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
        )
    fs = s3fs.S3FileSystem(
        key=key,
        secret=secret,
        skip_instance_cache=True,
        client_kwargs={
            "endpoint_url": env.get("AWS_ENDPOINT_URL"),
            "region_name": env.get("AWS_DEFAULT_REGION", "us-east-1"),
        },
        config_kwargs={"retries": {"max_attempts": 2}},
    )
    source = uri.removeprefix("s3://").rstrip("/")
    destination.mkdir(parents=True, exist_ok=False)
    try:
        files = [path for path in fs.find(source) if not path.endswith("/")]
        if not files:
            raise StorageError(f"storage-initializer: {uri}: no objects under this URI")
        for path in files:
            relative = Path(path).relative_to(source) if path != source else Path(Path(path).name)
            target = destination / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            fs.get_file(path, str(target))
    except StorageError:
        raise
    except Exception as error:  # s3fs turns a 403 into PermissionError, a missing key into others
        status = "403 Forbidden" if isinstance(error, PermissionError) or "403" in str(error) else ""
        raise StorageError(
            f"storage-initializer: failed to download {uri}: {status or type(error).__name__}: {error}"
            " (check predictor.serviceAccountName and the Secret it lists)"
        ) from error
    return destination


async def fetch_async(uri: str, destination: Path, env: dict[str, str]) -> Path:
    return await asyncio.to_thread(fetch, uri, destination, env)
