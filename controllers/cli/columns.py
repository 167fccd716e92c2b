"""A printer column's cell, read out of a stored object as ``kubectl get`` reads it, and tables laid out
as kubectl lays them out. Pure: objects and a clock in, text out.

``kaizen get`` shows the columns each kind's ``KindInfo`` declares, the same ones the CRDs give the
API server, so the two commands must print the same cells: a missing value is an empty cell, a
number is printed in Go's shortest form (``1``, not ``1.0``), a string stops at its first line break
(with ``...``), and a date is an age (``5m``, ``3h12m``, ``4d``). Tables are padded like Go's
tabwriter with kubectl's settings: three spaces between columns, at least six characters a column,
the last column never padded.

The JSONPath support is what the columns use: ``.a.b.c`` and one filter ``list[?(@.key=="value")]``.
A path outside that raises, so a new column with another form fails the golden tests at once.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from controllers.api.kindinfo import PrinterColumn

PADDING = 3  # spaces after every column but the last
MIN_WIDTH = 6  # a column's width, padding included, is never less
_SEGMENT = re.compile(r'\.([A-Za-z0-9_-]+)(?:\[\?\(@\.([A-Za-z0-9_]+)=="([^"]*)"\)\])?')
_BREAKS = re.compile(r"[\n\r\f]")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f\t]")


def values(obj: dict[str, Any], path: str) -> list[Any]:
    """Every value ``path`` selects in ``obj`` (none when a step is missing)."""
    segments = _SEGMENT.findall(path)
    if not segments or "".join(_rebuild(s) for s in segments) != path:
        raise ValueError(f'unsupported JSONPath {path!r}: use .a.b and [?(@.key=="value")] only')
    found: list[Any] = [obj]
    for field, key, wanted in segments:
        found = [item[field] for item in found if isinstance(item, dict) and field in item]
        if key:
            found = [
                entry
                for item in found
                if isinstance(item, list)
                for entry in item
                if isinstance(entry, dict) and str(entry.get(key)) == wanted
            ]
    return [value for value in found if value is not None]


def _rebuild(segment: tuple[str, str, str]) -> str:
    field, key, wanted = segment
    return f".{field}" + (f'[?(@.{key}=="{wanted}")]' if key else "")


def cell(column: PrinterColumn, obj: dict[str, Any], now: datetime) -> str:
    """What ``kubectl get`` shows in this column for this object."""
    found = values(obj, column.json_path)
    if not found:
        return ""
    value = found[0]
    if column.type == "date":
        return age(value, now)
    if column.type == "integer" and isinstance(value, int | float) and not isinstance(value, bool):
        return str(int(value))
    if column.type == "number" and isinstance(value, int | float) and not isinstance(value, bool):
        return go_number(float(value))
    return one_line(value if isinstance(value, str) else _json(value))


def _json(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return go_number(value)
    if isinstance(value, int):
        return str(value)
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def go_number(value: float) -> str:
    """A float as Go's ``%v`` prints it: integral values without a decimal point."""
    if math.isfinite(value) and value.is_integer() and abs(value) < 1e21:
        return str(int(value))
    return repr(value)


def one_line(text: str) -> str:
    """The text up to its first line break (``...`` marks a cut), without control characters."""
    first = _BREAKS.split(text, maxsplit=1)
    shown = _CONTROL.sub(" ", first[0])
    return shown + "..." if len(first) > 1 else shown


def parse_time(value: Any) -> datetime | None:
    """An RFC 3339 timestamp as an aware datetime, or None when it is not one."""
    if not isinstance(value, str) or not value:
        return None
    try:
        stamp = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)


def age(value: Any, now: datetime) -> str:
    """How long ago a timestamp was, as kubectl's AGE column says it; "<unknown>" when unreadable."""
    stamp = parse_time(value)
    return "<unknown>" if stamp is None else human_duration(now - stamp)


def human_duration(delta: timedelta) -> str:
    """A duration in kubectl's words: precise while short, coarser as it grows (90s, 5m30s, 3h12m, 4d)."""
    seconds = int(delta.total_seconds())
    if seconds < -1:
        return "<invalid>"  # more than the clock skew kubectl tolerates
    if seconds < 0:
        return "0s"
    if seconds < 120:
        return f"{seconds}s"
    minutes, hours, days = seconds // 60, seconds // 3600, seconds // 86400
    if minutes < 10:
        return _pair(minutes, "m", seconds % 60, "s")
    if minutes < 180:
        return f"{minutes}m"
    if hours < 8:
        return _pair(hours, "h", minutes % 60, "m")
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        return _pair(days, "d", hours % 24, "h")
    if hours < 24 * 365 * 2:
        return f"{days}d"
    if hours < 24 * 365 * 8:
        return _pair(days // 365, "y", days % 365, "d")
    return f"{days // 365}y"


def _pair(big: int, big_unit: str, small: int, small_unit: str) -> str:
    return f"{big}{big_unit}" if small == 0 else f"{big}{big_unit}{small}{small_unit}"


def widths(
    rows: Sequence[Sequence[str]], floor: Sequence[int] = (), padding: int = PADDING, minimum: int = MIN_WIDTH
) -> list[int]:
    """Each column's width, padding included (``floor``: widths already printed, as in a watch)."""
    count = max((len(row) for row in rows), default=0)
    found = [minimum] * count
    for row in rows:
        for index, text in enumerate(row):
            found[index] = max(found[index], len(text) + padding)
    return [max(width, floor[index]) if index < len(floor) else width for index, width in enumerate(found)]


def layout(rows: Sequence[Sequence[str]], column_widths: Sequence[int] | None = None) -> str:
    """Rows as aligned lines (every line ends with a newline); the last column is not padded."""
    sizes = list(column_widths) if column_widths is not None else widths(rows)
    lines = []
    for row in rows:
        padded = [text.ljust(sizes[index]) for index, text in enumerate(row[:-1])]
        lines.append("".join(padded) + (row[-1] if row else ""))
    return "".join(line + "\n" for line in lines)
