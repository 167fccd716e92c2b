"""PII and secret scrubbing for anything that becomes trainable or shown to a reviewer. Pure.

One rule set (``pii_rules.RULES``), one engine, two ways in: ``scrub`` runs it row by row (judge
prompts, the review queue) and ``scrub_column`` over a whole Arrow string column (snapshot export),
both with RE2, Google's linear-time regular expressions (``google-re2`` for rows, Arrow's own for
columns). Both give the same text and the same per-kind counts (``tests/unit/test_pii.py`` holds them
to that). Why not Python's ``re`` for rows: it backtracks, and the generic high-entropy rules took
over five minutes on a 200,000-character run of letters, which any agent may post as a prompt and a
reviewer's queue would then render. RE2 takes a fraction of a second on the same text. Each match
becomes a typed placeholder (``[EMAIL]``, ``[SECRET]``, ``[NATIONAL_ID]`` …) so the model learns the
shape of the text without the value, and every replacement is counted per kind.

Why our own patterns and not a library's detectors (figures in ``docs/security-scrubbing.md``):

- presidio-analyzer 2.2.366 installs 375 MB (spaCy, thinc, numpy …), takes 6.3 s and 476 MB of
  memory just to import one pattern recognizer, and runs Python regexes per text: out.
- detect-secrets 1.5.0 (8 MB) scans source lines in Python; 13 of its 46 regexes use look-behind,
  which RE2 cannot run, and its plugins import ``requests`` (an I/O library this layer may not use).
- phonenumbers 9.0.43 (48 MB, 40 MB of it geodata) finds phones well but in pure Python, ~100x
  slower than the RE2 column pass; python-stdnum (6 MB) validates checksums but finds nothing.

So the bulk stays in RE2, and the libraries are the tests' oracles: the planted corpus
(``tests/security/scrub_corpus.py``) is checked against python-stdnum's checksums and phonenumbers'
parser, so its values are real formats, not shapes our own rules happen to like. Checksum validation
of candidates (Luhn, IBAN mod 97) would only reduce false positives; a scrubber errs the other way.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import re2  # type: ignore[import-untyped]

from controllers.data.pii_rules import RULES


def placeholder(kind: str) -> str:
    return f"[{kind}]"


def _replacement(kind: str, replacement: str | None) -> str:
    return placeholder(kind) if replacement is None else replacement


_COMPILED = [(kind, re2.compile(pattern), _replacement(kind, rep)) for kind, pattern, rep in RULES]


def scrub(text: str, counts: Counter[str] | None = None) -> str:
    """``text`` with every match replaced by its placeholder; adds what it replaced to ``counts``."""
    for kind, pattern, replacement in _COMPILED:
        text, replaced = pattern.subn(replacement, text)
        if counts is not None and replaced:
            counts[kind] += replaced
    return text


# One pass that finds the rows holding anything at all; most rows hold nothing, and only the rows
# that do pay for the rule-by-rule passes.
ANY = "|".join(f"(?:{pattern})" for _, pattern, _ in RULES)


def scrub_column(column: Any, counts: Counter[str]) -> Any:
    """The same rules over a whole Arrow string array at once (RE2, vectorised)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    mask = pc.fill_null(pc.match_substring_regex(column, ANY), False)
    if not pc.any(mask).as_py():
        return column
    hits = column.filter(mask)
    for kind, pattern, replacement in RULES:
        found = pc.sum(pc.count_substring_regex(hits, pattern)).as_py() or 0
        if found:
            counts[kind] += found
            hits = pc.replace_substring_regex(hits, pattern, _replacement(kind, replacement))
    return pc.replace_with_mask(column, mask, hits)
