"""The whole loop on one machine: pairs → TrainingRun (a real Ray job via the RayJob stand-in) →
ShadowModel (a real model server via the InferenceService stand-in) → Experiment fed by traffic through
the router → Promote; and a regressing challenger rolled back with the champion restored.

This test is about the machinery — who routes, records, decides and cleans up — so the agents' rewards
are scripted per served model (``Population.scripted``) on the fast ``kaizen-tiny`` base. That
training on corrections really makes the model better, and that a bad adapter is really caught, is
shown with rewards from the checker running what the served model wrote: tests/e2e/test_kaizen_up.py
(the demo's story) and bench/loop_outcome.py."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import Page, expect

from controllers.api.identity import Role
from controllers.gateway import auth
from controllers.gateway.ui_html import number
from devstack.agents import Population
from devstack.demo import demo_policy, routed
from devstack.runtime import LocalRuntime
from tests.e2e.conftest import SECRET, World
from tests.e2e.dashboard import DECISION_TIMEOUT_MS, dashboard, experiment_card, not_reloaded, real


def decided(world: World, name: str) -> dict[str, Any] | None:
    exp = world.get("experiment", name)
    status = (exp or {}).get("status") or {}
    return exp if status.get("decision") in ("Promote", "RollBack", "Inconclusive") else None


def ready(world: World, kind: str, name: str) -> dict[str, Any] | None:
    """The object's Ready condition, once it is True."""
    condition = world.condition(kind, name)
    return condition if condition and condition["status"] == "True" else None


def then_the_first_run_trains_and_passes_the_offline_gate(world: World, name: str) -> None:
    world.wait_until(f"{name} to succeed", lambda: ready(world, "trainingrun", name), timeout=600)
    run = world.get("trainingrun", name)
    assert run is not None
    assert run["status"]["adapter"]["digest"].startswith("sha256:")
    assert run["status"]["dataset"]["trainRows"] > 0
    assert run["status"]["metrics"]["preferenceAccuracy"] >= 0.5


def then_it_is_served_and_its_experiment_routed(
    world: World, name: str, serve_timeout: float, routed_what: str
) -> None:
    world.wait_until(f"{name} to serve", lambda: ready(world, "shadowmodel", name), timeout=serve_timeout)
    world.wait_until(routed_what, lambda: routed(world.get("experiment", name)), timeout=60)


def then_it_is_promoted_to_the_policys_champion(world: World, policy_name: str, name: str) -> None:
    exp = world.wait_until(f"a decision on {name}", lambda: decided(world, name), timeout=120)
    assert exp["status"]["decision"] == "Promote", exp["status"]["decisionReason"]
    policy = world.wait_until(
        "the policy's champion",
        lambda: (p := world.get("learningpolicy", policy_name))
        and (p["status"].get("champion") or {}).get("shadowModel") == name
        and p,
    )
    assert policy["status"]["lineage"][0]["shadowModel"] == name
    shadow = world.wait_until(
        f"{name} to be Champion",
        lambda: (s := world.get("shadowmodel", name)) and s["status"].get("role") == "Champion" and s,
    )
    assert shadow["status"]["endpoint"]


def then_the_open_dashboard_shows_what_the_operator_recorded(world: World, page: Page, name: str) -> None:
    card = experiment_card(page, world.namespace, name)
    expect(card.locator('[data-figure="decision"]')).to_have_text("Promote", timeout=DECISION_TIMEOUT_MS)
    status = (world.get("experiment", name) or {})["status"]
    expect(card.locator('[data-figure="objectDecidedAt"]')).to_have_text(status["decidedAt"])
    for row in status["variants"]:  # the Experiment's own rows: what kaizen experiment report prints
        cells = card.locator(f'tr[data-status-variant="{row["name"]}"]')
        expect(cells.locator('[data-field="samples"]')).to_have_text(number(row.get("samples", 0)))
        expect(cells.locator('[data-field="meanReward"]')).to_have_text(number(real(row.get("meanReward"))))
    run = (world.get("trainingrun", name) or {})["status"]
    cells = page.locator(f'tr[data-run="{name}"]')
    expect(cells.locator('[data-field="state"]')).to_have_text("Succeeded")
    accuracy = run["metrics"]["preferenceAccuracy"]
    expect(cells.locator('[data-field="preferenceAccuracy"]')).to_have_text(number(real(accuracy)))
    expect(cells.locator('[data-field="trainRows"]')).to_have_text(number(run["dataset"]["trainRows"]))
    expect(page.locator(f'tr[data-model="{name}"] [data-field="trainingRun"]')).to_have_text(name)
    view = httpx.get(
        f"{world.gateway.url}/v1/loop/{world.namespace}/coder",
        headers={"Authorization": f"Bearer {world.token}"},
    ).json()
    shown = next(e for e in view["experiments"] if e["experiment"] == f"{world.namespace}/{name}")
    assert shown["object"]["decision"] == "Promote"
    assert not_reloaded(page)


