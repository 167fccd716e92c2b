"""What ``kaizen get`` prints, from objects already read: pure, so golden files can hold it.

The kinds are named as kubectl names them (plural, singular, the short names of each kind's
``KindInfo``, ``<plural>.kaizen.dev``, and ``all`` or the ``kaizen`` category for every kind), and the
outputs are kubectl's: a table (``wide`` adds the columns the CRDs give priority 1), ``name``
(``experiment.kaizen.dev/x``), and ``json``/``yaml`` (the object, or a ``List`` of them, without
``managedFields`` as kubectl 1.21+ hides them). Several kinds print one table each, their names
prefixed with the kind, like ``kubectl get all``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

import yaml

from controllers.api import KINDS
from controllers.api.common import GROUP
from controllers.api.kindinfo import AGE_COLUMN, KindInfo
from controllers.cli.columns import cell, layout, widths

EVERY_KIND = ("all", "kaizen")  # ``kaizen`` is the CRDs' category: ``kubectl get kaizen`` agrees


class Output(StrEnum):
    TABLE = ""
    WIDE = "wide"
    JSON = "json"
    YAML = "yaml"
    NAME = "name"


class UnknownKind(ValueError):
    """A kind word that names no Kaizen kind; the message lists the ones there are."""


def infos() -> list[KindInfo]:
    """Every Kaizen kind, by plural: a stable order (kubectl follows the server's discovery, which varies)."""
    return sorted((module.INFO for module in KINDS), key=lambda info: info.plural)


def names_of(info: KindInfo) -> set[str]:
    singular = info.kind.lower()
    return {singular, info.plural, *info.short_names, f"{info.plural}.{GROUP}", f"{singular}.{GROUP}"}


def resolve(words: str) -> list[KindInfo]:
    """The kinds a ``kaizen get`` argument names: one word, or several separated by commas."""
    chosen: list[KindInfo] = []
    for word in (part.strip().lower() for part in words.split(",")):
        found = infos() if word in EVERY_KIND else [i for i in infos() if word in names_of(i)]
        if not found:
            raise UnknownKind(f"unknown kind {word!r}; {known_kinds()}")
        chosen.extend(info for info in found if info not in chosen)
    return chosen


def known_kinds() -> str:
    listed = ", ".join(f"{info.plural} ({', '.join(info.short_names)})" for info in infos())
    return f"the Kaizen kinds are {listed}, or all; for other kinds use kubectl"


def qualified_name(info: KindInfo, obj: dict[str, Any]) -> str:
    """``experiment.kaizen.dev/x``: what ``-o name`` prints and what names a row among several kinds."""
    return f"{info.kind.lower()}.{GROUP}/{obj['metadata']['name']}"


@dataclass(frozen=True)
class TableShape:
    """Which columns a table has: wide adds priority-1 columns, all namespaces adds NAMESPACE."""

    info: KindInfo
    wide: bool = False
    all_namespaces: bool = False
    qualified: bool = False  # NAME shows kind.group/name (several kinds in one command)

    def header(self) -> list[str]:
        head = ["NAMESPACE"] if self.all_namespaces else []
        return [*head, "NAME", *(column.name.upper() for column in self._columns())]

    def row(self, obj: dict[str, Any], now: datetime) -> list[str]:
        meta = obj["metadata"]
        head = [meta.get("namespace", "")] if self.all_namespaces else []
        name = qualified_name(self.info, obj) if self.qualified else meta["name"]
        return [*head, name, *(cell(column, obj, now) for column in self._columns())]

    def _columns(self) -> list[Any]:
        shown = [column for column in self.info.columns if self.wide or not column.wide_only]
        return [*shown, AGE_COLUMN]


def table(shape: TableShape, objects: Sequence[dict[str, Any]], now: datetime) -> tuple[str, list[int]]:
    """The header and one row per object, and the column widths (a watch keeps them)."""
    rows = [shape.header(), *(shape.row(obj, now) for obj in objects)]
    sizes = widths(rows)
    return layout(rows, sizes), sizes


def watch_row(
    shape: TableShape, obj: dict[str, Any], now: datetime, sizes: list[int]
) -> tuple[str, list[int]]:
    """One changed object's row, aligned with what was printed before (columns only ever widen)."""
    row = shape.row(obj, now)
    grown = widths([row], sizes)
    return layout([row], grown), grown


def tables(
    found: Sequence[tuple[KindInfo, Sequence[dict[str, Any]]]],
    now: datetime,
    *,
    wide: bool = False,
    all_namespaces: bool = False,
) -> str:
    """One table per kind that has objects, separated by a blank line ("" when none has any)."""
    qualified = len(found) > 1
    printed = [
        table(TableShape(info, wide, all_namespaces, qualified), objects, now)[0]
        for info, objects in found
        if objects
    ]
    return "\n".join(printed)


def nothing_found(namespace: str | None) -> str:
    """kubectl's words when a list is empty (it writes them on stderr)."""
    return f"No resources found in {namespace} namespace." if namespace else "No resources found"


def without_managed_fields(obj: dict[str, Any]) -> dict[str, Any]:
    meta = {key: value for key, value in obj.get("metadata", {}).items() if key != "managedFields"}
    return {**obj, "metadata": meta}


def document(objects: Sequence[dict[str, Any]], single: bool) -> dict[str, Any]:
    """The object itself when one was asked for by name, else kubectl's ``List``."""
    cleaned = [without_managed_fields(obj) for obj in objects]
    if single and len(cleaned) == 1:
        return cleaned[0]
    return {"apiVersion": "v1", "items": cleaned, "kind": "List", "metadata": {"resourceVersion": ""}}


def as_json(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=4, sort_keys=True, ensure_ascii=False) + "\n"


class _BlockDumper(yaml.SafeDumper):
    """Multi-line strings as ``|`` blocks, as kubectl prints them."""


def _string(dumper: yaml.SafeDumper, text: str) -> yaml.ScalarNode:
    style = "|" if "\n" in text else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)


_BlockDumper.add_representer(str, _string)


def as_yaml(doc: dict[str, Any]) -> str:
    return yaml.dump(doc, Dumper=_BlockDumper, sort_keys=True, default_flow_style=False, allow_unicode=True)


def render(
    found: Sequence[tuple[KindInfo, Sequence[dict[str, Any]]]],
    output: Output,
    now: datetime,
    *,
    all_namespaces: bool = False,
    single: bool = False,
) -> str:
    """Everything ``kaizen get`` prints on stdout for what it read ("" when nothing was found)."""
    objects = [obj for _, listed in found for obj in listed]
    if output in (Output.TABLE, Output.WIDE):
        return tables(found, now, wide=output == Output.WIDE, all_namespaces=all_namespaces)
    if output == Output.NAME:
        return "".join(qualified_name(info, obj) + "\n" for info, listed in found for obj in listed)
    doc = document(objects, single)  # an empty List too, as kubectl prints one
    return as_json(doc) if output == Output.JSON else as_yaml(doc)
