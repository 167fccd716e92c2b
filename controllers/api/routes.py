"""The route table: what the operator tells the router, per route.

A route is the stable address agents are configured with once (``/openai/<namespace>/<route>/v1``);
normally named after the LearningPolicy (the track), or after the Experiment for a hand-made one. The
operator writes a RouteConfig whenever an Experiment's weights change (Flagger's "set routes"); the
router serves whatever the newest version says. A route with no experiment serves its champion alone.

A RouteConfig is checked in full when it is parsed, so nothing unusable is ever stored: the namespace
is a DNS-1123 label and the name a DNS-1123 subdomain (they are the proxy's path), variant and
experiment names are DNS names (they go into response headers, so no CR/LF, no unicode), and each
endpoint is a plain ``http``/``https`` base URL (``endpoint_shape_problems``). Which hosts an endpoint
may name is the installation's choice, not the config's: ``endpoint_problems`` checks a URL against an
allowlist of host patterns (``host_allowed``), by default in-cluster Service names only.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from controllers.api.common import DNS_LABEL, DNS_SUBDOMAIN

# In-cluster Service names: ``<service>.<namespace>.svc`` and its fully qualified form under the
# default cluster domain. A cluster with another domain adds ``*.svc.<its domain>``. Never bare IPs,
# loopback or link-local (metadata) addresses, and not the Kubernetes API server nor kube-system.
DEFAULT_ALLOWED_HOSTS = (
    "*.svc",
    "*.svc.cluster.local",
    "!kubernetes.default.svc",
    "!kubernetes.default.svc.cluster.local",
    "!*.kube-system.svc",
    "!*.kube-system.svc.cluster.local",
)
EXPERIMENT = r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?/)?" + DNS_SUBDOMAIN[1:]

_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
_NETLOC = re.compile(r"(?P<host>\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+)(:(?P<port>[0-9]{1,5}))?")
_PRINTABLE = re.compile(r"[!-~]*")  # printable ASCII, no spaces or control characters


def experiment_key(namespace: str, name: str) -> str:
    """What an Experiment's traffic is recorded under: ``RouteConfig.experiment`` and its assignments."""
    return f"{namespace}/{name}"


def endpoint_shape_problems(url: str) -> list[str]:
    """What makes ``url`` unusable as an upstream base URL, whatever the allowlist says; [] when fine.

    ``http``/``https`` only, a host (a DNS name in ASCII, an IPv4 address in dotted-quad form or a
    bracketed IPv6 address), no user info, no query, no fragment, a port from 1 to 65535."""
    if not _PRINTABLE.fullmatch(url) or "\\" in url:
        return ["must be printable ASCII without spaces or backslashes (write an IDN host as xn--)"]
    try:
        parts = urlsplit(url)
    except ValueError as error:  # an unclosed "[" in the host
        return [f"not a URL: {error}"]
    if parts.scheme not in ("http", "https"):
        return [f"scheme must be http or https, not {parts.scheme or 'missing'!r}"]
    problems = []
    if "@" in parts.netloc:
        problems.append("must not carry user info (user:password@)")
    if "?" in url:
        problems.append("must not carry a query (?...)")
    if "#" in url:
        problems.append("must not carry a fragment (#...)")
    if problems:
        return problems
    netloc = _NETLOC.fullmatch(parts.netloc)
    if not parts.netloc or netloc is None:
        return [f"needs a host (and an optional numeric port), not {parts.netloc!r}"]
    port = netloc.group("port")
    if port is not None and not 0 < int(port) < 65536:
        return [f"port {port} is out of range (1-65535)"]
    return _host_problems(netloc.group("host"))


def _host_problems(host: str) -> list[str]:
    if host.startswith("["):
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            return [f"{host} is not an IPv6 address"]
        return _address_problems(host, host[1:-1])
    name = host.lower().removesuffix(".")
    labels = name.split(".")
    if re.fullmatch(r"[0-9]+|0x[0-9a-f]*", labels[-1]):  # resolvers read "127.1" or "0x7f.1" as IPs
        if not isinstance(_ip(name), ipaddress.IPv4Address):
            return [f"host {host!r} is neither a DNS name nor a dotted-quad IPv4 address"]
        return _address_problems(host, name)
    if len(name) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        return [f"host {host!r} is not a DNS name (labels of a-z, 0-9 and -, at most 63 each)"]
    return []


def _address_problems(host: str, text: str) -> list[str]:
    address = _ip(text)
    if address is None or address.is_unspecified or address.is_multicast:
        return [f"host {host!r} is not an address a server answers on"]
    return []


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def hostname(url: str) -> str:
    """The host an endpoint that passed ``endpoint_shape_problems`` names: lower case, no brackets."""
    return (urlsplit(url).hostname or "").removesuffix(".")


def parse_host_patterns(text: str) -> tuple[str, ...]:
    """An allowlist as configured: comma-separated patterns; blank is ``DEFAULT_ALLOWED_HOSTS``."""
    patterns = tuple(p.strip() for p in text.split(",") if p.strip())
    return patterns or DEFAULT_ALLOWED_HOSTS


