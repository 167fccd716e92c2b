"""DPO JSONL lines built in Arrow must be exactly what a JSON parser reads back."""

from __future__ import annotations

import json
import random

import pyarrow as pa

from controllers.data.jsonl import dpo_jsonl_lines as _jsonl_lines
from controllers.data.jsonl import text_bytes as _text_bytes


def test_every_character_round_trips_through_the_arrow_built_lines() -> None:
    rng = random.Random(1)
    alphabet = [chr(c) for c in range(0, 0x80)] + ["é", "€", "😀", "\u2028", "\\u0041", '\\"']
    texts = ["".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 40))) for _ in range(2000)]
    column = pa.array(texts)
    lines = bytes(_text_bytes(_jsonl_lines(column, column, column))).decode()
    parsed = [json.loads(line) for line in lines.split("\n")[:-1]]
    assert [p["prompt"] for p in parsed] == texts
    assert all(p["chosen"] == p["rejected"] == p["prompt"] for p in parsed)


def test_filtered_lines_keep_only_their_rows() -> None:
    lines = _jsonl_lines(pa.array(["a", "b", "c"]), pa.array(["1", "2", "3"]), pa.array(["x", "y", "z"]))
    kept = bytes(_text_bytes(lines.filter(pa.array([True, False, True])))).decode()
    assert [json.loads(line)["prompt"] for line in kept.splitlines()] == ["a", "c"]
