"""API conventions, checked over the generated schemas rather than trusted to review."""

from __future__ import annotations

import re

import pytest

from controllers.api.common import CATEGORY, GROUP, VERSION
from tests.schemas import load_crds, root_schema, walk

CRDS = load_crds()
KINDS = sorted(CRDS)
STRUCTURAL_META = {"apiVersion", "kind", "metadata"}


def nodes(kind: str):
    for path, node in walk(root_schema(CRDS[kind])):
        if path.split(".")[0] in STRUCTURAL_META or path == "":
            continue
        yield path, node


def test_there_are_four_kinds_in_one_group() -> None:
    assert KINDS == ["Experiment", "LearningPolicy", "ShadowModel", "TrainingRun"]
    for crd in CRDS.values():
        assert crd["spec"]["group"] == GROUP
        assert crd["spec"]["scope"] == "Namespaced"
        assert [v["name"] for v in crd["spec"]["versions"]] == [VERSION]
        assert crd["spec"]["names"]["categories"] == [CATEGORY]
        assert crd["spec"]["names"]["shortNames"]


@pytest.mark.parametrize("kind", KINDS)
def test_status_is_a_subresource_with_conditions_as_a_list_map(kind: str) -> None:
    version = CRDS[kind]["spec"]["versions"][0]
    assert version["subresources"] == {"status": {}}
    status = root_schema(CRDS[kind])["properties"]["status"]["properties"]
    assert status["observedGeneration"]["type"] == "integer"
    conditions = status["conditions"]
    assert conditions["x-kubernetes-list-type"] == "map"
    assert conditions["x-kubernetes-list-map-keys"] == ["type"]
    item = conditions["items"]
    assert set(item["required"]) >= {"type", "status", "reason", "lastTransitionTime"}
    assert item["properties"]["status"]["enum"] == ["True", "False", "Unknown"]
    assert "observedGeneration" in item["properties"]


@pytest.mark.parametrize("kind", KINDS)
def test_no_phase_field_anywhere(kind: str) -> None:
    assert not [path for path, _ in nodes(kind) if path.rsplit(".", 1)[-1].lower() == "phase"]


@pytest.mark.parametrize("kind", KINDS)
def test_every_field_is_described(kind: str) -> None:
    undescribed = [
        path for path, node in nodes(kind) if not path.endswith(("[]", "{}")) and not node.get("description")
    ]
    assert not undescribed, f"{kind}: fields without a description: {undescribed}"


@pytest.mark.parametrize("kind", KINDS)
def test_every_string_list_and_map_is_bounded(kind: str) -> None:
    unbounded = []
    for path, node in nodes(kind):
        kind_of = node.get("type")
        if kind_of == "string" and not (
            "maxLength" in node or "enum" in node or node.get("format") == "date-time"
        ):
            unbounded.append(path)
        if kind_of == "array" and "maxItems" not in node:
            unbounded.append(path)
        if kind_of == "object" and "additionalProperties" in node and "maxProperties" not in node:
            unbounded.append(path)
    assert not unbounded, f"{kind}: unbounded fields: {unbounded}"


@pytest.mark.parametrize("kind", KINDS)
def test_every_spec_number_has_a_range(kind: str) -> None:
    open_ended = [
        path
        for path, node in nodes(kind)
        if path.startswith("spec")
        and node.get("type") in ("integer", "number")
        and not (
            ("minimum" in node or "exclusiveMinimum" in node)
            and ("maximum" in node or "exclusiveMaximum" in node)
        )
    ]
    assert not open_ended, f"{kind}: spec numbers without a range: {open_ended}"


@pytest.mark.parametrize("kind", KINDS)
def test_schema_is_structural(kind: str) -> None:
    # Structural: every node has a type, no $ref or unions survive, no nulls.
    for path, node in nodes(kind):
        assert "type" in node, f"{kind}.{path} has no type"
        for key in ("$ref", "anyOf", "oneOf", "allOf", "title", "nullable"):
            assert key not in node, f"{kind}.{path} carries {key}"
        assert node.get("default", 0) is not None, f"{kind}.{path} has a null default"


@pytest.mark.parametrize("kind", KINDS)
def test_names_are_camel_case_on_the_wire(kind: str) -> None:
    for path, _ in nodes(kind):
        leaf = path.rsplit(".", 1)[-1].rstrip("[]{}")
        assert re.fullmatch(r"[a-z][A-Za-z0-9]*", leaf), f"{kind}.{path}"


@pytest.mark.parametrize("kind", KINDS)
def test_printer_columns_show_ready_reason_and_age(kind: str) -> None:
    columns = {c["name"]: c for c in CRDS[kind]["spec"]["versions"][0]["additionalPrinterColumns"]}
    assert columns["Ready"]["jsonPath"] == '.status.conditions[?(@.type=="Ready")].status'
    assert columns["Reason"]["jsonPath"] == '.status.conditions[?(@.type=="Ready")].reason'
    assert columns["Age"]["type"] == "date"


def test_kind_specific_columns_a_person_on_call_needs() -> None:
    def names(kind: str) -> list[str]:
        return [c["name"] for c in CRDS[kind]["spec"]["versions"][0]["additionalPrinterColumns"]]

    assert "Champion" in names("LearningPolicy")
    assert "Decision" in names("Experiment")
    columns = {c["name"]: c for c in CRDS["Experiment"]["spec"]["versions"][0]["additionalPrinterColumns"]}
    assert columns["Share"]["jsonPath"] == ".status.challengerWeight"  # percent, not the step's index
    assert "Step" not in columns
    assert "Role" in names("ShadowModel")
    assert "Accuracy" in names("TrainingRun")


def test_spec_defaults_are_in_the_schema() -> None:
    training = root_schema(CRDS["LearningPolicy"])["properties"]["spec"]["properties"]["training"][
        "properties"
    ]
    assert training["method"]["default"] == "DPO"
    assert training["lora"]["default"] == {}
    assert training["lora"]["properties"]["rank"]["default"] == 16
    assert training["lora"]["properties"]["targetModules"]["default"] == [
        "q_proj",
        "k_proj",
        "v_proj",
        "o_proj",
    ]
    rollout = root_schema(CRDS["Experiment"])["properties"]["spec"]["properties"]["rollout"]["properties"]
    assert rollout["steps"]["default"] == [5, 25, 50]
    assert rollout["guardrails"]["default"][0] == {"metric": "ErrorRate", "maxRelativeIncrease": 0.1}
