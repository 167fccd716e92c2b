"""The coder task's corpus and its held-out split: what makes the loop's measurements honest."""

from __future__ import annotations

import random
import re

from devstack.checker import heldout
from devstack.checker.grade import LANGUAGES, Task
from devstack.checker.passrate import PassRate
from trainer import tiny_coder

DOC = re.compile(r"Write (?P<name>\w+) in (?P<asked>\w+)\.\n(?P<answer>.*)<\|eos\|>", re.S)


def parsed(corpus: list[str]) -> list[re.Match[str]]:
    matches = [DOC.fullmatch(document) for document in corpus]
    assert all(matches)
    return [m for m in matches if m]


def test_the_corpus_is_deterministic_and_never_contains_a_held_out_name() -> None:
    corpus = tiny_coder.documents(3000, "<|eos|>")
    assert corpus == tiny_coder.documents(3000, "<|eos|>")
    assert corpus != tiny_coder.documents(3000, "<|eos|>", seed=1)
    names = [m["name"] for m in parsed(corpus)]
    assert not any(tiny_coder.held_out(name) for name in names)
    assert len(set(names)) > 0.75 * len(names)  # names repeat too rarely to be memorised: they must be copied


def test_the_corpus_answers_in_the_asked_language_about_half_the_time() -> None:
    documents = parsed(tiny_coder.documents(4000, "<|eos|>"))
    followed = sum(m["answer"] == tiny_coder.answer(m["name"], m["asked"]) for m in documents) / len(
        documents
    )
    expected = tiny_coder.FOLLOW + (1 - tiny_coder.FOLLOW) / len(tiny_coder.WRITTEN)  # 0.475
    assert abs(followed - expected) < 3 * (expected * (1 - expected) / len(documents)) ** 0.5
    assert {m["asked"] for m in documents} == set(tiny_coder.ASKED)


def test_the_split_holds_out_about_a_third_of_all_names_on_both_sides_of_every_verb() -> None:
    every = [
        f"{v}_{a}{b}" for v in tiny_coder.VERBS for a in tiny_coder.SYLLABLES for b in tiny_coder.SYLLABLES
    ]
    held = [name for name in every if tiny_coder.held_out(name)]
    assert abs(len(held) / len(every) - 1 / 3) < 0.02
    for verb in tiny_coder.VERBS:
        assert any(name.startswith(verb + "_") for name in held)


def test_held_out_tasks_are_held_out_and_ask_for_what_the_checker_runs() -> None:
    items = heldout.tasks(200)
    assert len(set(items)) == 200  # 200 different tasks, not 200 draws
    assert heldout.tasks(200) == items  # the same ones every time: measurements compare
    assert len({t.name for t in items}) > 150
    assert all(tiny_coder.held_out(t.name) for t in items)
    assert {t.language for t in items} == set(LANGUAGES) == set(tiny_coder.ASKED)
    assert not any(tiny_coder.held_out(t.name) for t in heldout.tasks(200, held=False))
    assert Task.from_prompt(items[0].prompt) == items[0]


def test_names_come_only_from_the_side_asked_for() -> None:
    rng = random.Random(3)
    source = tiny_coder.names(rng, held=True)
    assert all(tiny_coder.held_out(next(source)) for _ in range(500))


def test_the_wilson_interval_stays_inside_zero_and_one_and_covers_the_rate() -> None:
    for passed, tasks in [(0, 200), (200, 200), (37, 200), (1, 3)]:
        rate = PassRate(passed, tasks)
        low, high = rate.interval()
        assert 0.0 <= low <= rate.rate <= high <= 1.0
    assert PassRate(0, 200).interval()[1] > 0.0  # zero successes is not zero uncertainty
    low, high = PassRate(100, 200).interval()
    assert abs(low - 0.431) < 0.002
    assert abs(high - 0.569) < 0.002
