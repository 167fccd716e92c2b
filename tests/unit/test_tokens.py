"""Kaizen tokens: what they carry, rotation across key ids, revocation, and what they refuse."""

from __future__ import annotations

import base64
import json
import os
import time
from pathlib import Path

import pytest

from controllers.api.identity import ANY, Role
from controllers.gateway import auth


def test_a_token_without_a_role_is_an_agent_token_for_one_agent_in_default() -> None:
    principal = auth.verify("k", auth.issue("k", "agent-coder", 60))
    assert (principal.role, principal.agents, principal.namespaces) == (
        Role.AGENT,
        ("agent-coder",),
        ("default",),
    )
    assert principal.scope == "kaizen:agent-coder"
    assert principal.token_id


def test_roles_namespaces_and_agents_round_trip() -> None:
    token = auth.issue("k", "rita", 60, role=Role.REVIEWER, namespaces=["team-a", "team-b"])
    principal = auth.verify("k", token)
    assert principal.role is Role.REVIEWER
    assert principal.namespaces == ("team-a", "team-b")
    assert principal.agents == ()  # a reviewer writes for no agent
    assert auth.verify("k", auth.issue("k", "ops", 60, role=Role.ADMIN, namespaces=[ANY])).covers_namespace(
        "x"
    )


def test_two_keys_are_valid_at_once_and_a_removed_key_revokes_what_it_signed() -> None:
    old = auth.Keyring({"2026-01": "old-secret"}, "2026-01")
    both = auth.Keyring({"2026-01": "old-secret", "2026-06": "new-secret"}, "2026-06")
    by_old, by_new = auth.issue(old, "a", 60), auth.issue(both, "a", 60)
    assert auth.verify(both, by_old).subject == auth.verify(both, by_new).subject == "a"
    only_new = auth.Keyring({"2026-06": "new-secret"}, "2026-06")
    auth.verify(only_new, by_new)
    with pytest.raises(auth.InvalidToken, match="unknown key id '2026-01'"):
        auth.verify(only_new, by_old)


def test_the_keyring_comes_from_a_directory_of_keys(tmp_path: Path) -> None:
    (tmp_path / "k1").write_text("first\n")
    (tmp_path / "k2").write_text("second")
    (tmp_path / ".hidden").write_text("ignored")
    keyring = auth.Keyring.from_env(
        {"KAIZEN_TOKEN_KEYS_DIR": str(tmp_path), "KAIZEN_TOKEN_SIGNING_KEY": "k1"}
    )
    assert dict(keyring.keys) == {"k1": "first", "k2": "second"}
    assert keyring.signing == "k1"
    with pytest.raises(ValueError, match="not among"):
        auth.Keyring.from_env({"KAIZEN_TOKEN_KEYS_DIR": str(tmp_path), "KAIZEN_TOKEN_SIGNING_KEY": "k9"})
    with pytest.raises(ValueError, match="no token key"):
        auth.Keyring.from_env({})


def test_revocation_by_token_id_and_by_subject_is_read_when_the_file_changes(tmp_path: Path) -> None:
    listed = tmp_path / "revoked"
    revocations = auth.Revocations(listed, recheck_seconds=0)
    first, second = auth.issue("k", "a", 60), auth.issue("k", "b", 60)
    auth.verify("k", first, revocations=revocations)  # no file: nothing revoked
    listed.write_text(f"{auth.verify('k', first).token_id}  # leaked in a log\n")
    with pytest.raises(auth.InvalidToken, match="revoked"):
        auth.verify("k", first, revocations=revocations)
    auth.verify("k", second, revocations=revocations)
    listed.write_text("sub:b\n")
    os.utime(listed, (time.time() + 5, time.time() + 5))
    auth.verify("k", first, revocations=revocations)
    with pytest.raises(auth.InvalidToken, match="revoked"):
        auth.verify("k", second, revocations=revocations)


def _forge(claims: object) -> str:
    payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"kz2.{payload}.{auth._sign('k', payload)}"