def then_it_is_rolled_back_with_its_evidence(world: World, name: str) -> None:
    exp = world.wait_until(f"a decision on {name}", lambda: decided(world, name), timeout=120)
    assert exp["status"]["decision"] == "RollBack", exp["status"]["decisionReason"]
    rolled = world.wait_until(
        f"{name} RolledBack",
        lambda: (s := world.get("shadowmodel", name)) and s["status"].get("role") == "RolledBack" and s,
    )
    assert rolled["status"]["rollbackEvidence"]["experiment"] == name


def then_no_spec_was_written_but_by_the_test(world: World) -> None:
    """A spec write bumps the generation: every object is still at its first."""
    for kind in ("learningpolicies", "trainingruns", "shadowmodels", "experiments"):
        for obj in world.items(kind):
            assert obj["metadata"]["generation"] == 1, f"{kind}/{obj['metadata']['name']}"


def test_full_loop_trains_serves_experiments_and_promotes_then_rolls_back_a_regression(
    world: World, runtime: LocalRuntime, tmp_path: Path
) -> None:
    agent = f"coder-{uuid.uuid4().hex[:6]}"
    agents = Population(world.gateway.url, world.token, world.namespace, "coder", agent, seed=7)
    # Given a policy that trains after 60 new approved pairs, and the pairs
    world.apply(demo_policy("coder", agent, world.storage, min_pairs=60))
    assert agents.post_pairs(96, seed=1) >= 60
    # Then a TrainingRun trains on a real Ray job and passes the offline gate
    then_the_first_run_trains_and_passes_the_offline_gate(world, "coder-0001")
    # And its ShadowModel is served, and an Experiment against the plain base opens on the policy's route
    then_it_is_served_and_its_experiment_routed(world, "coder-0001", 300, "the Experiment routed")
    # And a reviewer opens the policy's loop dashboard and leaves it open
    reviewer = auth.issue(SECRET, "rita", 3600, role=Role.REVIEWER, namespaces=[world.namespace])
    with dashboard(world.gateway.url, reviewer, world.namespace, "coder") as page:
        # When agents (rewards scripted) do better with the adapter than with the plain base model
        served = agents.scripted(160, {"kaizen-tiny": 0.4, "coder-0001": 0.8})
        assert set(served) == {"kaizen-tiny", "coder-0001"}
        # Then the challenger is promoted and becomes the policy's champion
        then_it_is_promoted_to_the_policys_champion(world, "coder", "coder-0001")
        # and the open page shows the decision, the run behind it and the new champion, unreloaded
        then_the_open_dashboard_shows_what_the_operator_recorded(world, page, "coder-0001")
    # When a second adapter is trained and agents (rewards scripted) do worse with it
    assert agents.post_pairs(96, seed=3) >= 60
    then_it_is_served_and_its_experiment_routed(world, "coder-0002", 900, "the second Experiment routed")
    agents.scripted(160, {"coder-0001": 0.8, "coder-0002": 0.3})
    # Then it is rolled back, with its evidence, and the champion serves every request again
    then_it_is_rolled_back_with_its_evidence(world, "coder-0002")
    assert agents.scripted(40, {"coder-0001": 0.8, "coder-0002": 0.3}) == {"coder-0001": 40}
    # and the route belongs to the newest experiment (the decided first one no longer writes it),
    # which, settled, no longer counts the traffic
    route = world.route_config("coder")
    challenger = next(v for v in route["variants"] if v["name"] == "challenger")
    assert "coder-0002" in f"{challenger.get('model')} {challenger['endpoint']}"
    assert route.get("experiment") is None
    assert {v["name"]: v["weight"] for v in route["variants"]} == {"champion": 100, "challenger": 0}
    # and after the whole loop no spec was written by anyone but the test (a write bumps generation)
    then_no_spec_was_written_but_by_the_test(world)
    assert (world.get("learningpolicy", "coder") or {})["status"]["champion"]["shadowModel"] == "coder-0001"


def test_the_operator_never_writes_a_spec(world: World) -> None:
    # Given a policy and the objects the operator makes from it (a manual trigger starts a run)
    agent = f"spec-{uuid.uuid4().hex[:6]}"
    world.apply(demo_policy("spec", agent, world.storage, min_pairs=1_000_000))
    world.kubectl("annotate", "learningpolicy", "spec", "kaizen.dev/train-now=1")
    world.wait_until("a run", lambda: world.get("trainingrun", "spec-0001"), timeout=60)
    world.wait_until(
        "the run to be looked at a few times",
        lambda: ((world.get("trainingrun", "spec-0001") or {}).get("status") or {}).get("observedGeneration")
        == 1,
    )
    # Then every object is still at generation 1 (any spec write bumps it), and the only annotations
    # are the operator's own (kaizen.dev/...) and kubectl's
    for kind in ("learningpolicies", "trainingruns"):
        for obj in world.items(kind):
            assert obj["metadata"]["generation"] == 1, obj["metadata"]["name"]
            for key in obj["metadata"].get("annotations", {}):
                assert key.startswith("kaizen.dev/") or key.startswith("kubectl.kubernetes.io/"), key
            assert not obj["metadata"].get("finalizers"), "no finalizer is needed for in-cluster cleanup"
