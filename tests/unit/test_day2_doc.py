"""docs/day2.md keeps up with the CLI and the operator: every `kaizen` command it tells a person on
call to run exists with the options it shows, and every "Next:" hint `kaizen describe` gives is a
condition the page explains."""

from __future__ import annotations

import re
import shlex

import pytest
from typer.testing import CliRunner

from controllers.cli.hints import NEXT_STEPS, PAUSED
from controllers.cli.main import app
from tests.schemas import ROOT

PAGE = (ROOT / "docs" / "day2.md").read_text()
COMMAND = re.compile(r"`(kaizen [a-z][^`]*)`")
# What a page shows as a slot to fill in, replaced by a value the parser accepts.
SLOTS = {"NAME": "x", "POLICY": "x", "NAMESPACE": "default", "TEXT": "t", "SECONDS": "5", "N": "1"}


def commands() -> list[str]:
    found = sorted({m.group(1) for m in COMMAND.finditer(PAGE)})
    assert len(found) >= 15, found  # the page lost its commands: this test lost its subject
    return found


def _words(command: str) -> list[str]:
    cut = command.split(" / ")[0].split("  (")[0]
    return [SLOTS.get(word, word) for word in shlex.split(cut)[1:] if word != "…"]


@pytest.mark.parametrize("command", commands())
def test_each_command_the_page_shows_parses(command: str) -> None:
    # --help after the words: Typer checks the command and every option named before it, and exits 0
    # without reaching the cluster.
    words = _words(command)
    result = CliRunner().invoke(app, [*words, "--help"])
    assert result.exit_code == 0, f"{command}: {result.output}"


def test_every_describe_hint_is_a_condition_the_page_explains() -> None:
    for (_, reason), templates in NEXT_STEPS.items():
        if reason != PAUSED:
            assert f"`{reason}`" in PAGE, f"the page does not explain {reason}"
        for template in templates:
            program, verb = template.split()[:2]
            if program == "kaizen":
                assert f"kaizen {verb}" in PAGE, template