def pattern_problems(patterns: Iterable[str]) -> list[str]:
    """What is wrong with an allowlist: empty entries, or IP entries that are not addresses/networks."""
    problems = []
    for pattern in patterns:
        body = pattern.removeprefix("!").strip("[]")
        if not body:
            problems.append(f"empty host pattern {pattern!r}")
        elif re.fullmatch(r"[0-9a-fA-F:./]+", body) and ("/" in body or ":" in body or body[0].isdigit()):
            try:
                ipaddress.ip_network(body, strict=False)
            except ValueError:
                problems.append(f"{pattern!r} looks like an IP address or network but is not one")
    return problems


def _matches(host: str, pattern: str) -> bool:
    """A glob matches DNS names only; an address or CIDR network matches IP literals inside it."""
    address = _ip(host)
    body = pattern.strip("[]")
    try:
        network = ipaddress.ip_network(body, strict=False)
    except ValueError:
        return address is None and fnmatch.fnmatchcase(host, body.lower())
    return address is not None and address.version == network.version and address in network


def host_allowed(host: str, patterns: Sequence[str]) -> bool:
    """Whether ``host`` matches an allow pattern and no ``!`` (deny) pattern."""
    host = host.lower().strip("[]").removesuffix(".")
    denied = any(_matches(host, p[1:]) for p in patterns if p.startswith("!"))
    return not denied and any(_matches(host, p) for p in patterns if not p.startswith("!"))


def endpoint_problems(url: str, allowed_hosts: Sequence[str]) -> list[str]:
    """Everything that keeps the router from sending traffic to ``url`` here; [] when it may."""
    problems = endpoint_shape_problems(url)
    if problems:
        return problems
    host = hostname(url)
    if not host_allowed(host, allowed_hosts):
        return [f"host {host!r} is not an allowed upstream host (allowed: {', '.join(allowed_hosts)})"]
    return []


class RouteVariant(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1, max_length=63, pattern=DNS_LABEL)
    endpoint: str = Field(
        min_length=1, max_length=512, description="OpenAI-compatible base URL, e.g. http://host/v1"
    )
    model: str | None = Field(
        default=None, max_length=256, description="Model name sent upstream; None keeps the client's"
    )
    weight: int = Field(ge=0, le=100, description="Share of units, in percent")
    champion: bool = False

    @field_validator("endpoint")
    @classmethod
    def _usable_endpoint(cls, endpoint: str) -> str:
        problems = endpoint_shape_problems(endpoint)
        if problems:
            raise ValueError("; ".join(problems))
        return endpoint


class RouteConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    namespace: str = Field(min_length=1, max_length=63, pattern=DNS_LABEL)
    name: str = Field(min_length=1, max_length=253, pattern=DNS_SUBDOMAIN)
    experiment: str | None = Field(
        default=None,
        max_length=317,
        pattern=EXPERIMENT,
        description="Experiment whose statistics this traffic feeds (``<namespace>/<name>`` or a name)",
    )
    unit: str = Field(default="User", pattern="^(User|Session|Request)$")
    variants: list[RouteVariant] = Field(min_length=1, max_length=8)
    timeout_seconds: float = Field(default=60.0, gt=0, le=600)

    @model_validator(mode="after")
    def _one_champion_and_weights_sum_to_100(self) -> RouteConfig:
        champions = [v for v in self.variants if v.champion]
        if len(champions) != 1:
            raise ValueError("a route needs exactly one champion variant")
        if sum(v.weight for v in self.variants) != 100:
            raise ValueError("variant weights must add up to 100")
        if len({v.name for v in self.variants}) != len(self.variants):
            raise ValueError("variant names must be unique")
        return self

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def champion(self) -> RouteVariant:
        return next(v for v in self.variants if v.champion)

    def endpoint_problems(self, allowed_hosts: Sequence[str]) -> list[tuple[str, str]]:
        """(field, problem) for each variant endpoint ``allowed_hosts`` refuses (``variants[1].endpoint``)."""
        return [
            (f"variants[{index}].endpoint", problem)
            for index, variant in enumerate(self.variants)
            for problem in endpoint_problems(variant.endpoint, allowed_hosts)
        ]


def allocation_text(weights: Mapping[str, int]) -> str:
    """The weights a request was assigned by, as its assignment row stores them: '{"a":95,"b":5}'."""
    return json.dumps(dict(sorted(weights.items())), separators=(",", ":"))


def parse_allocation(text: str | None) -> dict[str, int] | None:
    """``allocation_text`` read back; None for a row without one (or one that is not weights)."""
    if not text:
        return None
    try:
        found = json.loads(text)
    except ValueError:
        return None
    if not isinstance(found, dict) or not all(
        isinstance(name, str) and isinstance(weight, int) and weight >= 0 for name, weight in found.items()
    ):
        return None
    return found
