"""The S3-protocol server the tests keep data in refuses what a real bucket refuses, and an outage
refuses connections without losing what is stored."""

from __future__ import annotations

import fsspec
import pytest
from botocore.exceptions import EndpointConnectionError
from fsspec.spec import AbstractFileSystem

from devstack.objectstore import REGION, ObjectStore


def s3(store: ObjectStore, key: str | None, secret: str | None) -> AbstractFileSystem:
    options = {"endpoint_url": store.endpoint, "region_name": REGION}
    if key is None:
        return fsspec.filesystem("s3", anon=True, client_kwargs=options, skip_instance_cache=True)
    return fsspec.filesystem("s3", key=key, secret=secret, client_kwargs=options, skip_instance_cache=True)


def test_only_the_users_key_reads_and_writes(object_store: ObjectStore, bucket: str) -> None:
    env = object_store.env()
    owner = s3(object_store, env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"])
    path = f"{bucket.removeprefix('s3://')}/runs/a/manifest.json"
    owner.pipe(path, b"{}")
    assert owner.cat(path) == b"{}"
    for stranger in (s3(object_store, None, None), s3(object_store, "AKIAWRONGKEY", "nope")):
        with pytest.raises(PermissionError):
            stranger.cat(path)
        with pytest.raises(PermissionError):
            stranger.pipe(path, b"overwritten")
    assert owner.cat(path) == b"{}"


def test_an_outage_refuses_connections_and_keeps_the_objects(object_store: ObjectStore, bucket: str) -> None:
    env = object_store.env()
    path = f"{bucket.removeprefix('s3://')}/kept.txt"
    s3(object_store, env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"]).pipe(path, b"still here")
    with object_store.outage(1), pytest.raises(EndpointConnectionError):
        s3(object_store, env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"]).cat(path)
    after = s3(object_store, env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"])
    assert after.cat(path) == b"still here"
