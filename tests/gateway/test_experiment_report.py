"""``kaizen experiment report`` through the gateway: a token, no database credentials, the same report.

A real gateway process on each store, seeded with twelve hours of one experiment's traffic
(``tests.store.test_experiment_report.seed``). The report read through
``GET /v1/experiments/{ns}/{name}/series`` must be the report read from the store itself, byte for
byte (table and PNG); refusals must say which token to create; the local stack's gateway and key are
found without flags; and ``--database-url`` never creates the database it names.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from controllers.api.identity import Role
from controllers.cli import localstack
from controllers.gateway import auth
from controllers.store.db import make_engine, session_factory, transaction
from devstack.gateway import GatewayProcess
from tests.store.test_experiment_report import seed

KEY = "local-stack-key-0123456789abcdef"


@pytest.fixture
def state(tmp_path: Path) -> Path:
    """A local stack's state folder as ``kaizen up`` leaves it: the key, and (later) the gateway's URL."""
    keys = tmp_path / "state" / localstack.KEYS_DIR
    keys.mkdir(parents=True, mode=0o700)
    (keys / localstack.SIGNING_KEY).write_text(KEY)
    return tmp_path / "state"


@pytest.fixture
def gateway(store_url: str, state: Path, tmp_path: Path) -> Iterator[GatewayProcess]:
    engine = make_engine(store_url)
    with transaction(session_factory(engine)) as session:
        seed(session)
    engine.dispose()
    keys = {"KAIZEN_TOKEN_KEYS_DIR": str(state / localstack.KEYS_DIR)}
    process = GatewayProcess(store_url, "", tmp_path / "gateway.log", env=keys)
    process.start()
    (state / localstack.GATEWAY_URL_FILE).write_text(process.url)
    try:
        yield process
    finally:
        process.stop()


def kaizen(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """The command as a person runs it: no cluster (the table comes from the recorded traffic)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("KAIZEN_", "KUBERNETES_"))}
    return subprocess.run(
        [sys.executable, "-m", "controllers.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        env={**clean, "KUBECONFIG": str(cwd / "no-kubeconfig"), **env},
    )


def token(role: Role, namespace: str = "team", secret: str = KEY, ttl: int = 600) -> str:
    return auth.issue(secret, "rita", ttl, role=role, namespaces=[namespace])


REPORT = ("experiment", "report", "coder-exp", "-n", "team")


def test_the_report_through_the_gateway_is_the_report_from_the_store(
    gateway: GatewayProcess, store_url: str, tmp_path: Path
) -> None:
    through = kaizen(
        *REPORT, "--gateway", gateway.url, "--token", token(Role.REVIEWER), "-o", "gw.png", cwd=tmp_path
    )
    assert through.returncode == 0, through.stderr
    direct = kaizen(*REPORT, "--database-url", store_url, "-o", "db.png", cwd=tmp_path)
    assert direct.returncode == 0, direct.stderr
    assert through.stdout.replace("gw.png", "db.png") == direct.stdout
    assert "challenger" in through.stdout
    assert "Challenger   25%" in through.stdout  # the route's weights: no cluster, no status rows
    assert (tmp_path / "gw.png").read_bytes() == (tmp_path / "db.png").read_bytes()
    # An operator token reads it too, and the environment stands in for the flags.
    env = {"KAIZEN_GATEWAY_URL": gateway.url, "KAIZEN_TOKEN": token(Role.OPERATOR, "*")}
    assert kaizen(*REPORT, "-o", "op.png", cwd=tmp_path, **env).returncode == 0


def test_refusals_say_which_token_to_create(gateway: GatewayProcess, tmp_path: Path) -> None:
    cases = [
        (token(Role.AGENT), "403", "reviewer or operator token of namespace team"),
        (token(Role.REVIEWER, "elsewhere"), "403", "may not act in namespace 'team'"),
        (token(Role.REVIEWER, ttl=-10), "expired", "kaizen token create --subject <you> --role reviewer -n team"),
        (token(Role.REVIEWER, secret="another-key-0123456789"), "did not accept", "--token or KAIZEN_TOKEN"),
    ]  # fmt: skip
    for bearer, first, second in cases:
        refused = kaizen(*REPORT, "--gateway", gateway.url, "--token", bearer, cwd=tmp_path)
        assert refused.returncode == 1, refused.stdout
        assert first in refused.stderr, refused.stderr
        assert second in refused.stderr, refused.stderr
        assert "Traceback" not in refused.stderr
    no_token = kaizen(*REPORT, "--gateway", gateway.url, cwd=tmp_path)
    assert no_token.returncode == 1
    assert "pass --token or set KAIZEN_TOKEN" in no_token.stderr
    assert "kaizen token create --subject <you> --role reviewer -n team" in no_token.stderr
    nowhere = kaizen(*REPORT, "--gateway", "http://127.0.0.1:9", "--token", "t", cwd=tmp_path)
    assert nowhere.returncode == 1
    assert "cannot reach the gateway at http://127.0.0.1:9" in nowhere.stderr


def test_with_the_local_stack_running_no_flag_is_needed(
    gateway: GatewayProcess, state: Path, tmp_path: Path
) -> None:
    local = kaizen(*REPORT, "-o", "local.png", cwd=tmp_path, KAIZEN_STATE_DIR=str(state))
    assert local.returncode == 0, local.stderr
    assert f"reading through the gateway at {gateway.url} with a 10-minute reviewer token" in local.stderr
    assert (tmp_path / "local.png").stat().st_size > 40_000
    # ``kaizen token create`` finds the same key: its token is one the local gateway takes.
    created = kaizen(
        "token", "create", "--subject", "alice", "--role", "reviewer", "-n", "team",
        cwd=tmp_path, KAIZEN_STATE_DIR=str(state),
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    assert "using the local stack's key" in created.stderr
    with_it = kaizen(*REPORT, "--token", created.stdout.strip(), cwd=tmp_path, KAIZEN_STATE_DIR=str(state))
    assert with_it.returncode == 0, with_it.stderr
    # Nothing local and nothing given: say where a gateway comes from.
    nothing = kaizen(*REPORT, cwd=tmp_path, KAIZEN_STATE_DIR=str(tmp_path / "none"))
    assert nothing.returncode == 1
    assert "pass --gateway URL or set KAIZEN_GATEWAY_URL" in nothing.stderr


def test_an_offline_database_that_is_not_there_is_named_and_not_created(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "kaizen.db"
    result = kaizen(*REPORT, "--database-url", f"sqlite:///{missing}", cwd=tmp_path)
    assert result.returncode == 1
    assert f"no database at {missing}" in result.stderr
    assert "schema" not in result.stderr
    assert not missing.exists()
    assert not missing.parent.exists()
    empty = tmp_path / "empty.db"
    empty.touch()
    result = kaizen(*REPORT, "--database-url", f"sqlite:///{empty}", cwd=tmp_path)
    assert result.returncode == 1
    assert "holds no Kaizen store" in result.stderr
