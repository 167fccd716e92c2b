"""PII and secret scrubbing: every kind is caught, code survives, and both engines agree."""

from __future__ import annotations

import time
from collections import Counter

import pyarrow as pa
import pytest

from controllers.data.pii import scrub, scrub_column

PLANTED = [
    ("EMAIL", "reach me at jane.doe+work@example.co.uk please"),
    ("PHONE", "call +1 415-555-0132 tomorrow"),
    ("PHONE", "office (030) 901 820 44"),
    ("IP", "the host 192.168.10.254 is down"),
    ("IP", "v6 2001:0db8:85a3:0000:0000:8a2e:0370:7334 too"),
    ("CARD", "card 4111 1111 1111 1111 exp 12/29"),
    ("CARD", "card 5500-0000-0000-0004"),
    ("SECRET", "AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE"),
    ("SECRET", "token ghp_0123456789abcdefghijklmnopqrstuvwxyzAB"),
    ("SECRET", "OPENAI_API_KEY=sk-proj-Abcdefghijklmnopqrstuvwxyz012345"),
    ("SECRET", "stripe sk_live_51Habcdefghijklmnopqrstuv"),
    ("SECRET", "slack xoxb-1234567890-abcdefghijkl"),
    ("SECRET", "google AIzaSyA1234567890abcdefghijklmnopqrstuv"),
    ("SECRET", "hf hf_abcdefghijklmnopqrstuvwxyzABCDEFGH"),
    (
        "SECRET",
        "jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
    ),
    ("SECRET", "password: hunter2hunter2"),
    ("SECRET", "digest 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"),
    ("SECRET", "blob Zm9vYmFyMTIzNDU2Nzg5MGFiY2RlZmdoaWprbG1ub3A0NTY3"),
    ("PRIVATE_KEY", "-----BEGIN RSA PRIVATE KEY-----\nMIIEow\nabc\n-----END RSA PRIVATE KEY-----"),
]


@pytest.mark.parametrize(("kind", "text"), PLANTED, ids=[f"{k}:{t[:18]}" for k, t in PLANTED])
def test_each_planted_value_is_replaced_and_counted(kind: str, text: str) -> None:
    counts: Counter[str] = Counter()
    scrubbed = scrub(text, counts)
    assert f"[{kind}]" in scrubbed
    assert counts[kind] >= 1
    secret = text.split()[-1] if kind not in ("PHONE", "CARD", "PRIVATE_KEY", "IP") else None
    if secret and len(secret) > 8:
        assert secret not in scrubbed


def test_ordinary_code_and_prose_pass_unchanged() -> None:
    code = "def add(a, b):\n    return a + b  # version 3.11, 200 OK, see issue #42 and RFC 7231\n"
    prose = "The build took 12 minutes on 2 cores; retry at 10:30 with 4 workers."
    assert scrub(code) == code
    assert scrub(prose) == prose


def test_row_and_column_engines_agree() -> None:
    texts = [t for _, t in PLANTED] + ["plain text", "x = compute(1, 2)"]
    row_counts: Counter[str] = Counter()
    by_row = [scrub(t, row_counts) for t in texts]
    column_counts: Counter[str] = Counter()
    by_column = scrub_column(pa.array(texts), column_counts).to_pylist()
    assert by_column == by_row
    assert column_counts == row_counts


def _corpus_by_category() -> dict[str, list[str]]:
    from tests.security.scrub_corpus import corpus

    by_category: dict[str, list[str]] = {}
    for item in corpus():
        by_category.setdefault(item.category, []).append(item.text)
    return by_category


CORPUS = _corpus_by_category()


@pytest.mark.parametrize("category", sorted(CORPUS))
def test_both_engines_agree_on_every_category(category: str) -> None:
    texts = CORPUS[category]
    row_counts: Counter[str] = Counter()
    by_row = [scrub(t, row_counts) for t in texts]
    column_counts: Counter[str] = Counter()
    by_column = scrub_column(pa.chunked_array([texts[:3], texts[3:]]), column_counts).to_pylist()
    assert by_column == by_row
    assert column_counts == row_counts
    assert by_row != texts
    assert sum(row_counts.values()) >= len(texts)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("DB_PASSWORD=hunter2hunter2 and go", "DB_PASSWORD=[SECRET] and go"),
        ("postgres://admin:pw-123@db:5432/app", "postgres://[SECRET]@db:5432/app"),
        ("curl https://u:p4ss@10.0.0.7/x", "curl https://[SECRET]@[IP]/x"),
        ("ping ::1 and fe80::1 and 2001:db8:: now", "ping [IP] and [IP] and [IP] now"),
        ('mail jürgen@bücher.de or "ops team"@corp.example', "mail [EMAIL] or [EMAIL]"),
        ("IBAN DE89370400440532013000 paid", "IBAN [IBAN] paid"),
        ("slice x[1:2] and a::b and 10:30:45", "slice x[1:2] and a::b and 10:30:45"),
    ],
)
def test_named_cases_scrub_the_value_and_keep_the_context(text: str, expected: str) -> None:
    assert scrub(text) == expected
    assert scrub_column(pa.array([text]), Counter()).to_pylist() == [expected]


@pytest.mark.parametrize(
    "hostile",
    ["a" * 200_000, "aB3" * 60_000, "f:" * 60_000, "a.b@c." * 30_000, "http://a:" * 20_000, "1" * 200_000],
    ids=["letters", "base64ish", "ipv6ish", "emailish", "urlish", "digits"],
)
def test_row_scrubbing_is_linear_on_hostile_text(hostile: str) -> None:
    """A prompt may be 200,000 characters; a backtracking engine took minutes on the first of these.
    The bound is two orders of magnitude above what RE2 needs, so only a backtracking engine trips it."""
    started = time.perf_counter()
    scrub(hostile)
    assert time.perf_counter() - started < 15
