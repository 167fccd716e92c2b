"""JSON lines built inside Arrow, column at once: the DPO snapshot's JSONL without a Python object per row.

``tests/unit/test_jsonl.py`` holds these to what a JSON parser reads back, character for character.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

# JSON string escapes that text commonly needs; other control characters are rare and handled apart.
_JSON_ESCAPES = [("\\", "\\\\"), ('"', '\\"'), ("\n", "\\n"), ("\r", "\\r"), ("\t", "\\t")]
_RARE_CONTROL = "[\x00-\x08\x0b\x0c\x0e-\x1f]"


def _json_strings(column: pa.Array) -> pa.Array:
    """Each string as a JSON string literal (quoted, escaped), computed in Arrow: no Python object per row."""
    for raw, escaped in _JSON_ESCAPES:
        column = pc.replace_substring(column, raw, escaped)
    if pc.any(pc.match_substring_regex(column, _RARE_CONTROL)).as_py():
        for code in (*range(0x09), 0x0B, 0x0C, *range(0x0E, 0x20)):
            column = pc.replace_substring(column, chr(code), f"\\u{code:04x}")
    return pc.binary_join_element_wise('"', column, '"', "")


def dpo_jsonl_lines(prompts: pa.Array, chosen: pa.Array, rejected: pa.Array) -> pa.Array:
    """DPO JSONL lines (with their newline) as one Arrow string array."""
    parts = [
        '{"prompt": ',
        _json_strings(prompts),
        ', "chosen": ',
        _json_strings(chosen),
        ', "rejected": ',
        _json_strings(rejected),
        "}\n",
    ]
    return pc.binary_join_element_wise(*parts, "")


def text_bytes(lines: pa.Array) -> memoryview:
    """The concatenated characters of a string array, straight from its data buffer."""
    if lines.offset != 0 or lines.null_count:
        lines = pa.concat_arrays([lines.fill_null("")])  # a fresh array whose characters start at 0
    data = lines.buffers()[2]
    if data is None or len(lines) == 0:
        return memoryview(b"")
    return memoryview(data)[: pc.sum(pc.binary_length(lines)).as_py()]
