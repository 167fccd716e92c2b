"""Every page passes axe-core (no serious or critical violation) in light and dark, and a keyboard alone
reaches every control, sees where the focus is, skips to the content and switches the theme (which is
remembered across a reload). The review workbench too: with a pair, its shortcut dialog open, and a
verdict announced."""

from __future__ import annotations

from playwright.sync_api import Browser, Page, expect

from controllers.api.identity import Role
from devstack.gateway import GatewayProcess
from tests.browser import seed
from tests.browser.conftest import new_context, serious_violations, sign_in, token

PAGES = ("/ui/sign-in", "/ui/", f"/ui/loop/{seed.NAMESPACE}/{seed.POLICY}")
CONTROLS = "a[href], button, input, select, textarea, [tabindex]:not([tabindex='-1'])"


def refused(page: Page) -> None:
    page.goto("/ui/sign-in")
    page.get_by_label("Kaizen token").fill(token(Role.AGENT, subject="coder"))
    page.get_by_label("Kaizen token").press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text("Not for this identity")


def test_no_page_has_a_serious_accessibility_violation_in_either_theme(
    browser: Browser, gateway: GatewayProcess, store_url: str, axe_script: str, scheme: str
) -> None:
    seed.seed_loop(gateway.url, store_url)
    context = new_context(browser, gateway, axe_script, scheme)
    try:
        page = context.new_page()
        page.goto("/ui/sign-in")
        page.get_by_label("Kaizen token").fill("garbage")
        page.get_by_label("Kaizen token").press("Enter")
        expect(page.get_by_role("alert")).to_be_visible()
        found = {"sign-in with a problem": serious_violations(page)}
        refused(page)
        found["refused"] = serious_violations(page)
        sign_in(page)
        for path in PAGES[1:]:
            page.goto(path)
            expect(page.locator("html")).to_have_attribute("lang", "en")
            found[path] = serious_violations(page)
        page.get_by_role("button", name="Dark theme").click()  # the toggle flips the system's choice
        found["toggled"] = serious_violations(page)
        context.clear_cookies()
        page.goto(PAGES[0])
        found[PAGES[0]] = serious_violations(page)
    finally:
        context.close()
    assert found == {name: [] for name in found}


def tab_through(page: Page, presses: int) -> list[str]:
    """What each Tab press focused, as a short description."""
    seen = []
    for _ in range(presses):
        page.keyboard.press("Tab")
        seen.append(
            page.evaluate(
                "() => { const e = document.activeElement;"
                " return e.tagName + '|' + (e.getAttribute('href') || e.id || e.textContent.trim()); }"
            )
        )
    return seen


def controls(page: Page) -> set[str]:
    found: list[str] = page.evaluate(
        f"""() => Array.from(document.querySelectorAll("{CONTROLS}"))
            .map(e => e.tagName + '|' + (e.getAttribute('href') || e.id || e.textContent.trim()))"""
    )
    return set(found)


def test_the_keyboard_alone_reaches_every_control_and_switches_the_theme(
    page: Page, gateway: GatewayProcess, store_url: str
) -> None:
    seed.seed_loop(gateway.url, store_url)
    page.goto("/ui/sign-in")
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")
    expect(page.get_by_label("Kaizen token")).to_be_focused()
    page.keyboard.type(token(Role.REVIEWER))
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text("Kaizen")
    for path in PAGES[1:]:
        page.goto(path)
        wanted = controls(page)
        reached = set(tab_through(page, len(wanted) + 1))
        assert wanted <= reached, f"{path}: Tab never reaches {sorted(wanted - reached)}"
    toggle = page.get_by_role("button", name="Dark theme")
    toggle.focus()
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none", "the focused control shows no outline"
    page.keyboard.press("Space")
    expect(page.locator("html")).to_have_attribute("data-theme", "dark")
    expect(toggle).to_have_attribute("aria-pressed", "true")
    page.reload()
    expect(page.locator("html")).to_have_attribute("data-theme", "dark")
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Dark theme")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("html")).to_have_attribute("data-theme", "light")
    page.get_by_role("button", name="Sign out").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_label("Kaizen token")).to_be_visible()


WORKBENCH = f"/ui/review?namespace={seed.NAMESPACE}&policy={seed.POLICY}"
VISIBLE_CONTROLS = f"""() => Array.from(document.querySelectorAll("{CONTROLS}"))
    .filter(e => e.checkVisibility())
    .map(e => e.tagName + '|' + (e.getAttribute('href') || e.id || e.textContent.trim()))"""


def test_the_workbench_passes_axe_in_either_theme_and_works_by_keyboard(
    browser: Browser, gateway: GatewayProcess, store_url: str, axe_script: str, scheme: str
) -> None:
    seed.seed_loop(gateway.url, store_url)
    context = new_context(browser, gateway, axe_script, scheme)
    try:
        page = context.new_page()
        sign_in(page)
        page.goto("/ui/review")
        found = {"queues": serious_violations(page)}
        page.goto(WORKBENCH)
        expect(page.locator("#pair")).to_have_attribute("data-state", "ready")
        found["pair"] = serious_violations(page)
        listed = page.evaluate(VISIBLE_CONTROLS)  # the reason tags' checkboxes share one description
        wanted = set(listed)
        reached = set(tab_through(page, len(listed) + 1))
        assert wanted <= reached, f"Tab never reaches {sorted(wanted - reached)}"
        page.get_by_role("button", name="A is better").focus()
        assert page.evaluate("getComputedStyle(document.activeElement).outlineStyle") != "none"
        page.keyboard.press("?")
        expect(page.get_by_role("dialog", name="Keyboard shortcuts")).to_be_visible()
        expect(page.get_by_role("button", name="Close")).to_be_focused()
        found["help"] = serious_violations(page)
        page.keyboard.press("Escape")
        expect(page.get_by_role("button", name="Keyboard shortcuts")).to_be_focused()
        page.keyboard.press("t")
        expect(page.get_by_role("status")).to_have_text("Saved: Tie.")
        found["saved"] = serious_violations(page)
    finally:
        context.close()
    assert found == {name: [] for name in found}
