"""The routes one gateway replica serves, held in memory and precomputed for the hot path.

The store is the source of truth (every replica polls it); this table is a replica's copy. Each
``ActiveRoute`` carries what the proxy needs per request already built: the weights as tuples, the
upstream URLs, the timeout, the response headers naming the experiment.

Updates are compare-and-set on the version a poll was based on: if this replica stored a newer
version itself (a PUT it answered) while a poll was in flight, the poll's older answer is ignored and
the next poll settles it, so a route never flaps back to an older config.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import httpx

from controllers.api.routes import RouteConfig, RouteVariant

PATHS = ("chat/completions", "completions")
CONNECT_TIMEOUT = 3.0


@dataclass(frozen=True)
class ActiveRoute:
    config: RouteConfig
    version: int
    weights: tuple[tuple[str, int], ...]
    variants: dict[str, RouteVariant]
    champion: RouteVariant
    salt: str  # what unit hashes are keyed by: the experiment, else the route itself
    timeout: dict[str, float | None]  # httpcore's per-request timeout extension
    urls: dict[tuple[str, str], httpx.URL]  # (variant, path) -> upstream URL
    headers: tuple[tuple[bytes, bytes], ...]  # response headers every answer on this route carries

    @classmethod
    def build(cls, config: RouteConfig, version: int) -> ActiveRoute:
        seconds = config.timeout_seconds
        headers = [(b"x-kaizen-route-version", str(version).encode())]
        if config.experiment:
            headers.append((b"x-kaizen-experiment", config.experiment.encode()))
        return cls(
            config=config,
            version=version,
            weights=tuple((v.name, v.weight) for v in config.variants),
            variants={v.name: v for v in config.variants},
            champion=config.champion,
            salt=config.experiment or config.key,
            timeout=httpx.Timeout(seconds, connect=min(seconds, CONNECT_TIMEOUT)).as_dict(),
            urls={
                (v.name, path): httpx.URL(f"{v.endpoint.rstrip('/')}/{path}")
                for v in config.variants
                for path in PATHS
            },
            headers=tuple(headers),
        )


class RouteTable:
    def __init__(self) -> None:
        self._routes: dict[str, ActiveRoute] = {}

    def get(self, key: str) -> ActiveRoute | None:
        return self._routes.get(key)

    def versions(self) -> dict[str, int]:
        return {key: route.version for key, route in self._routes.items()}

    def __len__(self) -> int:
        return len(self._routes)

    def put(self, config: RouteConfig, version: int) -> None:
        """What this replica just stored: take it as it is."""
        self._routes[config.key] = ActiveRoute.build(config, version)

    def remove(self, key: str) -> None:
        self._routes.pop(key, None)

    def apply(
        self,
        changed: list[tuple[RouteConfig, int]],
        removed: list[str],
        based_on: Mapping[str, int],
    ) -> int:
        """Apply a poll's answer where nothing changed here since the poll began; returns updates made."""
        applied = 0
        for config, version in changed:
            current = self._routes.get(config.key)
            if (current.version if current else None) == based_on.get(config.key):
                self._routes[config.key] = ActiveRoute.build(config, version)
                applied += 1
        for key in removed:
            current = self._routes.get(key)
            if current is not None and current.version == based_on.get(key):
                del self._routes[key]
                applied += 1
        return applied
