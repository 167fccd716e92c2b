"""The page ``kaizen describe`` prints for one object, from the object and its Events: pure.

Laid out like ``kubectl describe``: labels aligned per level, nested sections indented by two, tables
under a dashed header, ``<none>`` for what is empty. The page has the object's identity, the spec
settings and the status that matter on call (``describing_kinds`` per kind), the conditions with
their messages, the interventions people asked for (and one still waiting for the operator), the
Events about the object, and a "Next:" line from ``controllers.cli.hints``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Union

from controllers.api.intervention import ANNOTATION
from controllers.api.kindinfo import READY, KindInfo, condition
from controllers.cli import hints
from controllers.cli.columns import age, go_number, layout, parse_time, widths

NONE = "<none>"
ACRONYMS = {"gpu": "GPU", "uri": "URI"}  # in labels made from field names
HIDDEN_ANNOTATIONS = ("kubectl.kubernetes.io/last-applied-configuration", ANNOTATION)


@dataclass(frozen=True)
class Table:
    """Rows under a header; printed as ``<none>`` when there are no rows."""

    header: Sequence[str]
    rows: Sequence[Sequence[str]] = field(default_factory=list)


Value = Union[str, "list[Field]", Table]
Field = tuple[str, Value]


def render(fields: Sequence[Field], indent: int = 0) -> list[str]:
    """The fields as lines: labels of one level aligned, sections and tables indented below them.

    Inside a section (``indent`` > 0) a field with nothing to say is left out; at the top every field
    shows, ``<none>`` when empty, as kubectl prints Labels and Events."""
    pad = " " * indent
    if indent:
        fields = [(label, value) for label, value in fields if isinstance(value, Table) or value]
    inline = [label for label, value in fields if isinstance(value, str) or _empty(value)]
    width = max((len(label) + 3 for label in inline), default=0)  # "Label:" and two spaces
    lines: list[str] = []
    for label, value in fields:
        if isinstance(value, str) or _empty(value):
            shown = value if isinstance(value, str) and value.strip() else NONE
            first, *more = shown.splitlines()
            lines.append(f"{pad}{label + ':':<{width}}{first}".rstrip())
            lines.extend(f"{pad}{'':<{width}}{line}".rstrip() for line in more)
        elif isinstance(value, Table):
            lines.append(f"{pad}{label}:")
            lines.extend(_table(value, indent + 2))
        else:
            lines.append(f"{pad}{label}:")
            lines.extend(render(value, indent + 2))
    return lines


def _empty(value: Value) -> bool:
    return isinstance(value, Table | list) and (not value.rows if isinstance(value, Table) else not value)


def _table(table: Table, indent: int) -> list[str]:
    head = list(table.header)
    rows = [head, ["-" * len(name) for name in head], *(list(row) for row in table.rows)]
    text = layout(rows, widths(rows, padding=2, minimum=0))
    return [(" " * indent + line).rstrip() for line in text.splitlines()]


def when(value: Any, now: datetime) -> str:
    """A timestamp and how long ago it was: ``2026-01-01T10:00:00Z (2h ago)``; "" when unset."""
    stamp = parse_time(value)
    return "" if stamp is None else f"{value} ({age(value, now)} ago)"


def text(value: Any) -> str:
    """A status value for a person: "" for unset, true/false in lower case, lists joined by commas."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ", ".join(text(item) for item in value)
    return " ".join(str(value).split()) if isinstance(value, str) else str(value)


def dig(obj: Any, path: str) -> Any:
    """The value at a dotted path of plain dicts, or None."""
    for key in path.split("."):
        obj = obj.get(key) if isinstance(obj, dict) else None
    return obj


