"""Bearer tokens for the gateway: HMAC-signed, self-contained, with an expiry.

A token is ``kz1.<payload>.<signature>`` where the payload (base64url JSON) names the subject and
the expiry, and the signature is HMAC-SHA256 over it with the gateway's secret. No token table:
rotating the secret revokes every token; short expiries bound the damage of a leaked one.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from dataclasses import dataclass

PREFIX = "kz1"


class InvalidToken(Exception):
    """The token is missing, malformed, forged or expired; the message says which."""


@dataclass(frozen=True)
class Principal:
    subject: str
    expires_at: int


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _sign(secret: str, payload: str) -> str:
    return _b64(hmac.new(secret.encode(), f"{PREFIX}.{payload}".encode(), hashlib.sha256).digest())


def issue(secret: str, subject: str, ttl_seconds: int, now: float | None = None) -> str:
    if not secret:
        raise ValueError("the token secret is empty")
    expires = int((now if now is not None else time.time()) + ttl_seconds)
    payload = _b64(json.dumps({"sub": subject, "exp": expires}, separators=(",", ":")).encode())
    return f"{PREFIX}.{payload}.{_sign(secret, payload)}"


def verify(secret: str, token: str | None, now: float | None = None) -> Principal:
    if not token:
        raise InvalidToken("missing bearer token; send 'Authorization: Bearer <token>' (kaizen token create)")
    parts = token.split(".")
    if len(parts) != 3 or parts[0] != PREFIX:
        raise InvalidToken("malformed token; expected kz1.<payload>.<signature>")
    if not hmac.compare_digest(_sign(secret, parts[1]), parts[2]):
        raise InvalidToken("invalid token signature")
    try:
        claims = json.loads(_unb64(parts[1]))
        subject, expires = str(claims["sub"]), int(claims["exp"])
    except (ValueError, KeyError, TypeError) as error:
        raise InvalidToken("malformed token payload") from error
    if expires <= (now if now is not None else time.time()):
        raise InvalidToken("token expired; issue a new one with `kaizen token create`")
    return Principal(subject, expires)
