"""PII and secret scrubbing for anything that becomes trainable. Pure; two engines, one rule set.

The patterns use only the syntax Python's ``re`` and RE2 share, so the same rules scrub row by row
(``scrub``) and column-at-once inside Arrow (``scrub_column``: RE2 in C++, which is what makes
snapshot export fast). Each match becomes a typed placeholder (``[EMAIL]``, ``[SECRET]`` …) so the
model learns the shape of the text without the value, and every replacement is counted per kind.
Order matters: specific secret formats first, then generic high-entropy strings, then personal data.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

# (kind, pattern). Kinds are the placeholder names and the keys of the scrubbed counts.
RULES: list[tuple[str, str]] = [
    ("PRIVATE_KEY", r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----"),
    ("SECRET", r"\bAKIA[0-9A-Z]{16}\b"),  # AWS access key id
    ("SECRET", r"\bgh[pousr]_[A-Za-z0-9]{36,255}\b"),  # GitHub tokens
    ("SECRET", r"\bgithub_pat_[A-Za-z0-9_]{22,255}\b"),
    ("SECRET", r"\bsk-(?:proj-|ant-)?[A-Za-z0-9_-]{20,}"),  # OpenAI / Anthropic style keys
    ("SECRET", r"\b[sr]k_(?:live|test)_[A-Za-z0-9]{16,}\b"),  # Stripe
    ("SECRET", r"\bxox[abposr]-[A-Za-z0-9-]{10,}"),  # Slack
    ("SECRET", r"\bAIza[0-9A-Za-z_-]{35}"),  # Google API key
    ("SECRET", r"\bhf_[A-Za-z0-9]{30,}\b"),  # Hugging Face
    ("SECRET", r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"),  # JWT
    ("SECRET", r"(?i:\b(?:bearer|token|api[_-]?key|secret|password|passwd)\b)\s*[:=]\s*['\"]?[^\s'\"]{8,}"),
    # Generic high-entropy strings: long hex, or long base64-ish runs mixing letters and digits.
    ("SECRET", r"\b[0-9a-fA-F]{32,}\b"),
    (
        "SECRET",
        r"\b[A-Za-z0-9+/_-]*[0-9][A-Za-z0-9+/_-]*[A-Za-z][A-Za-z0-9+/_-]*[0-9][A-Za-z0-9+/_-]{24,}={0,2}",
    ),
    ("EMAIL", r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b"),
    ("CARD", r"\b(?:[0-9][ -]?){12,18}[0-9]\b"),
    (
        "IP",
        r"\b(?:(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])\.){3}(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])\b",
    ),
    ("IP", r"\b(?:[0-9a-fA-F]{1,4}:){7}[0-9a-fA-F]{1,4}\b"),
    ("IP", r"\b(?:[0-9a-fA-F]{1,4}:){1,6}:(?:[0-9a-fA-F]{1,4}:){0,5}[0-9a-fA-F]{1,4}\b"),
    # Phones: international (+CC …), an area code in parentheses, or the 3-3-4 North American shape.
    ("PHONE", r"\+[1-9][0-9]{0,2}[ .-]?(?:\([0-9]{1,4}\)[ .-]?)?[0-9]{2,4}(?:[ .-][0-9]{2,4}){1,4}\b"),
    ("PHONE", r"\([0-9]{2,4}\)[ .-]?[0-9]{2,4}(?:[ .-][0-9]{2,4}){1,3}\b"),
    ("PHONE", r"\b[0-9]{3}[ .-][0-9]{3}[ .-][0-9]{4}\b"),
]

_COMPILED = [(kind, re.compile(pattern)) for kind, pattern in RULES]


def placeholder(kind: str) -> str:
    return f"[{kind}]"


def scrub(text: str, counts: Counter[str] | None = None) -> str:
    """``text`` with every match replaced by its placeholder; adds what it replaced to ``counts``."""
    for kind, pattern in _COMPILED:
        text, replaced = pattern.subn(placeholder(kind), text)
        if counts is not None and replaced:
            counts[kind] += replaced
    return text


# One pass that finds the rows holding anything at all; most rows hold nothing, and only the rows
# that do pay for the rule-by-rule passes.
ANY = "|".join(f"(?:{pattern})" for _, pattern in RULES)


def scrub_column(column: Any, counts: Counter[str]) -> Any:
    """The same rules over a whole Arrow string array at once (RE2, vectorised)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    mask = pc.match_substring_regex(column, ANY)
    if not pc.any(mask).as_py():
        return column
    hits = column.filter(mask)
    for kind, pattern in RULES:
        found = pc.sum(pc.count_substring_regex(hits, pattern)).as_py() or 0
        if found:
            counts[kind] += found
            hits = pc.replace_substring_regex(hits, pattern, placeholder(kind))
    return pc.replace_with_mask(column, mask, hits)
