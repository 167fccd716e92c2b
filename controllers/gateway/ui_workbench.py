"""The reviewer's workbench as HTML: the queues one may review, the page one reviews in, and its
figures (progress and agreement), every value passed through ``ui_html.text``.

The pair itself is not written here: ``ui_static/workbench.js`` reserves it and fills the prompt and
the two answers in with ``textContent`` (text the reservation already scrubbed), so a pair is never
markup. The answers are "Answer A" and "Answer B", positions only, in the order the reservation drew:
nothing on the page says which one is stored as chosen.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi.responses import HTMLResponse

from controllers.api.identity import Principal
from controllers.decisions.reviewing import REASON_TAGS
from controllers.gateway.ui_html import page, text

SHORTCUTS = (
    ("1 or a", "Answer A is better"),
    ("2 or b", "Answer B is better"),
    ("t", "Tie: both equally good"),
    ("x", "Both bad"),
    ("s", "Skip this pair (it goes back to the queue for others)"),
    ("n", "Take the next pair (after an error or an expiry)"),
    ("c", "Write a corrected answer"),
    ("Escape", "Leave the correction or note field (or close this dialog)"),
    ("?", "Show these shortcuts"),
)


@dataclass(frozen=True)
class Queue:
    """One queue a person may review: a namespace, or one policy of it, and how much awaits."""

    namespace: str
    policy: str | None
    pending: int


def share(value: float | None, reason: str | None) -> str:
    """An agreement figure as the page shows it: three decimals, or why it is undefined."""
    if value is None:
        return f"undefined because {reason or 'there is nothing to compare yet'}"
    return f"{value:.3f}"


def queues_page(queues: list[Queue], person: Principal) -> HTMLResponse:
    if queues:
        items = "\n".join(
            f'<li><a href="/ui/review?{_query(q.namespace, q.policy)}">'
            f"{text(q.namespace)}{'/' + text(q.policy) if q.policy else ' (all policies)'}</a>"
            f' <span class="note" data-pending="{text(q.namespace)}/{text(q.policy or "")}">'
            f"{text(q.pending)} pending</span></li>"
            for q in queues
        )
        listing = f'<ul class="policies">{items}</ul>'
    else:
        listing = "<p>None of your namespaces has a review queue you may open.</p>"
    body = f"""<section aria-labelledby="queues-h">
<h2 id="queues-h">Review queues</h2>
<p>Pick a queue: you will see one pair at a time, two answers side by side, and judge which is better.</p>
{listing}
</section>"""
    return page("Review", body, person)


def _query(namespace: str, policy: str | None) -> str:
    return f"namespace={text(namespace)}" + (f"&amp;policy={text(policy)}" if policy else "")


def _verdicts() -> str:
    buttons = (("left", "A is better", "1"), ("right", "B is better", "2"), ("tie", "Tie", "t"),
               ("bothBad", "Both bad", "x"))  # fmt: skip
    shown = "".join(
        f'<button type="button" data-verdict="{value}" aria-keyshortcuts="{key}">{label} '
        f'<kbd aria-hidden="true">{key}</kbd></button>'
        for value, label, key in buttons
    )
    return (
        f'<div class="verdicts" role="group" aria-label="Verdict">{shown}'
        '<button type="button" id="skip" aria-keyshortcuts="s">Skip <kbd aria-hidden="true">s</kbd></button>'
        "</div>"
    )


def _details() -> str:
    tags = "".join(
        f'<label class="tag"><input type="checkbox" name="tag" value="{text(tag)}"> {text(tag)}</label>'
        for tag in sorted(REASON_TAGS)
    )
    return f"""<div class="details">
<label for="correction">Corrected answer (optional: saved as a new pair, preferred over the losing answer)</label>
<textarea id="correction" rows="4" aria-keyshortcuts="c"></textarea>
<fieldset class="tags"><legend>Reasons (optional)</legend>{tags}</fieldset>
<label for="note">Note (optional)</label>
<input id="note" type="text" maxlength="4096" autocomplete="off">
</div>"""


def _pair() -> str:
    return f"""<article id="pair" class="card pair" tabindex="-1" aria-labelledby="pair-h" data-state="loading"
 aria-busy="true">
