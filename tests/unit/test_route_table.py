"""A replica's route table: polls apply only where nothing changed locally since they began."""

from __future__ import annotations

from controllers.api.routes import RouteConfig
from controllers.gateway.route_table import RouteTable


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
    table = RouteTable()
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
    table = RouteTable()
    table.put(config(5), 1)
    based_on = table.versions()
    table.put(config(25), 2)  # this replica answered a PUT while the poll was in flight
    assert table.apply([(config(5), 1)], [], based_on) == 0
    assert table.versions() == {"team/coder": 2}
    assert table.get("team/coder").weights[1] == ("challenger", 25)  # type: ignore[union-attr]


def test_a_poll_adds_changes_and_removes_routes_it_saw_go() -> None:
    table = RouteTable()
    table.put(config(5, "gone"), 4)
    based_on = table.versions()
    assert table.apply([(config(50), 1)], ["team/gone"], based_on) == 2
    assert table.versions() == {"team/coder": 1}
    assert len(table) == 1
