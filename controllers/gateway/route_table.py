"""The routes one gateway replica serves, held in memory and precomputed for the hot path.

The store is the source of truth (every replica polls it); this table is a replica's copy. Each
``ActiveRoute`` carries what the proxy needs per request already built: the weights as tuples, the
upstream URLs, the timeout, the response headers naming the experiment.

Updates are compare-and-set on the version a poll was based on: if this replica stored a newer
version itself (a PUT it answered) while a poll was in flight, the poll's older answer is ignored and
the next poll settles it, so a route never flaps back to an older config.

A stored config this replica cannot serve (a row that does not parse, or an endpoint host outside the
installation's allowlist) is skipped: the route keeps its last good version, if it had one, and the
bad row's version is remembered so the next polls do not read it again until it changes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import httpx

from controllers.api.routes import DEFAULT_ALLOWED_HOSTS, RouteConfig, RouteVariant, allocation_text

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
    allocation: str  # the weights, as every assignment row under this version records them

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
            allocation=allocation_text({v.name: v.weight for v in config.variants}),
        )


Invalid = tuple[str, int, str]  # (route key, version, why it cannot be served)


class InvalidRoute(ValueError):
    """A config this replica cannot serve: a host the allowlist refuses, or a URL httpx cannot build."""


class RouteTable:
    """A replica's routes, and the versions of stored rows it could not serve (not asked for again)."""

    def __init__(self, allowed_hosts: Sequence[str] = DEFAULT_ALLOWED_HOSTS) -> None:
        self.allowed_hosts = tuple(allowed_hosts)
        self._routes: dict[str, ActiveRoute] = {}
        self._invalid: dict[str, int] = {}

    def get(self, key: str) -> ActiveRoute | None:
        return self._routes.get(key)

    def versions(self) -> dict[str, int]:
        return {key: route.version for key, route in self._routes.items()}

    def poll_versions(self) -> dict[str, int]:
        """What a poll should ask about: the versions served, overlaid by those known to be invalid."""
        return {**self.versions(), **self._invalid}

    def invalid(self) -> dict[str, int]:
        return dict(self._invalid)

    def __len__(self) -> int:
        return len(self._routes)

    def build(self, config: RouteConfig, version: int) -> ActiveRoute:
        """The route ready to serve; ``InvalidRoute`` when the allowlist refuses an endpoint."""
        problems = [f"{field}: {problem}" for field, problem in config.endpoint_problems(self.allowed_hosts)]
        if problems:
            raise InvalidRoute("; ".join(problems))
        try:
            return ActiveRoute.build(config, version)
        except (ValueError, httpx.InvalidURL) as error:
            raise InvalidRoute(str(error)) from error

    def put(self, config: RouteConfig, version: int) -> None:
        """What this replica just stored: take it as it is."""
        self._routes[config.key] = self.build(config, version)
        self._invalid.pop(config.key, None)

    def remove(self, key: str) -> None:
        self._routes.pop(key, None)
        self._invalid.pop(key, None)

    def apply(
        self,
        changed: list[tuple[RouteConfig, int]],
        removed: list[str],
        based_on: Mapping[str, int],
        invalid: Sequence[Invalid] = (),
    ) -> tuple[int, list[Invalid]]:
        """Apply a poll's answer where nothing changed here since the poll began: (updates made, rows
        newly found invalid). An invalid row is skipped: the route keeps its last good version, if any."""
        applied, refused = 0, list(invalid)
        for config, version in changed:
            if self._unchanged(config.key, based_on):
                try:
                    self._routes[config.key] = self.build(config, version)
                except InvalidRoute as error:
                    refused.append((config.key, version, str(error)))
                    continue
                self._invalid.pop(config.key, None)
                applied += 1
        for key in removed:
            self._invalid.pop(key, None)
            current = self._routes.get(key)
            if current is not None and current.version == based_on.get(key):
                del self._routes[key]
                applied += 1
        refused = [entry for entry in refused if self._unchanged(entry[0], based_on)]
        self._invalid.update({key: version for key, version, _ in refused})
        return applied, refused

    def _unchanged(self, key: str, based_on: Mapping[str, int]) -> bool:
        current = self._routes.get(key)
        return (current.version if current else None) == based_on.get(key)
