"""The loop dashboard shows the API's numbers, and follows new data and a decision without a reload.

The loop is written through the gateway (``seed``), then the page's figures are read off the page
and held to ``GET /v1/loop/{ns}/{name}`` and to the experiment series ``kaizen experiment report``
reads (``GET /v1/experiments/{ns}/{name}/series``): each variant's reward count must be the number of
rewards of that variant in the series' stream. On both stores.
"""

from __future__ import annotations

from typing import Any

import httpx
from playwright.sync_api import Page, expect

from controllers.gateway.ui_html import number
from devstack.gateway import GatewayProcess
from tests.browser import seed
from tests.browser.conftest import bearer, sign_in

DASHBOARD = f"/ui/loop/{seed.NAMESPACE}/{seed.POLICY}"
FIGURES = {
    "runs": ("inflow", "runs"),
    "runsLast24h": ("inflow", "runsLast24h"),
    "feedback": ("inflow", "feedback"),
    "rewardedRuns": ("inflow", "rewardedRuns"),
    "meanReward": ("inflow", "meanReward"),
    "backlogPairs": ("reviewBacklog", "pairs"),
    "backlogAnnotations": ("reviewBacklog", "annotations"),
}


def api(gateway: GatewayProcess, path: str) -> dict[str, Any]:
    answer = httpx.get(f"{gateway.url}{path}", headers=bearer(), timeout=60)
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()
    return found


def loop(gateway: GatewayProcess) -> dict[str, Any]:
    return api(gateway, f"/v1/loop/{seed.NAMESPACE}/{seed.POLICY}")


def test_the_dashboard_shows_the_numbers_of_the_api_and_the_report(
    page: Page, gateway: GatewayProcess, store_url: str
) -> None:
    seed.seed_loop(gateway.url, store_url)
    view = loop(gateway)
    sign_in(page)
    page.get_by_role("link", name=f"{seed.NAMESPACE}/{seed.POLICY}").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Loop of {seed.NAMESPACE}/{seed.POLICY}")
    assert view["inflow"]["runs"] == 40
    assert view["inflow"]["feedback"] == 6
    for figure, (group, key) in FIGURES.items():
        expect(page.locator(f'[data-figure="{figure}"]')).to_have_text(number(view[group][key]))
    for pairs in view["pairs"]:
        row = page.locator(f'tr[data-source="{pairs["source"]}"]')
        for key in ("pending", "approved", "rejected"):
            expect(row.locator(f'[data-field="{key}"]')).to_have_text(number(pairs[key]))
    expect(page.locator('[data-figure="champion"]')).to_have_text(view["route"]["champion"])
    (experiment,) = view["experiments"]
    series = api(gateway, f"/v1/experiments/{seed.EXPERIMENT}/series")["series"]["stream"]
    for variant in experiment["variants"]:
        index = series["names"].index(variant["variant"])
        assert variant["samples"] == series["arm"].count(index)
        row = page.locator(f'tr[data-variant="{variant["variant"]}"]')
        for key in ("weight", "samples", "meanReward", "lower", "upper"):
            expect(row.locator(f'[data-field="{key}"]')).to_have_text(number(variant[key]))
    decided = experiment["decidedAt"]
    expect(page.locator('[data-figure="decidedAt"]')).to_have_text(decided or "No decision yet")
    expect(page.locator("figure.chart svg")).to_have_count(3)
    (run,) = view["trainingRuns"]
    row = page.locator(f'tr[data-run="{run["name"]}"]')
    expect(row.locator('[data-field="state"]')).to_have_text("Succeeded")
    for key in ("trainLoss", "evalLoss", "preferenceAccuracy", "steps"):
        expect(row.locator(f'[data-field="{key}"]')).to_have_text(number(run["metrics"][key]))
    expect(row.locator('[data-field="trainRows"]')).to_have_text(number(run["trainRows"]))
    expect(page.locator('[data-figure="decision"]')).to_have_text(experiment["object"]["decision"])
    expect(page.locator('[data-figure="drift"]')).to_have_text("none")
    for entry in view["policyStatus"]["lineage"]:
        champion = page.locator(f'tr[data-model="{entry["shadowModel"]}"]')
        expect(champion.locator('[data-field="trainingRun"]')).to_have_text(entry["trainingRun"])


def test_the_dashboard_follows_new_data_and_a_decision_without_a_reload(
    page: Page, gateway: GatewayProcess, store_url: str
) -> None:
    seed.seed_loop(gateway.url, store_url, requests=10, operator=False)
    sign_in(page)
    page.goto(DASHBOARD)
    expect(page.locator('[data-figure="runs"]')).to_have_text("10")
    expect(page.locator('[data-figure="decision"]')).to_have_text("Not recorded")  # no operator yet
    page.evaluate("window.notReloaded = true")
    seed.served(store_url, 10, 30)
    seed.runs(gateway.url, 10, 30, "runs-2")
    expect(page.locator('[data-figure="runs"]')).to_have_text("40")
    expect(page.locator('tr[data-variant="challenger"] [data-field="samples"]')).to_have_text(
        number(
            next(
                v["samples"]
                for v in loop(gateway)["experiments"][0]["variants"]
                if v["variant"] == "challenger"
            )
        )
    )
    # the decision lands: the operator promotes the challenger and the route carries it alone
    seed.route(gateway.url, {"champion": 0, "challenger": 100}, champion="challenger", key="route-2")
    expect(page.locator('[data-figure="champion"]')).to_have_text("challenger")
    expect(page.locator('[data-figure="lineage"] li')).to_have_text(["champion", "challenger"])
    # and the operator records the Experiment's own decision, its drift watch and the run behind it
    decided_at = loop(gateway)["experiments"][0]["timeline"]["times"][-1]
    rows = [{"name": v["variant"], "weight": v["weight"], "samples": v["samples"], "meanReward": v["meanReward"]}
            for v in loop(gateway)["experiments"][0]["variants"]]  # fmt: skip
    seed.experiment_status(store_url, {"decision": "Promote", "decidedAt": decided_at, "variants": rows,
        "decisionReason": "challenger better by 0.4",
        "conditions": [{"type": "Drift", "status": "False", "reason": "WaitingForTraffic",
                        "message": "waiting for 40 rewards", "lastTransitionTime": decided_at}]})  # fmt: skip
    seed.training_run(store_url)
    expect(page.locator('[data-figure="decision"]')).to_have_text("Promote")
    expect(page.locator('[data-figure="objectDecidedAt"]')).to_have_text(decided_at)
    expect(page.locator('[data-figure="drift"]')).to_have_text("WaitingForTraffic")
    for row in rows:
        cells = page.locator(f'tr[data-status-variant="{row["name"]}"]')
        expect(cells.locator('[data-field="samples"]')).to_have_text(number(row["samples"]))
        expect(cells.locator('[data-field="meanReward"]')).to_have_text(number(row["meanReward"]))
    expect(page.locator('tr[data-run="coder-0001"] [data-field="state"]')).to_have_text("Succeeded")
    expect(page.locator("#live")).to_contain_text("updated at")
    assert page.evaluate("window.notReloaded") is True
