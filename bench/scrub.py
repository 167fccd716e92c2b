"""Scrubbing engines side by side on a 10 MB text column: RE2 over the Arrow column, RE2 per row
(``scrub``), an older rule module per row when given, and the libraries considered for detection
(phonenumbers, detect-secrets, when importable).

    .venv/bin/python bench/scrub.py [--mb 10] [--old path/to/old_pii.py]

The column is ordinary agent text (code, prose, logs) with 5% of rows carrying one planted value from
``tests/security/scrub_corpus.py``. Prints MB/s per engine and the corpus coverage of each detector.
"""

from __future__ import annotations

import argparse
import importlib.util
import random
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import pyarrow as pa

from controllers.data.pii import scrub, scrub_column
from tests.security.scrub_corpus import corpus

FILLER = [
    "def handler_{i}(request):\n    data = validate(request.json)\n    return {{'status': 'ok', 'id': {i}}}\n",
    "The build for task {i} took 12 minutes on 2 cores; retry at 10:30 with 4 workers, see issue #{i}.",
    "INFO 2025-03-0{d} worker-{i} finished batch {i} in 0.{d}3s (200 OK), queue depth {d}",
    "Refactor the parser so that version 3.{d}.1 accepts trailing commas; add a test for case {i}.",
]


def column(megabytes: float, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    planted = [item.text for item in corpus()]
    rows: list[str] = []
    size = 0
    while size < megabytes * 1_000_000:
        i = len(rows)
        text = rng.choice(FILLER).format(i=i, d=i % 9 + 1)
        if rng.random() < 0.05:
            text += " " + rng.choice(planted)
        rows.append(text)
        size += len(text)
    return rows


def timed(label: str, megabytes: float, run: Callable[[], Any]) -> float:
    started = time.perf_counter()
    run()
    seconds = time.perf_counter() - started
    print(f"{label:<38}: {seconds:7.2f}s = {megabytes / seconds:7.2f} MB/s")
    return seconds


def _old_engine(path: str) -> Any:
    spec = importlib.util.spec_from_file_location("pii_old", path)
    assert spec
    assert spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=10.0)
    parser.add_argument("--old", help="a previous pii.py to compare against")
    args = parser.parse_args()
    rows = column(args.mb)
    array = pa.array(rows)
    print(f"{len(rows):,} rows, {args.mb} MB")
    if args.old:
        old = _old_engine(args.old)
        timed("old rules, RE2 column (scrub_column)", args.mb, lambda: old.scrub_column(array, Counter()))
        timed("old rules, Python re per row", args.mb, lambda: [old.scrub(t) for t in rows])
    timed("new rules, RE2 column (scrub_column)", args.mb, lambda: scrub_column(array, Counter()))
    timed("RE2 per row (google-re2, `scrub`)", args.mb, lambda: [scrub(t) for t in rows])
    _libraries(rows, args.mb)


def _libraries(rows: list[str], megabytes: float) -> None:
    try:
        import phonenumbers
    except ImportError:
        print("phonenumbers not installed")
    else:
        timed(
            "phonenumbers.PhoneNumberMatcher per row",
            megabytes,
            lambda: [list(phonenumbers.PhoneNumberMatcher(t, "US")) for t in rows],
        )
    try:
        from detect_secrets.core.scan import scan_line  # type: ignore[import-not-found]
        from detect_secrets.settings import default_settings  # type: ignore[import-not-found]
    except ImportError:
        print("detect-secrets not installed")
    else:
        with default_settings():
            timed("detect-secrets scan_line per row", megabytes, lambda: [list(scan_line(t)) for t in rows])


if __name__ == "__main__":
    main()
