"""Bad values fail at install time with a message that names the value, before anything is applied."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import helm_python as helm
import pytest

from tests.chart.chart import CHART_DIR, ci_values, merged, render

CASES: dict[str, tuple[dict[str, Any], str]] = {
    "wrong type": ({"operator": {"replicas": "two"}}, "at '/operator/replicas': got string, want integer"),
    "negative replicas": ({"gateway": {"replicas": -1}}, "at '/gateway/replicas': minimum: got -1, want 0"),
    "unknown top-level key": ({"replicaCount": 3}, "additional properties 'replicaCount' not allowed"),
    "misspelt nested key": (
        {"operator": {"watchNamespace": ["a"]}},
        "at '/operator': additional properties 'watchNamespace' not allowed",
    ),
    "invalid namespace name": (
        {"operator": {"watchNamespaces": ["Team_A"]}},
        "at '/operator/watchNamespaces/0'",
    ),
    "unknown pull policy": ({"image": {"pullPolicy": "Sometimes"}}, "at '/image/pullPolicy'"),
    "port out of range": ({"gateway": {"service": {"port": 70000}}}, "at '/gateway/service/port': maximum"),
    "malformed digest": ({"image": {"digest": "latest"}}, "at '/image/digest'"),
    "wildcard widget origin": ({"gateway": {"widgetOrigins": ["*"]}}, "at '/gateway/widgetOrigins/0'"),
    "widget origin with a path": (
        {"gateway": {"widgetOrigins": ["https://app.example.com/"]}},
        "at '/gateway/widgetOrigins/0'",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_invalid_values_are_rejected_by_the_schema_naming_the_value(case: str) -> None:
    values, message = CASES[case]
    with pytest.raises(helm.HelmValuesError) as rejected:
        render(merged(ci_values("default"), values))
    assert "values don't meet the specifications of the schema" in str(rejected.value)
    assert message in str(rejected.value)


def test_missing_database_secret_fails_with_what_to_do() -> None:
    with pytest.raises(helm.HelmRenderError) as rejected:
        render({})
    message = str(rejected.value)
    assert "database.existingSecret is required" in message
    assert "kubectl create secret generic" in message
    assert "database.embedded=true" in message


def test_embedded_mode_refuses_a_second_operator_replica() -> None:
    with pytest.raises(
        helm.HelmRenderError, match=r"operator\.replicas must be 1 when database\.embedded=true"
    ):
        render(merged(ci_values("embedded"), {"operator": {"replicas": 2}}))


def test_schema_declares_every_key_of_values_yaml_with_a_description() -> None:
    with helm.Chart.load(CHART_DIR) as chart:
        defaults, schema = chart.values, chart.schema
    assert schema is not None
    assert schema["additionalProperties"] is False
    undeclared = list(_undeclared(defaults, schema, ""))
    assert not undeclared, f"values.yaml keys missing from values.schema.json: {undeclared}"


def _undeclared(values: dict[str, Any], schema: dict[str, Any], path: str) -> Iterator[str]:
    properties = schema.get("properties")
    if properties is None:  # a free-form object (resources, affinity, ...): Kubernetes checks it
        return
    for key, value in values.items():
        child = properties.get(key)
        if child is None or not child.get("description"):
            yield f"{path}.{key}"
        elif isinstance(value, dict):
            yield from _undeclared(value, child, f"{path}.{key}")
