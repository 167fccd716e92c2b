"""The loop dashboard's panel: ``loop_view``'s answer written as HTML, figure by figure.

The panel is what the page polls (``/ui/loop/{ns}/{name}/panel``) and swaps in place, so it is the
whole of the changing part and nothing else. Every figure carries ``data-figure`` (and a table row
``data-variant`` / ``data-source``) so a test can read it off the page and hold it to the JSON API;
numbers are written with ``number`` alone, the one format of the page. Tables have captions and
header cells with scopes; each chart says in its caption what it draws.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from controllers.gateway.ui_charts import Chart, draw
from controllers.gateway.ui_html import number, text
from controllers.gateway.ui_training import champions, training_runs


def _figure(label: str, key: str, value: object) -> str:
    return f'<div><dt>{text(label)}</dt><dd data-figure="{key}">{number(value)}</dd></div>'


def _inflow(view: dict[str, Any]) -> str:
    flow, backlog = view["inflow"], view["reviewBacklog"]
    figures = "".join(
        [
            _figure("Runs", "runs", flow["runs"]),
            _figure("Runs in the last 24 h", "runsLast24h", flow["runsLast24h"]),
            _figure("Feedback", "feedback", flow["feedback"]),
            _figure("Rewarded runs", "rewardedRuns", flow["rewardedRuns"]),
            _figure("Mean reward", "meanReward", flow["meanReward"]),
            _figure("Pairs awaiting review", "backlogPairs", backlog["pairs"]),
            _figure("Flagged runs awaiting review", "backlogAnnotations", backlog["annotations"]),
        ]
    )
    return f'<section aria-labelledby="inflow-h"><h2 id="inflow-h">Data inflow</h2><dl class="figures">{figures}</dl></section>'


def _pairs(view: dict[str, Any]) -> str:
    rows = (
        "".join(
            f'<tr data-source="{text(p["source"])}"><th scope="row">{text(p["source"])}</th>'
            f'<td data-field="pending">{number(p["pending"])}</td><td data-field="approved">{number(p["approved"])}</td>'
            f'<td data-field="rejected">{number(p["rejected"])}</td></tr>'
            for p in view["pairs"]
        )
        or '<tr><td colspan="4">No preference pairs yet.</td></tr>'
    )
    return (
        '<section aria-labelledby="pairs-h"><h2 id="pairs-h">Preference pairs by source</h2>'
        "<table><caption>Pairs of this track, by where they came from and their review state</caption>"
        '<thead><tr><th scope="col">Source</th><th scope="col">Awaiting review</th>'
        f'<th scope="col">Approved</th><th scope="col">Rejected</th></tr></thead><tbody>{rows}</tbody></table></section>'
    )


def _route(view: dict[str, Any]) -> str:
    route, lineage = view["route"], view["lineage"]
    chain = "".join(f"<li>{text(name)}</li>" for name in lineage) or "<li>none yet</li>"
    if route is None:
        serving = "<p>No route carries this policy's traffic yet.</p>"
    else:
        weights = ", ".join(f"{text(k)} {number(v)}%" for k, v in route["weights"].items())
        serving = (
            f'<p>Champion: <strong data-figure="champion">{text(route["champion"])}</strong>. '
            f'Weights: <span data-figure="weights">{weights}</span>.</p>'
        )
    return (
        '<section aria-labelledby="route-h"><h2 id="route-h">Champion and training</h2>'
        f'{serving}<h3>Champion lineage</h3><ol class="lineage" data-figure="lineage">{chain}</ol>'
        f"<h3>Champion history</h3>{champions(view['policyStatus'])}"
        f"<h3>Training runs</h3>{training_runs(view['trainingRuns'])}</section>"
    )


def _variants(experiment: dict[str, Any]) -> str:
    rows = "".join(
        f'<tr data-variant="{text(v["variant"])}"><th scope="row">{text(v["variant"])}</th><td>{text(v["role"])}</td>'
        + "".join(
            f'<td data-field="{key}">{number(v[key])}</td>'
            for key in ("weight", "samples", "meanReward", "lower", "upper")
        )
        + "</tr>"
        for v in experiment["variants"]
    )
    heads = "".join(
        f'<th scope="col">{label}</th>'
        for label in ("Variant", "Role", "Weight %", "Rewards", "Mean reward", "Lower", "Upper")
    )
    return f"<table><caption>Per variant, from the traffic recorded up to now (what kaizen experiment report computes before a decision)</caption><thead><tr>{heads}</tr></thead><tbody>{rows}</tbody></table>"


def _when(value: object) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value)) if value else None
    except ValueError:
        return None


def _marker(experiment: dict[str, Any]) -> int | None:
    """Where the charts mark the decision: the snapshot at the Experiment's own decision when it has
    decided, else the snapshot where the confidence sequence first excluded zero."""
    times = [_when(t) for t in experiment["timeline"]["times"]]
    decided = _when((experiment.get("object") or {}).get("decidedAt"))
    if decided is not None:
        before = [i for i, t in enumerate(times) if t is not None and t <= decided]
        return before[-1] if before else None
    evidence = _when(experiment["decidedAt"])
    return times.index(evidence) if evidence in times else None


def _charts(experiment: dict[str, Any], ident: str) -> str:
    line = experiment["timeline"]
    marker = _marker(experiment)
    charts = [
        Chart(
            "Reward over time per model",
            "Weighted mean reward of each variant at each snapshot.",
            line["means"],
        )
    ]
    for name, bounds in line["bounds"].items():
        caption = f"Confidence sequence of {name} minus the champion; the line at zero is no difference."
        mids = [None if lo is None or hi is None else (lo + hi) / 2 for lo, hi in bounds]
        charts.append(
            Chart(
                f"Confidence sequence: {name}",
                caption,
                {name: mids},
                [tuple(b) for b in bounds],
                True,
                marker,
            )
        )
    seen = {name for shares in line["traffic"] for name in shares}
    names = [name for name in line["means"] if name in seen] + sorted(seen - set(line["means"]))
    traffic = {name: [shares.get(name) for shares in line["traffic"]] for name in names}
    charts.append(
        Chart(
            "Weights over time",
            "Share of requests (%) each variant served per interval.",
            traffic,
            (),
            False,
            marker,
        )
    )
    return "".join(draw(chart, f"{ident}-c{i}") for i, chart in enumerate(charts))


STATUS_COLUMNS = (
    ("Weight %", "weight"),
    ("Rewards", "samples"),
    ("Mean reward", "meanReward"),
    ("Lower", "confidenceLower"),
    ("Upper", "confidenceUpper"),
)


def _status_rows(found: dict[str, Any]) -> str:
    """A decided Experiment's own rows: the table ``kaizen experiment report`` prints for it."""
    heads = "".join(f'<th scope="col">{label}</th>' for label, _ in STATUS_COLUMNS)
    rows = "".join(
        f'<tr data-status-variant="{text(row["name"])}"><th scope="row">{text(row["name"])}</th>'
        + "".join(f'<td data-field="{key}">{number(row.get(key))}</td>' for _, key in STATUS_COLUMNS)
        + "</tr>"
        for row in found["variants"]
    )
    return (
        "<table><caption>At the decision: the Experiment's status, as kaizen experiment report prints it"
        f'</caption><thead><tr><th scope="col">Variant</th>{heads}</tr></thead><tbody>{rows}</tbody></table>'
    )


