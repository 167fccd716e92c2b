"""The dashboard's training panel: the policy's TrainingRuns with their metrics, and its champions.

Both come from the operator's summaries of the Kubernetes objects (``loop_objects_view``), which the
operator writes as it writes their status; each table says so, and when it last saw a change. Cells
carry ``data-field`` and rows ``data-run`` / ``data-model`` so a test can hold them to the JSON API.
"""

from __future__ import annotations

from typing import Any

from controllers.gateway.ui_html import number, text

RUN_COLUMNS = (
    ("State", "state"),
    ("Trigger", "trigger"),
    ("Method", "method"),
    ("Train rows", "trainRows"),
    ("Train loss", "trainLoss"),
    ("Eval loss", "evalLoss"),
    ("Preference accuracy", "preferenceAccuracy"),
    ("Reward margin", "rewardMargin"),
    ("Steps", "steps"),
    ("GPU-hours", "gpuHours"),
    ("ShadowModel", "shadowModel"),
    ("Finished", "completionTime"),
)


def _cell(value: object, key: str) -> str:
    return f'<td data-field="{key}">{number(value)}</td>'


def _run_row(run: dict[str, Any]) -> str:
    values = {**(run.get("metrics") or {}), **run}
    cells = "".join(_cell(values.get(key), key) for _, key in RUN_COLUMNS)
    ready = run.get("ready") or {}
    why = f' title="{text(ready.get("message"))}"' if ready.get("message") else ""
    return f'<tr data-run="{text(run["name"])}"{why}><th scope="row">{text(run["name"])}</th>{cells}</tr>'


def training_runs(runs: list[dict[str, Any]]) -> str:
    if not runs:
        return "<p>No TrainingRun of this policy has been reported by the operator yet.</p>"
    heads = "".join(f'<th scope="col">{label}</th>' for label, _ in RUN_COLUMNS)
    rows = "".join(_run_row(run) for run in runs)
    # Twelve columns are wider than the page: the table scrolls in a region a keyboard can focus.
    return (
        '<div class="scroll" role="region" aria-label="Training runs" tabindex="0">'
        '<table data-figure="trainingRuns"><caption>The newest TrainingRuns of this policy, newest first, with the '
        "trainer's metrics (held-out split), as the operator last recorded them</caption>"
        f'<thead><tr><th scope="col">TrainingRun</th>{heads}</tr></thead><tbody>{rows}</tbody></table></div>'
    )


def champions(recorded: dict[str, Any] | None) -> str:
    """The LearningPolicy's own record of its champions, with the TrainingRun behind each."""
    if recorded is None:
        return "<p>The operator has not recorded this policy's status yet.</p>"
    rows = "".join(
        f'<tr data-model="{text(entry["shadowModel"])}"><th scope="row">{text(entry["shadowModel"])}</th>'
        f'<td data-field="trainingRun">{text(entry.get("trainingRun") or "—")}</td>'
        f'<td data-field="promotedAt">{text(entry.get("promotedAt") or "—")}</td>'
        f'<td data-field="retiredAt">{text(entry.get("retiredAt") or "—")}</td>'
        f'<td data-field="reason">{text(entry.get("reason") or "")}</td></tr>'
        for entry in recorded.get("lineage") or []
    )
    if not rows:
        rows = '<tr><td colspan="5">No champion promoted by this policy yet.</td></tr>'
    ready = recorded.get("ready") or {}
    state = f"{text(ready.get('reason') or '—')}: {text(ready.get('message') or '')}"
    return (
        f'<p>Policy: <span data-figure="policyReady">{state}</span></p>'
        '<table data-figure="championHistory"><caption>Champions, newest first, as the LearningPolicy records them'
        '</caption><thead><tr><th scope="col">ShadowModel</th><th scope="col">From TrainingRun</th>'
        '<th scope="col">Promoted</th><th scope="col">Retired</th><th scope="col">Why</th></tr></thead>'
        f"<tbody>{rows}</tbody></table>"
    )
