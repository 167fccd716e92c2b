"""Which replicas of a shared base load or unload an adapter: read from EndpointSlices and /v1/models."""

from __future__ import annotations

from controllers.decisions.lora import loaded_adapters, plan_adapter, plan_removal, replica_urls


def _slice(port: int, *addresses: str, ready: bool = True, name: str = "http") -> dict[str, object]:
    return {
        "addressType": "IPv4",
        "endpoints": [{"addresses": [a], "conditions": {"ready": ready}} for a in addresses],
        "ports": [{"name": name, "port": port}],
    }


def test_replicas_are_the_ready_endpoints_of_every_slice() -> None:
    slices = [
        _slice(8080, "10.0.0.1", "10.0.0.2"),
        _slice(9000, "10.0.0.3"),
        _slice(8080, "10.0.0.9", ready=False),
    ]
    assert replica_urls(slices) == ["http://10.0.0.1:8080", "http://10.0.0.2:8080", "http://10.0.0.3:9000"]


def test_a_slice_without_the_http_port_names_no_replica() -> None:
    assert replica_urls([_slice(9090, "10.0.0.1", name="metrics")]) == []


def test_the_base_model_is_not_an_adapter() -> None:
    models = {"data": [{"id": "qwen", "root": "/mnt/models"}, {"id": "coder-1", "root": "s3://b/r1/adapter"}]}
    assert loaded_adapters(models, "qwen") == {"coder-1": "s3://b/r1/adapter"}


def test_a_missing_adapter_is_loaded_only_where_it_is_missing() -> None:
    listings = {"r1": {"coder-1": "s3://b/1"}, "r2": {}}
    todo = plan_adapter(listings, "coder-1", "s3://b/1")
    assert todo.unload == ()
    assert todo.load == ("r2",)
    assert not todo.in_place
    assert plan_adapter({"r1": {"coder-1": "s3://b/1"}}, "coder-1", "s3://b/1").in_place


def test_another_version_under_the_name_is_unloaded_before_the_new_one_loads() -> None:
    todo = plan_adapter({"r1": {"coder-1": "s3://b/old"}}, "coder-1", "s3://b/new")
    assert todo.unload == ("r1",)
    assert todo.load == ("r1",)


def test_removal_asks_only_the_replicas_that_list_the_name() -> None:
    assert plan_removal({"r1": {"coder-1": "x"}, "r2": {"coder-2": "y"}}, "coder-1") == ("r1",)
