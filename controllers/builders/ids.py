"""Deterministic names for a run's Ray jobs: the same run, attempt and config always give the same ids.

A reconcile that is interrupted and run again must find the job the first pass submitted rather than
start a second one; Ray refuses a submission id it has seen, and the API server refuses a second object
with one name, so deterministic names turn "did I already submit?" into "create, and treat
already-exists as done". The config hash is part of every id, so a changed config can never be
mistaken for an earlier attempt of the old one.
"""

from __future__ import annotations

import hashlib
import re

MAX_RAYJOB_NAME = 47  # KubeRay appends 6 characters for the RayCluster, whose names stop at 53
_DNS1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")


def _short(config_hash: str, length: int) -> str:
    hexdigits = config_hash.removeprefix("sha256:")
    if not re.fullmatch(r"[0-9a-f]{64}", hexdigits):
        raise ValueError(f"not a sha256 config hash: {config_hash!r}")
    return hexdigits[:length]


def submission_id(run_name: str, attempt: int, config_hash: str) -> str:
    """The Ray submission id of one attempt, e.g. ``kaizen-coder-dpo-7-a2-3f9c1e0b7a21``."""
    if attempt < 1:
        raise ValueError("attempts count from 1")
    return f"kaizen-{run_name}-a{attempt}-{_short(config_hash, 12)}"


def rayjob_name(run_name: str, attempt: int, config_hash: str) -> str:
    """A DNS-1035 RayJob name of at most 47 characters. Long run names are cut, and a digest of the
    full submission id keeps cut names distinct."""
    suffix = (
        f"-a{attempt}-"
        + hashlib.sha256(submission_id(run_name, attempt, config_hash).encode()).hexdigest()[:8]
    )
    stem = ("kz-" + run_name)[: MAX_RAYJOB_NAME - len(suffix)].rstrip("-")
    name = stem + suffix
    if not _DNS1035.match(name):
        raise ValueError(f"cannot derive a DNS-1035 RayJob name from {run_name!r}")
    return name