def _decision(found: dict[str, Any] | None) -> str:
    """The Experiment's own decision and drift watch, from the operator's summary of it."""
    if found is None:
        return '<p><span data-figure="decision">Not recorded</span>: the operator has not summarised this Experiment yet.</p>'
    when = found.get("decidedAt")
    at = f' at <time data-figure="objectDecidedAt">{text(when)}</time>' if when else ""
    said = f'<p>Decision: <strong data-figure="decision">{text(found["decision"])}</strong>{at}. {text(found.get("reason") or "")}</p>'
    drift = found.get("drift")
    watch = (
        f'<p>Drift watch: <strong data-figure="drift">{text(drift["stage"])}</strong>. {text(drift["message"])}</p>'
        if drift
        else '<p>Drift watch: <span data-figure="drift">none</span> (only a promoted champion is watched).</p>'
    )
    table = _status_rows(found) if when and found.get("variants") else ""
    return said + watch + table


def _experiment(experiment: dict[str, Any], index: int) -> str:
    ident = f"exp{index}"
    heading = f'<h3 id="{ident}-h">{text(experiment["experiment"])}{" (running on the route)" if experiment["current"] else ""}</h3>'
    decision = _decision(experiment.get("object"))
    if not experiment["variants"]:
        return f'<article aria-labelledby="{ident}-h">{heading}{decision}<p>No request recorded yet.</p></article>'
    decided = experiment["decidedAt"]
    verdict = (
        f'The confidence sequence excluded zero at <time data-figure="decidedAt">{text(decided)}</time>.'
        if decided
        else '<span data-figure="decidedAt">No decision yet</span>: every confidence sequence still includes zero.'
    )
    return (
        f'<article class="experiment" aria-labelledby="{ident}-h" data-experiment="{text(experiment["experiment"])}">'
        f"{heading}{decision}<p>Champion {text(experiment['champion'])}; alpha {number(experiment['alpha'])}. {verdict}</p>"
        f"{_variants(experiment)}{_charts(experiment, ident)}</article>"
    )


def panel(view: dict[str, Any]) -> str:
    """The dashboard's changing part, as safe HTML."""
    experiments = (
        "".join(_experiment(e, i) for i, e in enumerate(view["experiments"])) or "<p>No experiment yet.</p>"
    )
    return (
        _inflow(view)
        + _pairs(view)
        + _route(view)
        + f'<section aria-labelledby="experiments-h"><h2 id="experiments-h">Experiments</h2>{experiments}</section>'
    )
