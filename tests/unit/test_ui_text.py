"""``ui_html.text``: every value on a page is scrubbed and escaped, but a timestamp stays a timestamp.

The phone rules read the seconds and microseconds of a time (``:02.413610``) as a French number; a
browser test saw ``00:10:[PHONE]+00:00`` where the Experiment's decidedAt belonged. Only a whole,
valid ISO 8601 timestamp in extended format is exempt: anything around it, or digits that merely
parse as a compact date, are still scrubbed.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from controllers.gateway.ui_html import is_moment, text


def test_every_microsecond_of_a_minute_is_shown_as_written() -> None:
    start = datetime(2026, 12, 7, 0, 10, tzinfo=UTC)
    for step in range(0, 60_000_000, 1_234_567):  # every second of a minute, odd microseconds
        moment = (start + timedelta(microseconds=step)).isoformat()
        assert text(moment) == moment


@pytest.mark.parametrize(
    "moment",
    ["2026-12-01T10:00:00Z", "2026-12-07 00:10:02", "2026-12-07T00:10", "2026-12-07T00:10:02.5-05:00"],
)
def test_the_shapes_the_operator_and_the_store_write_are_timestamps(moment: str) -> None:
    assert is_moment(moment)
    assert text(moment) == moment


@pytest.mark.parametrize(
    ("value", "kept"),
    [
        ("call 06 12 34 56 78", "call "),
        ("2026-12-07T00:10:02Z call +1 415 555 0100", "2026-12-07T00:10:02Z call "),
        ("0612345678", ""),
        ("at 2026-12-07T00:10:02Z mail ana@example.com", "at 2026-12-07T00:10:02Z mail "),
    ],
)
def test_text_around_a_time_or_digits_that_look_like_one_are_still_scrubbed(value: str, kept: str) -> None:
    shown = text(value)
    assert shown.startswith(kept)
    assert shown != value
    assert "[" in shown


@pytest.mark.parametrize("value", ["20261207T001002", "2026-13-07T00:10:02Z", "2026-12-07T00:10:02Z<b>"])
def test_only_a_whole_valid_extended_timestamp_is_exempt(value: str) -> None:
    assert not is_moment(value)


def test_a_timestamp_is_still_escaped() -> None:
    assert "<" not in text("2026-12-07T00:10:02Z<script>")