def number(value: Any, suffix: str = "") -> str:
    """A number rounded to four places, in Go's shortest form; "" for anything else."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return ""
    return (go_number(round(float(value), 4)) if isinstance(value, float) else str(value)) + suffix


def fields_of(source: dict[str, Any] | None, keys: str) -> list[Field]:
    """The set fields among ``keys`` (camelCase, space-separated) of a block, labelled in words."""
    source = source or {}
    found = [(label(key), number(source.get(key)) or text(source.get(key))) for key in keys.split()]
    return [(label, value) for label, value in found if value]


def label(key: str) -> str:
    """``preferenceAccuracy`` as "Preference accuracy" (``gpuHours`` as "GPU hours")."""
    words = [ACRONYMS.get(word.lower(), word.lower()) for word in re.findall(r"[a-z]+|[A-Z][a-z]*", key)]
    sentence = " ".join(words)
    return sentence[0].upper() + sentence[1:]


def status_section(obj: dict[str, Any], fields: list[Field]) -> Field:
    """The Status section, or ``<none>`` when the operator has written no status yet."""
    if not obj.get("status"):
        return ("Status", "")
    return ("Status", fields)


def identity(info: KindInfo, obj: dict[str, Any], now: datetime) -> list[Field]:
    meta = obj["metadata"]
    labels = "\n".join(f"{key}={value}" for key, value in sorted((meta.get("labels") or {}).items()))
    notes = {k: v for k, v in (meta.get("annotations") or {}).items() if k not in HIDDEN_ANNOTATIONS}
    owners = ", ".join(f"{o.get('kind')}/{o.get('name')}" for o in meta.get("ownerReferences") or [])
    fields: list[Field] = [
        ("Name", meta["name"]),
        ("Namespace", meta.get("namespace", "")),
        ("Kind", f"{info.kind} ({obj.get('apiVersion', '')})"),
        ("Labels", labels),
        ("Annotations", "\n".join(f"{key}: {text(value)}" for key, value in sorted(notes.items()))),
        ("Created", when(meta.get("creationTimestamp"), now)),
        ("Generation", _generation(obj)),
    ]
    if owners:
        fields.insert(5, ("Controlled By", owners))
    if meta.get("deletionTimestamp"):
        fields.append(("Deleting", f"since {when(meta['deletionTimestamp'], now)}"))
    return fields


def _generation(obj: dict[str, Any]) -> str:
    generation = obj["metadata"].get("generation")
    status = obj.get("status")
    if not status:
        return f"{generation} (the operator has not written a status yet; is it watching this namespace?)"
    seen = status.get("observedGeneration")
    if seen == generation:
        return f"{generation} (the operator acted on it)"
    return f"{generation} (the operator last acted on {seen}: the newest spec is not handled yet)"


def conditions(obj: dict[str, Any], now: datetime) -> Table:
    rows = [
        [
            str(found.get("type", "")),
            str(found.get("status", "")),
            str(found.get("reason", "")),
            age(found.get("lastTransitionTime"), now),
            text(found.get("message", "")),
        ]
        for found in (obj.get("status") or {}).get("conditions") or []
    ]
    return Table(["Type", "Status", "Reason", "Since", "Message"], rows)


def interventions(obj: dict[str, Any], now: datetime) -> Value:
    """Requests people made, oldest first, and the one still waiting for the operator, if any."""
    history = (obj.get("status") or {}).get("interventions") or []
    rows = [
        [
            age(entry.get("at"), now),
            text(entry.get("by")) or "?",
            text(entry.get("action")),
            text(entry.get("reason")),
            text(entry.get("outcome")),
        ]
        for entry in history
    ]
    answered = {entry.get("id") for entry in history}
    raw = (obj["metadata"].get("annotations") or {}).get(ANNOTATION)
    waiting = _request(raw) if raw else None
    if raw and (waiting is None or waiting.get("id") not in answered):
        if waiting is None:
            rows.append(
                ["", "?", "?", "", f"annotation {ANNOTATION} does not parse; the operator will decline it"]
            )
        else:
            rows.append(
                [
                    age(waiting.get("at"), now),
                    text(waiting.get("by")) or "?",
                    text(waiting.get("action")),
                    text(waiting.get("reason")),
                    "(waiting for the operator)",
                ]
            )
    return Table(["Age", "By", "Action", "Reason", "Outcome"], rows)


def _request(raw: str) -> dict[str, Any] | None:
    try:
        found = json.loads(raw)
    except ValueError:
        return None
    return found if isinstance(found, dict) else None


def events_about(obj: dict[str, Any], events: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The Events about this object: same kind and name, and its uid where the Event records one
    (an Event about an earlier object of the same name is left out), oldest first."""
    meta = obj["metadata"]
    mine = [
        event
        for event in events
        if (involved := event.get("involvedObject") or {}).get("name") == meta["name"]
        and involved.get("kind") == obj.get("kind")
        and involved.get("uid") in (None, "", meta.get("uid"))
    ]
    return sorted(mine, key=lambda event: _event_time(event) or "")


def _event_time(event: dict[str, Any]) -> str | None:
    meta = event.get("metadata") or {}
    return event.get("lastTimestamp") or event.get("eventTime") or meta.get("creationTimestamp")


def events_table(obj: dict[str, Any], events: Sequence[dict[str, Any]], now: datetime) -> Table:
    rows = []
    for event in events_about(obj, events):
        shown = age(_event_time(event), now)
        count = event.get("count") or 1
        if count > 1 and event.get("firstTimestamp"):
            shown += f" (x{count} over {age(event['firstTimestamp'], now)})"
        source = (event.get("source") or {}).get("component") or event.get("reportingComponent") or ""
        rows.append(
            [text(event.get("type")), text(event.get("reason")), shown, source, text(event.get("message"))]
        )
    return Table(["Type", "Reason", "Age", "From", "Message"], rows)


def page(
    info: KindInfo,
    obj: dict[str, Any],
    body: Sequence[Field],
    events: Sequence[dict[str, Any]],
    now: datetime,
) -> str:
    """The whole page: identity, ``body`` (the kind's spec and status), conditions, interventions,
    events and what to do next."""
    fields: list[Field] = [*identity(info, obj, now), *body, ("Conditions", conditions(obj, now))]
    if "interventions" in info.status_model.model_fields:
        fields.append(("Interventions", interventions(obj, now)))
    fields.append(("Events", events_table(obj, events, now)))
    reason = str(condition(obj, READY).get("reason", ""))
    steps = hints.next_steps(obj, info.plural, reason)
    if steps:
        fields.append(("Next", "\n".join(steps)))
    return "\n".join(render(fields)) + "\n"
