"""``kaizen token create|inspect`` as an operator on call uses them: flags, key ids, clear refusals."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from controllers.cli.main import app

runner = CliRunner()


def test_create_then_inspect_a_reviewer_token_signed_with_a_chosen_key(tmp_path: Path) -> None:
    (tmp_path / "2026-01").write_text("old-key")
    (tmp_path / "2026-06").write_text("new-key")
    env = {"KAIZEN_TOKEN_KEYS_DIR": str(tmp_path), "KAIZEN_TOKEN_SECRET": ""}
    created = runner.invoke(
        app,
        ["token", "create", "--subject", "rita", "--role", "reviewer", "-n", "team-a", "-n", "team-b",
         "--key-id", "2026-06", "--ttl", "12h"],
        env=env,
    )  # fmt: skip
    assert created.exit_code == 0, created.output
    shown = runner.invoke(app, ["token", "inspect", created.output.strip()], env=env)
    assert shown.exit_code == 0, shown.output
    claims = json.loads(shown.output)
    assert (claims["role"], claims["namespaces"], claims["agents"]) == ("reviewer", ["team-a", "team-b"], [])
    assert len(claims["id"]) == 32


def test_a_token_with_no_role_is_for_one_agent_and_bad_flags_say_what_to_do() -> None:
    env = {"KAIZEN_TOKEN_SECRET": "k", "KAIZEN_TOKEN_KEYS_DIR": ""}
    created = runner.invoke(app, ["token", "create", "--subject", "agent-coder"], env=env)
    claims = json.loads(runner.invoke(app, ["token", "inspect", created.output.strip()], env=env).output)
    assert (claims["role"], claims["agents"], claims["namespaces"]) == ("agent", ["agent-coder"], ["default"])
    for flags, message in (
        (["--role", "root"], "roles are agent, reviewer, operator, admin"),
        (["-n", "Team A"], "Kubernetes namespace name"),
        (["--ttl", "soon"], "--ttl must look like"),
        (["--key-id", "missing"], "not among"),
    ):
        refused = runner.invoke(app, ["token", "create", "--subject", "a", *flags], env=env)
        assert refused.exit_code == 1
        assert message in refused.output
    forged = runner.invoke(app, ["token", "inspect", "kz2.e30.x"], env=env)
    assert forged.exit_code == 1
    assert "signature" in forged.output or "malformed" in forged.output


def test_a_feedback_token_names_its_agents_and_needs_no_subject() -> None:
    env = {"KAIZEN_TOKEN_SECRET": "k", "KAIZEN_TOKEN_KEYS_DIR": ""}
    args = ["token", "create", "--role", "feedback", "--agent", "coder", "-n", "team-a", "--ttl", "7d"]
    created = runner.invoke(app, args, env=env)
    assert created.exit_code == 0, created.output
    claims = json.loads(runner.invoke(app, ["token", "inspect", created.output.strip()], env=env).output)
    assert (claims["role"], claims["subject"], claims["agents"]) == ("feedback", "widget-coder", ["coder"])
    unscoped = runner.invoke(app, ["token", "create", "--role", "feedback", "-n", "team-a"], env=env)
    assert unscoped.exit_code == 1
    assert "pass --agent" in unscoped.output
    nobody = runner.invoke(app, ["token", "create", "--role", "reviewer"], env=env)
    assert nobody.exit_code == 1
    assert "--subject is required" in nobody.output


def test_after_kaizen_up_the_local_stacks_key_is_used_without_flags(tmp_path: Path) -> None:
    from controllers.cli import localstack

    keys = tmp_path / "state" / localstack.KEYS_DIR
    keys.mkdir(parents=True)
    (keys / localstack.SIGNING_KEY).write_text("the-local-gateways-key")
    env = {
        "KAIZEN_STATE_DIR": str(tmp_path / "state"),
        "KAIZEN_TOKEN_SECRET": "",
        "KAIZEN_TOKEN_KEYS_DIR": "",
    }
    args = ["token", "create", "--subject", "alice", "--role", "reviewer", "-n", "default"]
    created = runner.invoke(app, args, env=env)
    assert created.exit_code == 0, created.output
    assert "using the local stack's key in" in created.stderr
    token = created.stdout.strip()  # only the token on stdout, so that $(kaizen token create ...) works
    assert token.startswith("kz2.")
    checked = runner.invoke(app, ["token", "inspect", token, "--keys-dir", str(keys)], env=env)
    assert checked.exit_code == 0, checked.output
    assert json.loads(checked.stdout)["role"] == "reviewer"
    # No local stack and no key named: say where keys come from.
    env["KAIZEN_STATE_DIR"] = str(tmp_path / "none")
    refused = runner.invoke(app, args, env=env)
    assert refused.exit_code == 1
    assert "pass --keys-dir" in refused.output
    assert "kaizen up" in refused.output
