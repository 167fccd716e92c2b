"""The operator's object-storage I/O through fsspec: publish a folder, probe write access, read a file.

Blocking calls (fsspec's synchronous API); reconcilers run them in a thread. Every failure comes out
as a ``StorageError`` that says which kind it is, because the kinds call for different answers:

- ``UNREACHABLE``: connection refused or reset, a timeout, a 5xx. Nothing is wrong with the settings;
  the reconcile tries again later and the run is not failed.
- ``DENIED``: 403, or no credentials at all. A person must fix the Secret or the identity.
- ``MISSING``: the bucket (or the shared volume's folder) does not exist.

Messages carry the store's own words (which never hold a secret key), not the options.
"""

from __future__ import annotations

import importlib
import posixpath
import re
import uuid
from enum import StrEnum
from pathlib import Path
from typing import Any

import fsspec

COMPLETE_MARKER = "snapshot.json"  # written last: its presence means the folder is whole


class Problem(StrEnum):
    UNREACHABLE = "Unreachable"
    DENIED = "Denied"
    MISSING = "Missing"


class StorageError(Exception):
    def __init__(self, problem: Problem, uri: str, detail: str) -> None:
        super().__init__(f"{uri}: {detail}")
        self.problem = problem
        self.uri = uri
        self.detail = detail


_DENIED_NAMES = ("NoCredentials", "Credential", "AccessDenied", "Unauthorized", "Forbidden", "Auth")


def warm_up() -> None:
    """Import the S3 back end at start-up rather than in the first reconcile that touches storage:
    its imports (aiobotocore, botocore) take a second and a half, more on a loaded node, and would
    stall that reconcile after every restart. Done before the operator leads, so it never delays work."""
    importlib.import_module("s3fs")


def classify(error: BaseException) -> Problem:
    """Which kind of failure ``error`` is; anything not clearly the settings' fault is transient."""
    names = " ".join(type(e).__name__ for e in (error, error.__cause__, error.__context__) if e is not None)
    if isinstance(error, PermissionError) or any(part in names for part in _DENIED_NAMES):
        return Problem.DENIED
    if isinstance(error, FileNotFoundError) or "NoSuchBucket" in names:
        return Problem.MISSING
    return Problem.UNREACHABLE


_URL_PATH = re.compile(r"(https?://[^/\s\"']+)[^\s\"']*")


def _detail(error: BaseException) -> str:
    """The store's words, with any URL cut to its host: the object a failure happened on varies from
    one try to the next, and a condition that repeats itself must read the same each time."""
    text = _URL_PATH.sub(r"\1", str(error) or type(error).__name__)
    return f"{type(error).__name__}: {text}"[:300]


def _fs(uri: str, options: dict[str, Any]) -> tuple[fsspec.AbstractFileSystem, str]:
    # A fresh filesystem per call: fsspec's instance cache would keep a client (and its key) alive
    # after the Secret changed, and a client of a refused connection would be reused.
    return fsspec.core.url_to_fs(uri, skip_instance_cache=True, **options)  # type: ignore[no-any-return]


def _make_folder(fs: fsspec.AbstractFileSystem, folder: str) -> None:
    """Folders exist only on a filesystem; on a bucket (where makedirs would create the bucket
    itself, hiding a misspelt name) a key needs none."""
    protocols = (fs.protocol,) if isinstance(fs.protocol, str) else fs.protocol
    if "file" in protocols:
        fs.makedirs(folder, exist_ok=True)


def _wrap(uri: str, error: Exception) -> StorageError:
    return StorageError(classify(error), uri, _detail(error))


def publish_folder(local: Path, uri: str, options: dict[str, Any]) -> list[str]:
    """Copy every file of ``local`` to the folder ``uri`` (same relative names), the completion marker
    last and nothing else left there. A repeat with the same files writes the same objects."""
    files = sorted(p.relative_to(local).as_posix() for p in local.rglob("*") if p.is_file())
    ordered = [name for name in files if name != COMPLETE_MARKER]
    ordered += [name for name in files if name == COMPLETE_MARKER]
    try:
        fs, root = _fs(uri, options)
        root = root.rstrip("/")
        _make_folder(fs, root)
        marker = posixpath.join(root, COMPLETE_MARKER)
        if fs.exists(marker):  # a folder being rewritten is not complete until the new marker lands
            fs.rm_file(marker)
        for name in ordered:
            target = posixpath.join(root, name)
            _make_folder(fs, posixpath.dirname(target))
            fs.put_file(str(local / name), target)
        keep = {posixpath.join(root, name) for name in ordered}
        stale = [path for path in fs.find(root) if path.rstrip("/") not in keep]
        for path in stale:  # left by an earlier export of other files (a role no longer there)
            fs.rm_file(path)
    except Exception as error:
        raise _wrap(uri, error) from error
    return ordered


def probe_write(uri: str, options: dict[str, Any]) -> None:
    """Write and delete a small object under the folder ``uri``: whether the operator can write there."""
    try:
        fs, root = _fs(uri, options)
        path = posixpath.join(root.rstrip("/"), f".kaizen-probe-{uuid.uuid4().hex[:12]}")
        _make_folder(fs, posixpath.dirname(path))
        fs.pipe_file(path, b"kaizen write probe\n")
        fs.rm_file(path)
    except Exception as error:
        raise _wrap(uri, error) from error


def read_text(uri: str, options: dict[str, Any]) -> str:
    try:
        fs, path = _fs(uri, options)
        with fs.open(path, "r", encoding="utf-8") as handle:
            return str(handle.read())
    except Exception as error:
        raise _wrap(uri, error) from error
