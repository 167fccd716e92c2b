"""Who a caller is and whether it may: Kaizen tokens checked here, ServiceAccount tokens by the API server.

``authenticate`` takes the ``Authorization`` header. A ``kz2.`` token is verified against the keyring
and the revocation list. Anything else, when the gateway is configured for Kubernetes, goes to a
TokenReview, bound to the gateway's audience so that a token minted for the gateway cannot be
replayed against the API server and the reverse. ``authorize`` answers a Kaizen token from its role
(``controllers.decisions.access``), and a Kubernetes identity with a SubjectAccessReview on Kaizen's
RBAC verbs.

Both answers are cached for a short while (by a hash of the token, and by the question), so the
router's hot path does not call the API server per request. Refusals are cached for less time, so
that a RoleBinding someone just added takes effect quickly.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from collections.abc import Hashable
from typing import Any

import httpx

from controllers.api.identity import Principal
from controllers.api.kinds import SUBJECT_ACCESS_REVIEWS, TOKEN_REVIEWS
from controllers.decisions.access import API_GROUP, Action, rbac_attributes, role_refusal
from controllers.gateway import auth
from controllers.runtime.kube import Kube, KubeError

log = logging.getLogger("kaizen.gateway.identity")

AUDIENCE = "kaizen-gateway"
JWT = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
SERVICE_ACCOUNT = re.compile(r"system:serviceaccount:([a-z0-9-]{1,63}):[a-z0-9.-]{1,253}")


class Unauthenticated(Exception):
    """No identity could be established (401); the message says why."""


class Forbidden(Exception):
    """The identity may not do this (403); the message says what would allow it."""


class AuthUnavailable(Exception):
    """The API server could not answer a review (503: retry later)."""


class _Expiring:
    """A small dict whose entries expire; cleared whole when it grows past ``size``."""

    def __init__(self, size: int = 4096) -> None:
        self.size, self._items = size, dict[Hashable, tuple[float, Any]]()

    def get(self, key: Hashable) -> Any:
        found = self._items.get(key)
        if found is None or found[0] <= time.monotonic():
            return None
        return found[1]

    def put(self, key: Hashable, value: Any, seconds: float) -> None:
        if len(self._items) >= self.size:
            self._items.clear()
        self._items[key] = (time.monotonic() + seconds, value)


class Authenticator:
    def __init__(
        self,
        keyring: auth.Keyring | auth.LiveKeyring,
        revocations: auth.Revocations | None = None,
        kube: Kube | None = None,
        audiences: tuple[str, ...] = (AUDIENCE,),
        allow_seconds: float = 30.0,
        deny_seconds: float = 3.0,
    ) -> None:
        self.keyring, self.revocations, self.kube, self.audiences = keyring, revocations, kube, audiences
        self.allow_seconds, self.deny_seconds = allow_seconds, deny_seconds
        self._tokens, self._decisions = _Expiring(), _Expiring()

    async def close(self) -> None:
        if self.kube is not None:
            await self.kube.close()

    async def authenticate(self, header: str | None) -> Principal:
        token = header[7:].strip() if header and header[:7].lower() == "bearer " else None
        try:
            if not token or token.startswith(("kz1.", f"{auth.PREFIX}.")) or self.kube is None:
                return self._kaizen(token)
        except auth.InvalidToken as error:
            raise Unauthenticated(str(error)) from error
        return await self._kubernetes(token)

    async def authorize(
        self, principal: Principal, action: Action, namespace: str, name: str | None = None
    ) -> None:
        if not principal.from_kubernetes:
            reason = role_refusal(principal, action, namespace, name)
            if reason is not None:
                raise Forbidden(reason)
            return
        attributes = rbac_attributes(action, namespace, name)
        key = (principal.subject, principal.groups, tuple(sorted(attributes.items())))
        allowed = self._decisions.get(key)
        if allowed is None:
            allowed = await self._review_access(principal, attributes)
            self._decisions.put(key, allowed, self.allow_seconds if allowed else self.deny_seconds)
        if not allowed:
            target = f"{action.resource}/{name}" if name else action.resource
            raise Forbidden(
                f"{principal.subject} may not {action.verb} {target} in namespace {namespace!r}: grant verb "
                f"{action.verb!r} on resource {action.resource!r} of API group {API_GROUP} (Kubernetes RBAC)"
            )

    def _kaizen(self, token: str | None) -> Principal:
        cached: Principal | None = self._tokens.get(token) if token else None
        if cached is not None and (cached.expires_at or 0) > time.time():
            if self.revocations is not None and self.revocations.revoked(cached):
                raise auth.InvalidToken(f"token {cached.token_id} has been revoked")
            return cached
        keys = self.keyring.current() if isinstance(self.keyring, auth.LiveKeyring) else self.keyring
        principal = auth.verify(keys, token, revocations=self.revocations)
        self._tokens.put(token, principal, self.allow_seconds)
        return principal

    async def _kubernetes(self, token: str) -> Principal:
        if len(token) > auth.MAX_TOKEN_LENGTH or not JWT.fullmatch(token):
            raise Unauthenticated("malformed token: neither a Kaizen token (kz2.) nor a ServiceAccount token")
        digest = hashlib.sha256(token.encode()).hexdigest()
        cached: Principal | None = self._tokens.get(digest)
        if cached is not None:
            return cached
        status = await self._review(
            TOKEN_REVIEWS,
            {"kind": "TokenReview", "spec": {"token": token, "audiences": list(self.audiences)}},
        )
        if not status.get("authenticated"):
            raise Unauthenticated(
                f"ServiceAccount token refused by the API server: {status.get('error') or 'not authenticated'}"
            )
        user = status.get("user", {})
        username = str(user.get("username", ""))
        home = SERVICE_ACCOUNT.fullmatch(username)
        principal = Principal(
            subject=username,
            role=None,
            namespaces=(home.group(1),) if home else (),
            groups=tuple(str(g) for g in user.get("groups", [])),
            uid=str(user.get("uid", "")),
        )
        self._tokens.put(digest, principal, self.allow_seconds)
        return principal

    async def _review_access(self, principal: Principal, attributes: dict[str, str]) -> bool:
        spec = {"user": principal.subject, "groups": list(principal.groups), "resourceAttributes": attributes}
        if principal.uid:
            spec["uid"] = principal.uid
        status = await self._review(SUBJECT_ACCESS_REVIEWS, {"kind": "SubjectAccessReview", "spec": spec})
        return bool(status.get("allowed")) and not status.get("denied")

    async def _review(self, resource: Any, body: dict[str, Any]) -> dict[str, Any]:
        assert self.kube is not None
        body = {"apiVersion": f"{resource.group}/{resource.version}", **body}
        try:
            answer = await self.kube.create(resource, body)
        except (KubeError, httpx.HTTPError) as error:
            log.warning("%s failed: %s", body["kind"], error)
            raise AuthUnavailable(
                f"the Kubernetes API server could not review the caller ({body['kind']}): retry later"
            ) from error
        status: dict[str, Any] = answer.get("status", {})
        return status