@pytest.mark.parametrize(
    ("token", "message"),
    [
        (None, "missing bearer token"),
        ("", "missing bearer token"),
        ("kz2.é.x", "ASCII"),
        ("kz2." + "a" * 5000 + ".x", "at most 4096"),
        ("kz1.abc.def", "kz1 tokens are retired"),
        ("Bearer.x", "expected kz2"),
        ("kz2.!!!.x", "malformed token payload"),
        (_forge([1, 2]), "malformed token payload"),
        (_forge({"kid": "default", "sub": "a", "role": "root", "ns": [], "agents": [], "exp": 9e9, "jti": "j"}), "malformed"),
        (_forge({"kid": "default", "sub": "a", "role": "agent", "ns": ["x"] * 65, "agents": [], "exp": 9e9, "jti": "j"}), "malformed"),
        (_forge({"kid": "default", "sub": "a", "role": "agent", "ns": "default", "agents": [], "exp": 9e9, "jti": "j"}), "malformed"),
    ],
)  # fmt: skip
def test_malformed_and_hostile_tokens_are_refused_with_a_reason(token: str | None, message: str) -> None:
    with pytest.raises(auth.InvalidToken, match=message):
        auth.verify("k", token)


def test_a_token_whose_payload_was_changed_fails_its_signature() -> None:
    prefix, payload, signature = auth.issue("k", "a", 60).split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["role"] = "admin"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    with pytest.raises(auth.InvalidToken, match="invalid token signature"):
        auth.verify("k", f"{prefix}.{forged}.{signature}")


def test_expired_tokens_are_refused() -> None:
    with pytest.raises(auth.InvalidToken, match="expired"):
        auth.verify("k", auth.issue("k", "a", 60, now=time.time() - 120))


@pytest.mark.parametrize(
    ("namespaces", "agents", "subject"),
    [
        (["Team A"], None, "a"),
        ([], None, "a"),
        (["ok"], ["bad\nagent"], "a"),
        (["ok"], None, ""),
        (["x"] * 65, None, "a"),
    ],
)
def test_tokens_are_not_issued_for_names_that_could_never_match(
    namespaces: list[str], agents: list[str] | None, subject: str
) -> None:
    with pytest.raises(ValueError, match=r"namespace|printable|names 1 to"):
        auth.issue("k", subject, 60, namespaces=namespaces, agents=agents)


def test_a_live_keyring_follows_its_key_directory_and_keeps_the_last_good_keys(tmp_path: Path) -> None:
    (tmp_path / "2026-01").write_text("old-secret")
    env = {"KAIZEN_TOKEN_KEYS_DIR": str(tmp_path)}
    live = auth.LiveKeyring(auth.Keyring.from_env(env), env, recheck_seconds=0)
    by_old = auth.issue(live.current(), "a", 60)
    # rotation step 1: a new key appears beside the old one; both verify, no restart
    (tmp_path / "2026-06").write_text("new-secret")
    by_new = auth.issue(auth.Keyring({"2026-06": "new-secret"}, "2026-06"), "a", 60)
    auth.verify(live.current(), by_new)
    auth.verify(live.current(), by_old)
    # rotation step 4: the old key goes, and what it signed with it
    (tmp_path / "2026-01").unlink()
    with pytest.raises(auth.InvalidToken, match="unknown key id"):
        auth.verify(live.current(), by_old)
    # a half-written update (an empty key file) keeps the last good keyring
    (tmp_path / "2026-06").write_text("")
    auth.verify(live.current(), by_new)


def test_removing_the_key_a_stale_signing_setting_names_still_revokes_it(tmp_path: Path) -> None:
    (tmp_path / "old").write_text("old-secret")
    (tmp_path / "new").write_text("new-secret")
    env = {"KAIZEN_TOKEN_KEYS_DIR": str(tmp_path), "KAIZEN_TOKEN_SIGNING_KEY": "old"}
    live = auth.LiveKeyring(auth.Keyring.from_env(env), env, recheck_seconds=0)
    by_old = auth.issue(live.current(), "a", 60)
    (tmp_path / "old").unlink()
    with pytest.raises(auth.InvalidToken, match="unknown key id 'old'"):
        auth.verify(live.current(), by_old)
