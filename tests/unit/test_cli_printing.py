"""Golden output of ``kaizen get`` (table, wide, -A, json, yaml, name) and ``kaizen describe``, per kind.

The inputs are fixed object bodies (``golden/cli/objects.yaml``: two namespaces, the states a person
on call meets, and some Events), read at a fixed NOW, through the pure formatters the commands use
(``controllers.cli.printing``, ``describing``). The expected text is in ``golden/cli/get/`` and
``golden/cli/describe/``.

After an intended change of the output (a new printer column, a new describe line), regenerate the
files and review the diff:

    KAIZEN_UPDATE_GOLDEN=1 PYTHONPATH=$PWD .venv/bin/python -m pytest tests/unit/test_cli_printing.py
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from controllers.api import KINDS
from controllers.api.kindinfo import KindInfo
from controllers.cli import printing
from controllers.cli.describing import page
from controllers.cli.describing_kinds import SECTIONS
from controllers.cli.printing import Output, TableShape
from tests.schemas import load_crds

GOLDEN = Path(__file__).parent / "golden" / "cli"
NOW = datetime(2026, 1, 10, 12, 0, tzinfo=UTC)
UPDATE = os.environ.get("KAIZEN_UPDATE_GOLDEN") == "1"
HOME = "team-a"  # the namespace a plain `kaizen get` lists in these tests
REGENERATE = (
    "KAIZEN_UPDATE_GOLDEN=1 PYTHONPATH=$PWD .venv/bin/python -m pytest tests/unit/test_cli_printing.py"
)


def _documents() -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all((GOLDEN / "objects.yaml").read_text()) if doc]


DOCUMENTS = _documents()
EVENTS: list[dict[str, Any]] = next(doc for doc in DOCUMENTS if doc["kind"] == "EventList")["items"]
INFOS = printing.infos()


def objects(info: KindInfo, namespace: str | None = HOME) -> list[dict[str, Any]]:
    found = [doc for doc in DOCUMENTS if doc["kind"] == info.kind]
    return [doc for doc in found if namespace is None or doc["metadata"]["namespace"] == namespace]


def test_the_fixtures_are_valid_objects_of_every_kind() -> None:
    for module in KINDS:
        found = objects(module.INFO, None)
        assert len(found) >= 2, f"golden/cli/objects.yaml needs objects of {module.INFO.kind}"
        for body in found:
            module.INFO.model.model_validate(body)  # the bodies stay true to the API


def get_outputs(info: KindInfo) -> dict[str, str]:
    """``kaizen get <kind>`` in every output format, by golden file name."""
    here, everywhere = [(info, objects(info))], [(info, objects(info, None))]
    one = [(info, objects(info)[:1])]
    return {
        f"get/{info.plural}.txt": printing.render(here, Output.TABLE, NOW),
        f"get/{info.plural}-wide.txt": printing.render(here, Output.WIDE, NOW),
        f"get/{info.plural}-all-namespaces.txt": printing.render(
            everywhere, Output.TABLE, NOW, all_namespaces=True
        ),
        f"get/{info.plural}.json": printing.render(here, Output.JSON, NOW),
        f"get/{info.plural}.yaml": printing.render(here, Output.YAML, NOW),
        f"get/{info.plural}-name.txt": printing.render(here, Output.NAME, NOW),
        f"get/{info.plural}-one.json": printing.render(one, Output.JSON, NOW, single=True),
    }


def every_kind_outputs() -> dict[str, str]:
    """``kaizen get all``: one table per kind, names qualified with the kind."""
    here = [(info, objects(info)) for info in INFOS]
    everywhere = [(info, objects(info, None)) for info in INFOS]
    return {
        "get/all.txt": printing.render(here, Output.TABLE, NOW),
        "get/all-name.txt": printing.render(here, Output.NAME, NOW),
        "get/all-all-namespaces-wide.txt": printing.render(everywhere, Output.WIDE, NOW, all_namespaces=True),
    }


def describe_outputs() -> dict[str, str]:
    """``kaizen describe <kind> <name>`` for every fixture object."""
    pages = {}
    for info in INFOS:
        for body in objects(info, None):
            meta = body["metadata"]
            text = page(info, body, SECTIONS[info.kind](body, NOW), EVENTS, NOW)
            pages[f"describe/{info.plural}-{meta['namespace']}-{meta['name']}.txt"] = text
    return pages


OUTPUTS = {
    **{name: text for info in INFOS for name, text in get_outputs(info).items()},
    **every_kind_outputs(),
    **describe_outputs(),
}


@pytest.mark.parametrize("name", sorted(OUTPUTS))
def test_output_matches_its_golden_file(name: str) -> None:
    path = GOLDEN / name
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(OUTPUTS[name])
    assert path.is_file(), f"no golden file {path}; write it with: {REGENERATE}"
    assert OUTPUTS[name] == path.read_text(), f"{name} differs; if the change is intended: {REGENERATE}"


def test_every_golden_file_is_an_output_of_a_test() -> None:
    present = {str(p.relative_to(GOLDEN)) for p in GOLDEN.rglob("*") if p.is_file()}
    stale = present - set(OUTPUTS) - {"objects.yaml", "README.md"}
    if UPDATE:
        for name in stale:
            (GOLDEN / name).unlink()
        stale = set()
    assert not stale, f"golden files no test reads (regenerate with {REGENERATE}): {sorted(stale)}"


def test_the_pages_show_what_to_run_next_and_only_this_objects_events() -> None:
    approval = OUTPUTS["describe/experiments-team-a-coder-dpo-0001.txt"]
    assert "Next:         kaizen approve experiment coder-dpo-0001 -n team-a" in approval
    assert "(waiting for the operator)" in approval  # the Approve request in the annotation
    assert "an earlier experiment of this name" not in approval  # an Event about another uid
    failed = OUTPUTS["describe/trainingruns-team-a-coder-dpo-0002.txt"]
    assert "kaizen logs trainingrun coder-dpo-0002 -n team-a" in failed
    assert "kaizen retry trainingrun coder-dpo-0002 -n team-a" in failed
    assert "24h (x3 over 25h)" in failed
    paused = OUTPUTS["describe/learningpolicies-team-b-fixer-sft.txt"]
    assert "kaizen resume learningpolicy fixer-sft -n team-b" in paused
    unseen = OUTPUTS["describe/shadowmodels-team-b-fixer-sft-0002.txt"]
    assert "the operator has not written a status yet" in unseen


def test_json_and_yaml_hide_managed_fields_and_keep_the_rest() -> None:
    info = next(i for i in INFOS if i.kind == "LearningPolicy")
    policy = objects(info)[0]
    assert "managedFields" in policy["metadata"]
    shown = yaml.safe_load(printing.render([(info, [policy])], Output.YAML, NOW, single=True))
    assert "managedFields" not in shown["metadata"]
    assert shown["status"] == policy["status"]
    assert shown["spec"] == policy["spec"]


def test_the_columns_are_those_the_crds_give_kubectl() -> None:
    crds = load_crds()
    for info in INFOS:
        declared = crds[info.kind]["spec"]["versions"][0]["additionalPrinterColumns"]
        wide = TableShape(info, wide=True).header()
        narrow = TableShape(info).header()
        assert wide == ["NAME", *(column["name"].upper() for column in declared)]
        assert narrow == ["NAME", *(c["name"].upper() for c in declared if c.get("priority", 0) == 0)]
        assert TableShape(info, all_namespaces=True).header()[:2] == ["NAMESPACE", "NAME"]


def test_a_watch_row_keeps_the_columns_of_the_table_printed_before() -> None:
    info = next(i for i in INFOS if i.kind == "Experiment")
    shape = TableShape(info)
    first, *_ = objects(info)
    text, sizes = printing.table(shape, [first], NOW)
    changed = {**first, "status": {**first["status"], "decision": "RollBack", "challengerWeight": 0}}
    row, grown = printing.watch_row(shape, changed, NOW, sizes)
    header = text.splitlines()[0]
    assert row.index("RollBack") == header.index("DECISION")
    assert grown == sizes
    longer = {**first, "metadata": {**first["metadata"], "name": "a-much-longer-experiment-name"}}
    _, wider = printing.watch_row(shape, longer, NOW, sizes)
    assert wider[0] > sizes[0]
    assert wider[1:] == sizes[1:]


def test_nothing_found_says_where_like_kubectl() -> None:
    assert printing.nothing_found("team-c") == "No resources found in team-c namespace."
    assert printing.nothing_found(None) == "No resources found"
    info = INFOS[0]
    assert printing.render([(info, [])], Output.TABLE, NOW) == ""
    assert yaml.safe_load(printing.render([(info, [])], Output.JSON, NOW))["items"] == []
