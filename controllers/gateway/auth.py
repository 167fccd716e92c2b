"""Kaizen bearer tokens: HMAC-signed, self-contained, with a role, a scope, a key id and an expiry.

A token is ``kz2.<payload>.<signature>``. The payload (base64url JSON) holds ``kid`` (which key
signed it), ``sub``, ``role``, ``ns`` (namespaces), ``agents``, ``exp`` and ``jti`` (the token's id).
The signature is HMAC-SHA256 over the payload with the key ``kid`` names.

Rotation: a ``Keyring`` holds several keys at once. Issue with the new key, keep the old one until
its tokens have expired, then drop it (which revokes whatever it still signed). A single leaked
token is revoked by listing its id (or ``sub:<subject>`` for all of a subject's tokens) in the
revocation file (``Revocations``), which every replica re-reads when it changes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import re
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from controllers.api.identity import Principal, Role

log = logging.getLogger("kaizen.gateway.auth")

PREFIX = "kz2"
MAX_TOKEN_LENGTH = 4096
KEY_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
NAMESPACE = re.compile(r"\*|[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
PRINTABLE = re.compile(r"[^\x00-\x1f\x7f-\x9f\u2028\u2029]{1,253}")
NAME_LIST_LIMIT = 64


class InvalidToken(Exception):
    """The token is missing, malformed, forged, revoked or expired; the message says which."""


@dataclass(frozen=True)
class Keyring:
    """The keys tokens may be signed with (key id -> secret), and the one new tokens are signed with."""

    keys: Mapping[str, str]
    signing: str

    def __post_init__(self) -> None:
        if not self.keys or not all(self.keys.values()):
            raise ValueError("no token key: set KAIZEN_TOKEN_SECRET or KAIZEN_TOKEN_KEYS_DIR")
        if self.signing not in self.keys:
            raise ValueError(f"the signing key id {self.signing!r} is not among {sorted(self.keys)}")
        for kid in self.keys:
            if not KEY_ID.fullmatch(kid):
                raise ValueError(f"key id {kid!r}: use 1-64 of A-Z a-z 0-9 . _ -")

    @classmethod
    def single(cls, secret: str, kid: str = "default") -> Keyring:
        return cls({kid: secret}, kid)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Keyring:
        """``KAIZEN_TOKEN_KEYS_DIR`` (a mounted Secret: one file per key id) and/or
        ``KAIZEN_TOKEN_SECRET`` (key id ``default``); ``KAIZEN_TOKEN_SIGNING_KEY`` picks the signer."""
        env = os.environ if env is None else env
        keys: dict[str, str] = {}
        if env.get("KAIZEN_TOKEN_SECRET"):
            keys["default"] = env["KAIZEN_TOKEN_SECRET"]
        if env.get("KAIZEN_TOKEN_KEYS_DIR"):
            for path in sorted(Path(env["KAIZEN_TOKEN_KEYS_DIR"]).iterdir()):
                if path.is_file() and not path.name.startswith("."):
                    keys[path.name] = path.read_text().strip()
        signing = env.get("KAIZEN_TOKEN_SIGNING_KEY") or (
            "default" if "default" in keys else max(keys, default="")
        )
        return cls(keys, signing)


@dataclass
class LiveKeyring:
    """A keyring that follows its key directory: a key added to (or removed from) the mounted Secret
    takes effect within ``recheck_seconds`` of the kubelet updating the files, without a restart.

    A directory that cannot be read or holds no usable key keeps the last good keyring (and says so
    once per change in the log), so a half-written update never locks every caller out."""

    keyring: Keyring
    env: Mapping[str, str] = field(default_factory=dict)
    recheck_seconds: float = 5.0
    _stamp: tuple[tuple[str, int, int], ...] | None = None
    _checked: float = 0.0

    def current(self) -> Keyring:
        directory = self.env.get("KAIZEN_TOKEN_KEYS_DIR")
        now = time.monotonic()
        if not directory or now - self._checked < self.recheck_seconds:
            return self.keyring
        self._checked = now
        try:
            stamp = tuple(
                sorted(
                    (p.name, p.stat().st_mtime_ns, p.stat().st_size)
                    for p in Path(directory).iterdir()
                    if p.is_file() and not p.name.startswith(".")
                )
            )
            if stamp != self._stamp:
                self._stamp = stamp
                # Verifying needs every key and no signer: a signing key id that names a removed
                # key must not keep the removed key valid.
                verifying = {k: v for k, v in self.env.items() if k != "KAIZEN_TOKEN_SIGNING_KEY"}
                self.keyring = Keyring.from_env(verifying)
        except (OSError, ValueError) as error:
            log.warning("token keys in %s not reloaded, keeping the last good ones: %s", directory, error)
        return self.keyring


@dataclass
class Revocations:
    """Revoked token ids (and ``sub:<subject>`` lines), from a file re-read when it changes."""

    path: Path | None = None
    recheck_seconds: float = 1.0
    _revoked: frozenset[str] = frozenset()
    _stamp: tuple[float, int] | None = None
    _checked: float = field(default=0.0)

    def revoked(self, principal: Principal) -> bool:
        self._reload()
        return principal.token_id in self._revoked or f"sub:{principal.subject}" in self._revoked

    def _reload(self) -> None:
        now = time.monotonic()
        if self.path is None or now - self._checked < self.recheck_seconds:
            return
        self._checked = now
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            self._revoked, self._stamp = frozenset(), None
            return
        if (stat.st_mtime, stat.st_size) != self._stamp:
            lines = (line.split("#", 1)[0].strip() for line in self.path.read_text().splitlines())
            self._revoked, self._stamp = (
                frozenset(line for line in lines if line),
                (stat.st_mtime, stat.st_size),
            )


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _sign(secret: str, payload: str) -> str:
    return _b64(hmac.new(secret.encode(), f"{PREFIX}.{payload}".encode(), hashlib.sha256).digest())


def _keyring(keys: Keyring | str) -> Keyring:
    return Keyring.single(keys) if isinstance(keys, str) else keys


def issue(
    keys: Keyring | str,
    subject: str,
    ttl_seconds: int,
    *,
    role: Role = Role.AGENT,
    namespaces: Iterable[str] = ("default",),
    agents: Iterable[str] | None = None,
    now: float | None = None,
) -> str:
    """A signed token. With no ``agents``, an agent token is for the agent named ``subject``."""
    keyring = _keyring(keys)
    scope_agents = tuple(agents) if agents is not None else ((subject,) if role is Role.AGENT else ())
    scope_namespaces = tuple(namespaces)
    if role is Role.FEEDBACK and not scope_agents:
        # Unscoped, it would rate nothing; and a public page's token should never silently cover all.
        raise ValueError("a feedback token names the agents (and routes) whose answers it may rate")
    if not scope_namespaces or len(scope_namespaces) > NAME_LIST_LIMIT or len(scope_agents) > NAME_LIST_LIMIT:
        raise ValueError(
            f"a token names 1 to {NAME_LIST_LIMIT} namespaces and at most {NAME_LIST_LIMIT} agents"
        )
    for namespace in scope_namespaces:
        if not NAMESPACE.fullmatch(namespace):
            raise ValueError(f"namespace {namespace!r}: a Kubernetes namespace name, or '*' for all")
    for name in (subject, *scope_agents):
        if not PRINTABLE.fullmatch(name):
            raise ValueError(f"{name!r}: subjects and agents are 1-253 printable characters")
    claims = {
        "kid": keyring.signing,
        "sub": subject,
        "role": role.value,
        "ns": list(scope_namespaces),
        "agents": list(scope_agents),
        "exp": int((now if now is not None else time.time()) + ttl_seconds),
        "jti": uuid.uuid4().hex,
    }
    payload = _b64(json.dumps(claims, separators=(",", ":")).encode())
    return f"{PREFIX}.{payload}.{_sign(keyring.keys[keyring.signing], payload)}"


def verify(
    keys: Keyring | str, token: str | None, now: float | None = None, revocations: Revocations | None = None
) -> Principal:
    if not token:
        raise InvalidToken("missing bearer token; send 'Authorization: Bearer <token>' (kaizen token create)")
    if len(token) > MAX_TOKEN_LENGTH or not token.isascii():
        raise InvalidToken("malformed token: a token is at most 4096 ASCII characters")
    parts = token.split(".")
    if len(parts) != 3 or parts[0] != PREFIX:
        hint = "; kz1 tokens are retired, issue a new one" if parts[0] == "kz1" else ""
        raise InvalidToken(f"malformed token; expected {PREFIX}.<payload>.<signature>{hint}")
    claims = _claims(parts[1])
    keyring = _keyring(keys)
    kid = claims.get("kid")
    if not isinstance(kid, str):
        raise InvalidToken("malformed token payload: no key id")
    secret = keyring.keys.get(kid)
    if secret is None:
        raise InvalidToken(f"token signed with unknown key id {kid!r} (rotated out?)")
    if not hmac.compare_digest(_sign(secret, parts[1]), parts[2]):
        raise InvalidToken("invalid token signature")
    principal = _principal(claims)
    if principal.expires_at is not None and principal.expires_at <= (now if now is not None else time.time()):
        raise InvalidToken("token expired; issue a new one with `kaizen token create`")
    if revocations is not None and revocations.revoked(principal):
        raise InvalidToken(f"token {principal.token_id} has been revoked")
    return principal


def _claims(payload: str) -> dict[str, object]:
    try:
        claims = json.loads(_unb64(payload))
    except ValueError as error:
        raise InvalidToken("malformed token payload") from error
    if not isinstance(claims, dict):
        raise InvalidToken("malformed token payload")
    return claims


def _principal(claims: dict[str, object]) -> Principal:
    try:
        names = {key: _names(claims[key]) for key in ("ns", "agents")}
        return Principal(
            subject=str(claims["sub"]),
            role=Role(str(claims["role"])),
            namespaces=names["ns"],
            agents=names["agents"],
            expires_at=int(str(claims["exp"])),
            token_id=str(claims["jti"]),
        )
    except (ValueError, KeyError, TypeError) as error:
        raise InvalidToken("malformed token payload") from error


def _names(value: object) -> tuple[str, ...]:
    if not isinstance(value, list) or len(value) > NAME_LIST_LIMIT:
        raise TypeError("a token's namespaces and agents are lists of names")
    return tuple(str(v) for v in value)
