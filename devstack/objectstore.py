"""A real S3-protocol server on loopback, with authentication on, for the tests and ``kaizen up``.

The server is moto's server mode (a separate process speaking the S3 and IAM HTTP APIs). Its first
few requests are unauthenticated so that ``start`` can create one IAM user, its access key and an
``s3:*`` policy; from then on every request must be signed with that key, so a client holding no
credentials, or the wrong ones, gets ``403 Forbidden`` exactly as from a real bucket.

Clients reach it through a small TCP relay on its own port, which ``outage`` closes for a while
(connection refused, as when a storage endpoint goes away) and opens again on the same port with
every object still there: moto keeps its state in memory, so stopping the server itself would lose it.

    store = ObjectStore(state_dir).start()
    store.create_bucket("kaizen")
    store.env()                 # AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_ENDPOINT_URL, ...
    with store.outage(10): ...  # refused for 10 s
    store.stop()
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devstack import processes
from devstack.ports import free_port, listen_loopback

REGION = "us-east-1"
USER = "kaizen"
# create_user, create_access_key and put_user_policy go through before authentication starts.
_UNAUTHENTICATED_SETUP_CALLS = 3
_ALLOW_S3 = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}


@dataclass(frozen=True)
class Credentials:
    access_key_id: str
    secret_access_key: str


class Relay:
    """Forwards loopback TCP connections on ``port`` to ``target``; can be closed and reopened."""

    def __init__(self, target: int) -> None:
        self.target = target
        self._listener = listen_loopback()
        self.port = int(self._listener.getsockname()[1])
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._thread = self._serve(self._listener)

    def _serve(self, listener: socket.socket) -> threading.Thread:
        thread = threading.Thread(target=self._accept, args=(listener,), daemon=True)
        thread.start()
        return thread

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # closed by close()
            threading.Thread(target=self._pipe, args=(client,), daemon=True).start()

    def _pipe(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(("127.0.0.1", self.target), timeout=10)
        except OSError:
            client.close()
            return
        with self._lock:
            self._open |= {client, upstream}
        pair = {client: upstream, upstream: client}
        try:
            while True:
                readable, _, _ = select.select(list(pair), [], [], 60)
                if not readable:
                    break
                data = readable[0].recv(65536)
                if not data:
                    break
                pair[readable[0]].sendall(data)
        except OSError:
            pass
        finally:
            with self._lock:
                self._open -= {client, upstream}
            for sock in (client, upstream):
                sock.close()

    def close(self) -> None:
        """Refuse new connections and cut the open ones (a reset, as a vanished endpoint gives)."""
        # shutdown wakes the thread blocked in accept(); close alone would leave the port bound by it.
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        self._thread.join(timeout=5)
        with self._lock:
            for sock in list(self._open):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def reopen(self) -> None:
        self._listener = listen_loopback(self.port)
        self._thread = self._serve(self._listener)


@dataclass
class ObjectStore:
    """``relay=False`` serves clients on the server's own port (no outages; for ``kaizen up``, whose
    parts outlive the process that started them), ``detached=True`` starts the server in a session of
    its own, as the stack's other processes."""

    state_dir: Path
    relay: bool = True
    detached: bool = False
    credentials: Credentials | None = None
    _process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    _relay: Relay | None = field(default=None, repr=False)
    _server_port: int = 0

    @property
    def log(self) -> Path:
        return self.state_dir / "objectstore.log"

    @property
    def endpoint(self) -> str:
        """The URL clients use (through the relay, when there is one)."""
        assert self._server_port, "start() first"
        return f"http://127.0.0.1:{self._relay.port if self._relay else self._server_port}"

    @property
    def pid(self) -> int:
        assert self._process is not None, "start() first"
        return self._process.pid

    def start(self, timeout: float = 60.0) -> ObjectStore:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._server_port = free_port()
        env = {**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": str(_UNAUTHENTICATED_SETUP_CALLS)}
        command = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self._server_port)]
        with self.log.open("ab") as log:
            self._process = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                start_new_session=self.detached,
            )
        direct = f"http://127.0.0.1:{self._server_port}"
        processes.wait_until_answering(
            self._process, f"{direct}/moto-api/", "object store", self.log, timeout
        )
        if self.relay:
            self._relay = Relay(self._server_port)
        self.credentials = self._create_user()
        return self

    def _create_user(self) -> Credentials:
        iam = self._client("iam", Credentials("setup", "setup"))
        iam.create_user(UserName=USER)
        key = iam.create_access_key(UserName=USER)["AccessKey"]
        iam.put_user_policy(UserName=USER, PolicyName="s3", PolicyDocument=json.dumps(_ALLOW_S3))
        return Credentials(key["AccessKeyId"], key["SecretAccessKey"])

    def _client(self, service: str, credentials: Credentials | None = None) -> Any:
        import boto3  # type: ignore[import-untyped]

        credentials = credentials or self.credentials
        assert credentials is not None
        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id=credentials.access_key_id,
            aws_secret_access_key=credentials.secret_access_key,
        )

    def create_bucket(self, name: str) -> str:
        """Create ``name`` unless it exists; its s3:// URI."""
        s3 = self._client("s3")
        with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou):
            s3.create_bucket(Bucket=name)
        return f"s3://{name}"

    def env(self) -> dict[str, str]:
        """What a process needs to reach the store with the user's key (the names s3fs and boto read)."""
        assert self.credentials is not None, "start() first"
        return {
            "AWS_ACCESS_KEY_ID": self.credentials.access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.credentials.secret_access_key,
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_DEFAULT_REGION": REGION,
        }

    def secret_data(self) -> dict[str, str]:
        """The keys of a Kubernetes Secret holding these credentials (``training.storage.secretRef``)."""
        env = self.env()
        return {key: env[key] for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}

    def kube_objects(self, namespace: str, name: str = "kaizen-storage") -> list[dict[str, Any]]:
        """A Secret with the key and a ServiceAccount that lists it, as KServe's storage initializer
        expects them (``serving.kserve.io/s3-*`` annotations on the Secret): what a policy's
        ``training.storage`` names as ``secretRef`` and ``serviceAccountName``."""
        endpoint = self.endpoint.removeprefix("http://")
        secret = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "annotations": {
                    "serving.kserve.io/s3-endpoint": endpoint,
                    "serving.kserve.io/s3-usehttps": "0",
                    "serving.kserve.io/s3-region": REGION,
                },
            },
            "type": "Opaque",
            "stringData": self.secret_data(),
        }
        account = {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": name, "namespace": namespace},
            "secrets": [{"name": name}],
        }
        return [secret, account]

    @contextlib.contextmanager
    def outage(self, seconds: float) -> Iterator[None]:
        """Refuse every connection for ``seconds`` (and for the body of the ``with``, if longer)."""
        assert self._relay is not None, "an outage needs the relay (ObjectStore(relay=True))"
        self._relay.close()
        until = time.monotonic() + seconds
        try:
            yield
        finally:
            while (left := until - time.monotonic()) > 0:
                time.sleep(min(left, 0.5))  # the outage's length is the point: a deadline, not a poll
            self._relay.reopen()

    def stop(self) -> None:
        if self._relay is not None:
            self._relay.close()
            self._relay = None
        processes.stop(self._process)
        self._process = None

    def __enter__(self) -> ObjectStore:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
