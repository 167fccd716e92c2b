"""Each page in light and dark, as PNGs: into ``KAIZEN_SCREENSHOTS`` (``make screenshots`` rewrites
``docs/screenshots/``, which the README shows), else into the test's own folder. One store is enough
for pictures: the other tests hold both stores to the same numbers."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, expect

from controllers.api.identity import Role
from devstack.gateway import GatewayProcess
from tests.browser import seed
from tests.browser.conftest import new_context, sign_in, token
from tests.browser.test_accessibility import refused


@pytest.mark.parametrize("empty_url", ["sqlite"], indirect=True)
def test_every_page_is_photographed_in_light_and_dark(
    browser: Browser, gateway: GatewayProcess, store_url: str, axe_script: str, tmp_path: Path
) -> None:
    folder = Path(os.environ.get("KAIZEN_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    seed.seed_loop(gateway.url, store_url, requests=60)
    written = []
    for scheme in ("light", "dark"):
        context = new_context(browser, gateway, axe_script, scheme)
        page = context.new_page()
        page.set_viewport_size({"width": 1100, "height": 800})
        page.goto("/ui/sign-in")
        written.append(folder / f"sign-in-{scheme}.png")
        page.screenshot(path=written[-1])
        refused(page)
        written.append(folder / f"refused-{scheme}.png")
        page.screenshot(path=written[-1])
        sign_in(page)
        written.append(folder / f"policies-{scheme}.png")
        page.screenshot(path=written[-1])
        page.goto(f"/ui/loop/{seed.NAMESPACE}/{seed.POLICY}")
        expect(page.locator("figure.chart svg")).to_have_count(3)
        written.append(folder / f"dashboard-{scheme}.png")
        page.screenshot(path=written[-1], full_page=True)
        context.close()
    written += workbench_pictures(browser, gateway, axe_script, folder)
    assert all(path.stat().st_size > 10_000 for path in written), written


SHOWN_PROMPT = "Write a Python function that returns the n-th Fibonacci number."
SHOWN_ANSWERS = (
    "def fib(n):\n    a, b = 0, 1\n    for _ in range(n):\n        a, b = b, a + b\n    return a",
    "def fib(n):\n    return fib(n - 1) + fib(n - 2)",
)


def workbench_pictures(
    browser: Browser, gateway: GatewayProcess, axe_script: str, folder: Path
) -> list[Path]:
    """The workbench with a pair worth looking at: the seeded pairs are judged first through the API
    by another reviewer (so progress and agreement have figures), then the pair above is shown."""
    guidelines = "Prefer the answer that is correct and finishes; then the clearer one."
    policy = {"agent": "coder", "review": {"reviewersPerItem": 1, "guidelines": guidelines}}
    seed.write(gateway.url, "PUT", f"/v1/policies/{seed.NAMESPACE}/{seed.POLICY}", policy, "policy-review")
    other = {"Authorization": f"Bearer {token(Role.REVIEWER, 'ann')}"}
    while True:
        held = httpx.post(f"{gateway.url}/v1/review/reservations", json={"policy": seed.POLICY}, headers=other,
                          timeout=60).json()["reservation"]  # fmt: skip
        if held is None:
            break
        judged = {"pairId": held["pairId"], "verdict": "left"}
        keyed = {**other, "Idempotency-Key": f"shot-{held['pairId']}"}
        httpx.post(
            f"{gateway.url}/v1/review/verdicts", json=judged, headers=keyed, timeout=60
        ).raise_for_status()
    chosen, rejected = SHOWN_ANSWERS
    pair = {"agent": "coder", "prompt": SHOWN_PROMPT, "chosen": chosen, "rejected": rejected}
    seed.write(
        gateway.url, "POST", "/v1/pairs/batch", {"namespace": seed.NAMESPACE, "pairs": [pair]}, "shot-pair"
    )
    written = []
    for scheme in ("light", "dark"):
        context = new_context(browser, gateway, axe_script, scheme)
        page = context.new_page()
        page.set_viewport_size({"width": 1280, "height": 900})
        sign_in(page)
        page.goto(f"/ui/review?namespace={seed.NAMESPACE}&policy={seed.POLICY}")
        expect(page.locator("#pair")).to_have_attribute("data-state", "ready")
        expect(page.locator('[data-figure="reservedByMe"]')).to_have_text("1")
        written.append(folder / f"workbench-{scheme}.png")
        page.screenshot(path=written[-1], full_page=True)
        context.close()
    return written
