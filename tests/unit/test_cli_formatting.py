"""The pieces under ``kaizen get``/``describe``: kubectl's ages and cells, kind names, the Next hints,
and the rule that the formatting modules do no I/O."""

from __future__ import annotations

import ast
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from controllers.api.kindinfo import PrinterColumn
from controllers.cli import hints, printing
from controllers.cli.columns import cell, human_duration, layout, values
from controllers.cli.printing import UnknownKind
from tests.schemas import ROOT

NOW = datetime(2026, 1, 10, 12, 0, tzinfo=UTC)
PURE = ("columns", "printing", "describing", "describing_kinds", "hints")
IO_MODULES = {"kubernetes", "urllib3", "httpx", "socket", "subprocess", "requests", "asyncio", "typer", "os"}


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (-5, "<invalid>"),
        (-1, "0s"),
        (0, "0s"),
        (119, "119s"),
        (120, "2m"),
        (330, "5m30s"),
        (600, "10m"),
        (179 * 60 + 59, "179m"),
        (3 * 3600, "3h"),
        (7 * 3600 + 59 * 60, "7h59m"),
        (8 * 3600 + 59 * 60, "8h"),
        (47 * 3600, "47h"),
        (48 * 3600, "2d"),
        (7 * 86400 + 23 * 3600, "7d23h"),
        (8 * 86400, "8d"),
        (729 * 86400, "729d"),
        (730 * 86400, "2y"),
        (731 * 86400, "2y1d"),
        (8 * 365 * 86400, "8y"),
    ],
)
def test_ages_read_as_kubectl_prints_them(seconds: int, shown: str) -> None:
    assert human_duration(timedelta(seconds=seconds)) == shown


def test_a_json_path_filter_picks_one_condition_and_a_missing_step_gives_nothing() -> None:
    obj = {
        "status": {"conditions": [{"type": "Drift", "reason": "NoDrift"}, {"type": "Ready", "reason": "Go"}]}
    }
    assert values(obj, '.status.conditions[?(@.type=="Ready")].reason') == ["Go"]
    assert values(obj, '.status.conditions[?(@.type=="Gone")].reason') == []
    assert values(obj, ".spec.training.method") == []
    with pytest.raises(ValueError, match="unsupported JSONPath"):
        values(obj, ".status.conditions[0].reason")


@pytest.mark.parametrize(
    ("column_type", "value", "shown"),
    [
        ("number", 1.0, "1"),
        ("number", 0.712, "0.712"),
        ("integer", 25, "25"),
        ("integer", None, ""),
        ("string", "first line\nsecond", "first line..."),
        ("string", "tab\there", "tab here"),
        ("string", True, "true"),
        ("date", "2026-01-10T11:55:00Z", "5m"),
        ("date", "yesterday", "<unknown>"),
    ],
)
def test_cells_are_what_kubectl_shows(column_type: str, value: Any, shown: str) -> None:
    column = PrinterColumn("X", column_type, ".status.x")
    assert cell(column, {"status": {"x": value}}, NOW) == shown


def test_columns_are_three_spaces_apart_and_the_last_is_not_padded() -> None:
    assert layout([["NAME", "AGE"], ["a", "5m"]]) == "NAME   AGE\na      5m\n"
    assert layout([["ID", "X"], ["1", "2"]]) == "ID    X\n1     2\n"  # at least six wide


def test_every_kind_is_found_by_every_name_kubectl_knows_it_by() -> None:
    for info in printing.infos():
        for word in (
            info.plural,
            info.kind.lower(),
            info.kind,
            *info.short_names,
            f"{info.plural}.kaizen.dev",
        ):
            assert printing.resolve(word) == [info], word
    assert [i.kind for i in printing.resolve("exp,lp")] == ["Experiment", "LearningPolicy"]
    assert printing.resolve("all") == printing.infos() == printing.resolve("kaizen")


def test_an_unknown_kind_lists_the_kinds_there_are() -> None:
    with pytest.raises(UnknownKind) as refused:
        printing.resolve("pods")
    message = str(refused.value)
    assert "'pods'" in message
    assert "experiments (exp, kexp)" in message
    assert "learningpolicies (lp, lpol)" in message
    assert "use kubectl" in message


def _obj(kind: str, **spec: Any) -> dict[str, Any]:
    return {"kind": kind, "metadata": {"name": "x", "namespace": "ns"}, "spec": spec}


def test_each_hint_formats_into_a_command_for_the_object() -> None:
    for (kind, reason), templates in hints.NEXT_STEPS.items():
        obj = _obj("Experiment" if kind == hints.ANY else kind, policyRef="p")
        found = hints.next_steps(obj, "experiments", reason)
        assert len(found) == len(templates)
        for line in found:
            assert "{" not in line, line  # every placeholder was filled
            assert line.split()[0] in ("kaizen", "kubectl"), line
            assert "-n ns" in line, line  # pasted as is, it acts on the right namespace


def test_a_paused_object_is_told_to_resume_whatever_its_ready_reason() -> None:
    policy = _obj("LearningPolicy", paused=True)
    assert hints.next_steps(policy, "learningpolicies", "Watching") == [
        "kaizen resume learningpolicy x -n ns"
    ]
    assert hints.next_steps(_obj("Experiment"), "experiments", "AwaitingApproval") == [
        "kaizen approve experiment x -n ns"
    ]
    assert hints.next_steps(_obj("Experiment"), "experiments", "Evaluating") == []


def imports_of(name: str) -> set[str]:
    """Every module ``controllers/cli/<name>.py`` imports, by full name."""
    tree = ast.parse((ROOT / "controllers" / "cli" / f"{name}.py").read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}  # ``from package import module``
    return found


def test_the_formatting_modules_do_no_io() -> None:
    """Pure formatting, apart from the thin reads (kubeapi) and the commands (get, describe)."""
    for name in PURE:
        imported = imports_of(name)
        assert not {module.split(".")[0] for module in imported} & IO_MODULES, f"{name} does I/O: {imported}"
        own = {module for module in imported if module.startswith("controllers.cli.")}
        others = {module.removeprefix("controllers.cli.").split(".")[0] for module in own} - set(PURE)
        assert not others, f"controllers/cli/{name}.py imports a module that may do I/O: {others}"