<h2 id="pair-h">Pair</h2>
<p id="expiry" class="note">Reserving the next pair…</p>
<h3>Prompt</h3>
<div id="prompt" class="text"></div>
<div class="answers">
<section aria-labelledby="answer-a-h"><h3 id="answer-a-h">Answer A</h3><div id="answer-a" class="text"></div></section>
<section aria-labelledby="answer-b-h"><h3 id="answer-b-h">Answer B</h3><div id="answer-b" class="text"></div></section>
</div>
{_verdicts()}
{_details()}
</article>
<div id="empty" class="card" hidden><p>Nothing left for you in this queue.</p>
<button type="button" id="again" aria-keyshortcuts="n">Check again <kbd aria-hidden="true">n</kbd></button></div>"""


def _help() -> str:
    rows = "".join(
        f'<tr><th scope="row"><kbd>{text(k)}</kbd></th><td>{text(d)}</td></tr>' for k, d in SHORTCUTS
    )
    return f"""<dialog id="help" aria-labelledby="help-h">
<h2 id="help-h">Keyboard shortcuts</h2>
<p>They do nothing while you type in the correction or note field: press Escape to leave it first.</p>
<table><caption>Shortcut and what it does</caption>{rows}</table>
<button type="button" id="help-close">Close</button>
</dialog>"""


def workbench_page(namespace: str, policy: str | None, figures_html: str, person: Principal) -> HTMLResponse:
    where = f"{namespace}/{policy}" if policy else f"{namespace} (all policies)"
    body = f"""<div id="workbench" data-namespace="{text(namespace)}" data-policy="{text(policy or "")}">
<p class="bar-row"><a href="/ui/review">All queues</a>
<button type="button" id="help-open" aria-keyshortcuts="?">Keyboard shortcuts <kbd aria-hidden="true">?</kbd></button></p>
<p id="announce" class="status" role="status">Queue {text(where)}.</p>
<p id="problem" class="problem" role="alert"></p>
<div class="bench">
<div class="work">{_pair()}</div>
<aside class="side" aria-label="Guidelines and figures">
<section class="card" aria-labelledby="guidelines-h"><h2 id="guidelines-h">Guidelines</h2>
<p id="guidelines-policy" class="note"></p><div id="guidelines" class="text">Shown with the first pair.</div></section>
<div id="figures">{figures_html}</div>
</aside>
</div>
{_help()}
</div>
<script src="/ui/static/workbench.js"></script>"""
    return page(f"Review {where}", body, person)


def figures(progress: dict[str, Any], tracks: list[dict[str, Any]]) -> str:
    """Progress through the queue and, per track (the namespace and each policy), agreement."""
    counts = (("pending", "Pending"), ("reservedByMe", "Reserved by you"), ("doneTodayByMe", "Done by you today"),
              ("doneByMe", "Done by you"), ("doneAll", "Verdicts by everyone"))  # fmt: skip
    dl = "".join(
        f'<div><dt>{label}</dt><dd data-figure="{key}">{text(progress[key])}</dd></div>'
        for key, label in counts
    )
    rows = "".join(_track_row(track) for track in tracks)
    return f"""<section class="card" aria-labelledby="progress-h"><h2 id="progress-h">Progress</h2>
<dl class="figures">{dl}</dl></section>
<section class="card" aria-labelledby="agreement-h"><h2 id="agreement-h">Agreement</h2>
<table><caption>Per track: Krippendorff's alpha between reviewers; people agreeing with the LLM judge</caption>
<thead><tr><th scope="col">Track</th><th scope="col">Judged items</th><th scope="col">Alpha</th>
<th scope="col">Judge vs people</th></tr></thead><tbody>{rows}</tbody></table></section>"""


def _track_row(found: dict[str, Any]) -> str:
    reviewers, judge = found["reviewers"], found["judge"]
    name = found["policy"] or f"all of {found['namespace']}"
    return (
        f'<tr data-track="{text(found["policy"] or "")}"><th scope="row">{text(name)}</th>'
        f'<td data-field="items">{text(found["items"])}</td>'
        f'<td data-field="alpha">{text(share(reviewers["alpha"], reviewers["reason"]))}</td>'
        f'<td data-field="judge">{text(share(judge["rate"], judge["reason"]))}</td></tr>'
    )
