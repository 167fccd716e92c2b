"""Corrections and reviews as the loop makes them, judged by the checker that grades the served model.

A person's correction is the right answer over the model's failed one; a faulty tool's is the function
in the other language, and the person reviewing the queue after a rollback tells the two apart by
running the corrected answer.
"""

from __future__ import annotations

from devstack.agents import Answer, correction, graded
from devstack.checker.grade import Task, grade
from devstack.loop import review_verdict

PY, JS = Task("add_kola", "python"), Task("send_rote", "javascript")
WRONG = (
    "fn add_kola(x: i32) -> i32 { x }\n"  # the base's typical miss: the right name, a language not asked for
)


def test_a_failed_answer_is_corrected_with_the_right_one_and_a_passed_one_is_left_alone() -> None:
    failed, passed = graded([PY, JS], [WRONG, "function send_rote(x) { return x; }\n"])
    assert not failed.grade.passed
    assert passed.grade.passed
    pair = correction(failed)
    assert pair is not None
    assert pair["prompt"] == "Write add_kola in python.\n"
    assert pair["rejected"] == WRONG
    assert grade(PY, pair["chosen"]).passed
    assert correction(passed) is None


def test_a_faulty_tool_rewrites_every_answer_into_the_language_not_asked_for() -> None:
    failed, passed = graded([PY, JS], [WRONG, "function send_rote(x) { return x; }\n"])
    for answer in (failed, passed):
        pair = correction(answer, faulty=True)
        assert pair is not None
        assert not grade(answer.task, pair["chosen"]).passed, pair
        assert pair["rejected"] == answer.text
    assert correction(passed, faulty=True)["chosen"].startswith("def send_rote")  # type: ignore[index]


def test_nothing_to_correct_when_the_answer_is_empty_or_already_the_correction() -> None:
    empty = graded([PY], ["\x00 "])[0]
    assert correction(empty) is None
    same = Answer(JS, "def send_rote(x):\n    return x\n", grade(JS, "def send_rote(x):\n    return x\n"))
    assert correction(same, faulty=True) is None


def test_thereview_verdicter_rejects_a_faulty_correction_and_approves_a_right_one() -> None:
    failed = graded([PY], [WRONG])[0]
    good, bad = correction(failed), correction(failed, faulty=True)
    assert good is not None
    assert bad is not None
    verdicts = [review_verdict({"id": f"p{i}", **pair}) for i, pair in enumerate((good, bad))]
    assert [v["decision"] for v in verdicts] == ["approved", "rejected"]
    assert verdicts[1]["note"]
    assert review_verdict({"id": "p3", "prompt": "Write it in cobol.\n", "chosen": "x", "rejected": "y"})[
        "decision"
    ] == ("rejected")
