"""Setting routes on the router (the gateway): Flagger's "set routes", over the gateway's HTTP API.

The operator owns the weights; the router serves whatever the newest RouteConfig says. PUT is
idempotent (the same config gives the same version), so a reconcile may repeat it freely.

The operator calls as its ServiceAccount: ``token_file`` is a projected token bound to the gateway's
audience. The kubelet rotates it in place, so it is read again on every call.
"""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path

import httpx

from controllers.api.routes import RouteConfig


class RouterError(RuntimeError):
    pass


class TokenFile(httpx.Auth):
    """A bearer token read from a file on every request (a projected ServiceAccount token rotates)."""

    def __init__(self, path: str) -> None:
        self.path = Path(path)

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self.path.read_text().strip()}"
        yield request


class RouterClient:
    def __init__(self, base_url: str, token: str = "", timeout: float = 5.0, token_file: str = "") -> None:
        headers = {"Authorization": f"Bearer {token}"} if token and not token_file else {}
        auth = TokenFile(token_file) if token_file else None
        self._client = httpx.AsyncClient(base_url=base_url, headers=headers, auth=auth, timeout=timeout)

    async def close(self) -> None:
        await self._client.aclose()

    async def put(self, route: RouteConfig) -> None:
        try:
            response = await self._client.put(
                f"/v1/routes/{route.namespace}/{route.name}", json=route.model_dump(mode="json")
            )
        except httpx.HTTPError as error:
            raise RouterError(f"router unreachable at {self._client.base_url}: {error}") from error
        if response.status_code >= 300:
            raise RouterError(
                f"router refused route {route.key}: {response.status_code} {response.text[:300]}"
            )

    async def get(self, namespace: str, name: str) -> RouteConfig | None:
        """The route as the router stores it (the gateway answers ``{"version": n, "config": {...}}``)."""
        response = await self._client.get(f"/v1/routes/{namespace}/{name}")
        if response.status_code == 404:
            return None
        if response.status_code >= 300:
            raise RouterError(f"router: {response.status_code} {response.text[:300]}")
        return RouteConfig.model_validate(response.json()["config"])
