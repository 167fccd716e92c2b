"""A replica's route table: polls apply only where nothing changed locally since they began."""

from __future__ import annotations

import pytest

from controllers.api.routes import RouteConfig
from controllers.gateway.route_table import InvalidRoute, RouteTable

HOSTS = ("a", "b")  # the upstream hosts these tables allow


def config(challenger: int, name: str = "coder") -> RouteConfig:
    return RouteConfig.model_validate(
        {
            "namespace": "team",
            "name": name,
            "experiment": "exp",
            "timeout_seconds": 2,
            "variants": [
                {
                    "name": "champion",
                    "endpoint": "http://a:8000/v1/",
                    "weight": 100 - challenger,
                    "champion": True,
                },
                {"name": "challenger", "endpoint": "http://b:8000/v1", "weight": challenger, "model": "lora"},
            ],
        }
    )


def test_a_route_is_precomputed_for_the_hot_path() -> None:
    table = RouteTable(HOSTS)
    table.put(config(5), 3)
    active = table.get("team/coder")
    assert active is not None
    assert active.weights == (("champion", 95), ("challenger", 5))
    assert str(active.urls[("champion", "chat/completions")]) == "http://a:8000/v1/chat/completions"
    assert str(active.urls[("challenger", "completions")]) == "http://b:8000/v1/completions"
    assert active.timeout == {"connect": 2.0, "read": 2.0, "write": 2.0, "pool": 2.0}
    assert (b"x-kaizen-experiment", b"exp") in active.headers
    assert active.salt == "exp"


def test_a_poll_that_began_before_a_local_put_does_not_roll_it_back() -> None:
    table = RouteTable(HOSTS)
    table.put(config(5), 1)
    based_on = table.versions()
    table.put(config(25), 2)  # this replica answered a PUT while the poll was in flight
    assert table.apply([(config(5), 1)], [], based_on) == (0, [])
    assert table.versions() == {"team/coder": 2}
    assert table.get("team/coder").weights[1] == ("challenger", 25)  # type: ignore[union-attr]


def test_a_poll_adds_changes_and_removes_routes_it_saw_go() -> None:
    table = RouteTable(HOSTS)
    table.put(config(5, "gone"), 4)
    based_on = table.versions()
    assert table.apply([(config(50), 1)], ["team/gone"], based_on) == (2, [])
    assert table.versions() == {"team/coder": 1}
    assert len(table) == 1


def test_the_default_allowlist_refuses_hosts_that_are_not_cluster_services() -> None:
    table = RouteTable()
    with pytest.raises(
        InvalidRoute, match=r"variants\[0\]\.endpoint: host 'a' is not an allowed upstream host"
    ):
        table.put(config(5), 1)
    assert len(table) == 0


def test_a_polled_row_the_allowlist_refuses_is_skipped_and_not_asked_for_again_until_it_changes() -> None:
    table = RouteTable(("a",))  # "b", the challenger's host, is not allowed here
    table.put(config(0, "other").model_copy(update={"variants": config(0).variants[:1]}), 1)
    applied, invalid = table.apply([(config(5), 3)], [], table.versions())
    assert applied == 0
    assert [(key, version) for key, version, _ in invalid] == [("team/coder", 3)]
    assert invalid[0][2].startswith("variants[1].endpoint: host 'b' is not an allowed upstream host")
    assert table.get("team/coder") is None
    assert table.get("team/other") is not None
    assert table.poll_versions() == {"team/other": 1, "team/coder": 3}  # not read again at version 3
    assert table.invalid() == {"team/coder": 3}


def test_an_invalid_newer_version_keeps_the_last_good_one_serving_until_a_good_one_comes() -> None:
    table = RouteTable(HOSTS)
    table.put(config(5), 1)
    based_on = table.versions()
    applied, invalid = table.apply([], [], based_on, [("team/coder", 2, "does not parse")])
    assert (applied, invalid) == (0, [("team/coder", 2, "does not parse")])
    assert table.get("team/coder").version == 1  # type: ignore[union-attr]
    assert table.poll_versions() == {"team/coder": 2}
    assert table.apply([(config(30), 3)], [], table.versions()) == (1, [])
    assert table.invalid() == {}
    assert table.get("team/coder").weights[1] == ("challenger", 30)  # type: ignore[union-attr]


def test_a_removed_invalid_row_is_forgotten() -> None:
    table = RouteTable(HOSTS)
    table.apply([], [], {}, [("team/bad", 1, "does not parse")])
    assert table.poll_versions() == {"team/bad": 1}
    assert table.apply([], ["team/bad"], table.versions()) == (0, [])
    assert table.poll_versions() == {}
