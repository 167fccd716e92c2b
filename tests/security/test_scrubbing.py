"""The planted corpus never leaves the store unscrubbed: not in any exported byte, not in the review queue.

The corpus is planted in runs (prompts and outputs), feedback corrections, explicit pairs and
annotations of a real store (PostgreSQL and SQLite), through the ``kaizen`` command as an operator
would load it; pairs are mined, and the store is exported as DPO and SFT (JSONL and Parquet).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import phonenumbers
import pytest
from sqlalchemy.orm import Session, sessionmaker
from stdnum import iban, luhn
from stdnum.de import idnr
from stdnum.es import dni
from stdnum.fr import nir
from stdnum.in_ import aadhaar

from controllers.data.pii import scrub
from controllers.gateway.review_views import review_queue
from tests.security.scrub_corpus import corpus
from tests.security.scrub_support import exported_texts, kaizen, plant, survivors

ITEMS = corpus()
CHECKSUMS: dict[str, Callable[[str], bool]] = {
    "credit-card": luhn.is_valid,
    "iban-spaced": iban.is_valid,
    "iban-plain": iban.is_valid,
    "in-aadhaar": aadhaar.is_valid,
    "de-steuer-id": idnr.is_valid,
    "fr-insee": nir.is_valid,
    "es-dni": dni.is_valid,
}
NATIONAL_REGION = ["US", "GB", "GB", "DE", "FR", "JP", "AU", "US"]


def test_the_corpus_is_large_varied_and_real_formats() -> None:
    assert len(ITEMS) >= 150
    assert len({item.category for item in ITEMS}) >= 20
    assert corpus() == ITEMS  # seeded: the same values every time
    for item in ITEMS:
        check = CHECKSUMS.get(item.category)
        if check:  # python-stdnum, not our generator, says the checksum is right
            assert check(item.value.replace(" ", "").replace("-", "")), item
    phones = [item for item in ITEMS if item.category.startswith("phone")]
    for index, item in enumerate(phones):
        region = None if item.value.startswith("+") else NATIONAL_REGION[index % 8]
        assert phonenumbers.is_possible_number(phonenumbers.parse(item.value, region)), item


def test_every_planted_value_is_replaced_by_its_kind() -> None:
    for item in ITEMS:
        counts: Counter[str] = Counter()
        scrubbed = scrub(item.text, counts)
        assert item.value not in scrubbed, item
        assert counts[item.kind] >= 1, (item, scrubbed)


@pytest.mark.parametrize("method", ["DPO", "SFT"])
def test_no_planted_value_survives_an_export(store_url: str, tmp_path: Path, method: str) -> None:
    plant(store_url, tmp_path, ITEMS)
    out = tmp_path / "snapshot"
    exported = kaizen("export", str(out), "--method", method, "--database-url", store_url)
    assert exported.returncode == 0, exported.stderr
    manifest = json.loads(exported.stdout)
    assert manifest["train_rows"] + manifest["eval_rows"] >= len(ITEMS)
    assert {"SECRET", "EMAIL", "PHONE", "IBAN", "NATIONAL_ID", "IP", "PRIVATE_KEY"} <= set(
        manifest["scrubbed"]
    )
    texts = exported_texts(out)
    assert any(name.endswith(".parquet") for name in manifest["files"]) == (method == "DPO")
    assert survivors(ITEMS, texts) == []
    assert "[EMAIL]" in "".join(texts)
    assert "Refund the deposit to IBAN [IBAN]" in "".join(texts)


def test_the_review_queue_shows_no_planted_value(
    store_url: str, factory: sessionmaker[Session], tmp_path: Path
) -> None:
    plant(store_url, tmp_path, ITEMS)
    with factory() as session:
        queue = review_queue(session, limit=10_000)
    assert len(queue["pairs"]) >= len(ITEMS)
    assert len(queue["annotations"]) == len(ITEMS)
    shown = [json.dumps(queue, ensure_ascii=False, default=str)]
    assert survivors(ITEMS, shown) == []
    assert "Please forward the invoice to [EMAIL] before Friday." in shown[0]


CODE = '''
import hashlib
from dataclasses import dataclass


@dataclass
class Retry:
    attempts: int = 3
    backoff_s: float = 0.5

    def delays(self) -> list[float]:
        return [self.backoff_s * 2**i for i in range(self.attempts)]


def digest(data: bytes) -> str:
    """sha256 of data; see RFC 6234, section 8.2.1 and issue #1432 (fixed in v2.14.3)."""
    return hashlib.sha256(data).hexdigest()[:12]


for port in (8080, 8443, 9090):
    print(f"listening on {port} at 2025-03-14 09:30:00, build 4711, commit 3f9c2ab")
'''
PROSE = (
    "On 14 March 2025 the team shipped release 3.2.1 to 12 clusters in 4 regions. Latency dropped "
    "from 230 ms to 180 ms (p99), and 97.5% of 1,204 requests succeeded on the first try. The next "
    "review is at 10:30 on Tuesday; bring the figures for Q1 2025 and the 2 open incidents (#88, #91). "
    "Use Python 3.11 or 3.12, numpy 2.1 and at most 8 workers per node."
)


@pytest.mark.parametrize("text", [CODE, PROSE], ids=["code", "prose"])
def test_ordinary_code_and_prose_keep_most_of_their_text(text: str) -> None:
    counts: Counter[str] = Counter()
    scrubbed = scrub(text, counts)
    assert len(scrubbed) >= 0.97 * len(text), counts
    assert sum(counts.values()) <= 1, (counts, scrubbed)


def test_decided_cases_uuids_and_full_shas_are_scrubbed_short_shas_are_kept() -> None:
    # Some credentials are UUID-shaped and a 40-hex GCP private_key_id looks exactly like a git SHA:
    # both go; a short SHA (7-12 hex) stays.
    text = "request 3f2b8c1e-9a4d-4e5f-8b6a-1c2d3e4f5a6b at commit 9fceb02d0ae598e95dc970b74767f19372d61af8, short 9fceb02"
    scrubbed = scrub(text)
    assert "3f2b8c1e-9a4d" not in scrubbed
    assert "9fceb02d0ae5" not in scrubbed
    assert scrubbed.endswith("short 9fceb02")
