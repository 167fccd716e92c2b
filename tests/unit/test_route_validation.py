"""A route is checked in full before it is stored: names, endpoint shapes, and the host allowlist."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from controllers.api.routes import (
    DEFAULT_ALLOWED_HOSTS,
    RouteConfig,
    endpoint_problems,
    endpoint_shape_problems,
    host_allowed,
    parse_host_patterns,
    pattern_problems,
)

LOOPBACK = ("127.0.0.1",)


def body(**changes: Any) -> dict[str, Any]:
    variant = changes.pop("variant", {})
    return {
        "namespace": "team",
        "name": "coder",
        "experiment": "team/coder-exp",
        "variants": [
            {"name": "champion", "endpoint": "http://a.team.svc/v1", "weight": 90, "champion": True},
            {"name": "challenger", "endpoint": "http://b.team.svc/v1", "weight": 10, **variant},
        ],
        **changes,
    }


def refusal(document: dict[str, Any]) -> list[tuple[str, str]]:
    with pytest.raises(ValidationError) as caught:
        RouteConfig.model_validate(document)
    return [(".".join(str(part) for part in error["loc"]), error["msg"]) for error in caught.value.errors()]


def test_a_well_formed_route_parses() -> None:
    config = RouteConfig.model_validate(body())
    assert config.key == "team/coder"
    assert config.endpoint_problems(DEFAULT_ALLOWED_HOSTS) == []


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"namespace": "Team"}, "namespace"),
        ({"namespace": "te.am"}, "namespace"),
        ({"namespace": "team\r\nx-evil: 1"}, "namespace"),
        ({"name": "Coder"}, "name"),
        ({"name": "cöder"}, "name"),
        ({"name": "coder\n"}, "name"),
        ({"experiment": "exp\r\nSet-Cookie: a=b"}, "experiment"),
        ({"experiment": "Exp"}, "experiment"),
        ({"experiment": "tëam/exp"}, "experiment"),
        ({"experiment": "a/b/c"}, "experiment"),
        ({"variant": {"name": "chal\r\nlenger"}}, "variants.1.name"),
        ({"variant": {"name": "Challenger"}}, "variants.1.name"),
        ({"variant": {"name": "chällenger"}}, "variants.1.name"),
        ({"variant": {"name": "chal.lenger"}}, "variants.1.name"),
    ],
)
def test_names_that_are_not_dns_names_are_refused(changes: dict[str, Any], field: str) -> None:
    assert [loc for loc, _ in refusal(body(**changes))] == [field]


@pytest.mark.parametrize("experiment", ["exp", "team/coder-exp", "team/coder.exp-2", None])
def test_experiment_names_are_a_name_or_a_namespaced_name(experiment: str | None) -> None:
    assert RouteConfig.model_validate(body(experiment=experiment)).experiment == experiment


@pytest.mark.parametrize(
    ("endpoint", "problem"),
    [
        ("::::", "scheme must be http or https"),
        ("file:///etc/passwd", "scheme must be http or https, not 'file'"),
        ("gopher://x.svc/", "scheme must be http or https"),
        ("http://user:pw@x.svc/v1", "user info"),
        ("http://x.svc/v1?api-key=1", "query"),
        ("http://x.svc/v1?", "query"),
        ("http://x.svc/v1#top", "fragment"),
        ("http://", "needs a host"),
        ("http:///v1", "needs a host"),
        ("http://x.svc:99999/v1", "port 99999 is out of range"),
        ("http://x.svc:0/v1", "port 0 is out of range"),
        ("http://x.svc:http/v1", "needs a host"),
        ("http://[::1/v1", "not a URL"),
        ("http://[fe80::1%25eth0]/v1", "needs a host"),
        ("http://[zz::1]/v1", "not a URL"),
        ("http://bücher.team.svc/v1", "write an IDN host as xn--"),
        ("http://x.svc/v 1", "without spaces"),
        ("http://x.svc/v1\r\n", "printable ASCII"),
        ("http://x.svc\\@evil.example/", "backslashes"),
        ("http://under_score.svc/v1", "needs a host"),
        ("http://-x.svc/v1", "is not a DNS name"),
        ("http://x..svc/v1", "is not a DNS name"),
        ("http://127.1/v1", "neither a DNS name nor a dotted-quad"),
        ("http://0x7f.0.0.1/v1", "neither a DNS name nor a dotted-quad"),
        ("http://2130706433/v1", "neither a DNS name nor a dotted-quad"),
        ("http://0.0.0.0:8080/v1", "not an address a server answers on"),
        ("http://[::]:8080/v1", "not an address a server answers on"),
    ],
)
def test_endpoints_that_are_not_plain_http_base_urls_are_refused(endpoint: str, problem: str) -> None:
    problems = endpoint_shape_problems(endpoint)
    assert len(problems) == 1
    assert problem in problems[0]
    assert endpoint_problems(endpoint, ("*",)) == problems  # no allowlist lets them through
    assert refusal(body(variant={"endpoint": endpoint}))[0][0] == "variants.1.endpoint"


@pytest.mark.parametrize(
    ("endpoint", "allowed_by_default", "allowed_on_loopback"),
    [
        ("http://model.ns.svc.cluster.local:8080/v1", True, False),
        ("http://model-predictor.ns.svc/openai/v1", True, False),
        ("https://MODEL.NS.SVC.cluster.local/v1", True, False),
        ("http://model.ns.svc.cluster.local./v1", True, False),
        ("http://xn--bcher-kva.ns.svc/v1", True, False),  # an IDN host in its ASCII form
        ("http://127.0.0.1:8080/v1", False, True),
        ("http://[::ffff:127.0.0.1]:8080/v1", False, True),  # the same address, IPv6-mapped
        ("http://[::1]:8080/v1", False, False),
        ("http://169.254.169.254/latest/meta-data/", False, False),
        ("http://[fd00:ec2::254]/", False, False),
        ("http://localhost:8080/v1", False, False),
        ("http://metadata.google.internal/", False, False),
        ("http://metadata/", False, False),
        ("http://model.ns/v1", False, False),
        ("http://evil.example/v1", False, False),
        ("http://x.svc.evil.example/v1", False, False),
        ("https://kubernetes.default.svc/api", False, False),
        ("https://kubernetes.default.svc.cluster.local/api", False, False),
        ("http://kube-dns.kube-system.svc.cluster.local:53/", False, False),
    ],
)
def test_the_allowlist_decides_which_hosts_a_route_may_reach(
    endpoint: str, allowed_by_default: bool, allowed_on_loopback: bool
) -> None:
    assert endpoint_shape_problems(endpoint) == []
    by_default = endpoint_problems(endpoint, DEFAULT_ALLOWED_HOSTS)
    assert (by_default == []) is allowed_by_default
    if not allowed_by_default:
        assert "is not an allowed upstream host" in by_default[0]
        assert "*.svc.cluster.local" in by_default[0]
    assert (endpoint_problems(endpoint, LOOPBACK) == []) is allowed_on_loopback


@pytest.mark.parametrize(
    ("host", "patterns", "allowed"),
    [
        ("10.1.2.3", ("10.0.0.0/8",), True),
        ("10.1.2.3", ("10.*",), False),  # globs match DNS names, never IP literals
        ("10.evil.example", ("10.0.0.0/8",), False),  # networks match IP literals, never names
        ("::1", ("::1",), True),
        ("::1", ("[::1]",), True),
        ("model.ns.svc", ("*.svc", "!*.ns.svc"), False),
        ("model.other.svc", ("*.svc", "!*.ns.svc"), True),
        ("anything.example", ("*",), True),
        ("127.0.0.1", ("*",), False),
        ("model.ns.svc", (), False),
    ],
)
def test_host_patterns(host: str, patterns: tuple[str, ...], allowed: bool) -> None:
    assert host_allowed(host, patterns) is allowed


def test_the_setting_is_read_as_comma_separated_patterns_and_checked() -> None:
    assert parse_host_patterns(" 127.0.0.1 , *.svc,, ") == ("127.0.0.1", "*.svc")
    assert parse_host_patterns("") == DEFAULT_ALLOWED_HOSTS
    assert pattern_problems(DEFAULT_ALLOWED_HOSTS) == []
    assert pattern_problems(("10.0.0.0/8", "::1", "!*.kube-system.svc")) == []
    assert pattern_problems(("10.0.0", "!", "300.1.1.1")) == [
        "'10.0.0' looks like an IP address or network but is not one",
        "empty host pattern '!'",
        "'300.1.1.1' looks like an IP address or network but is not one",
    ]


def test_a_refused_endpoint_names_its_field() -> None:
    config = RouteConfig.model_validate(body(variant={"endpoint": "http://127.0.0.1:8080/v1"}))
    problems = config.endpoint_problems(DEFAULT_ALLOWED_HOSTS)
    assert [field for field, _ in problems] == ["variants[1].endpoint"]
    assert config.endpoint_problems(("*.svc", "127.0.0.1")) == []
