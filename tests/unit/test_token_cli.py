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
