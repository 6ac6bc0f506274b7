"""The web inbox in a real browser: headless Chromium (Debian's package) driven by Playwright,
against the local stack (moto's server as AWS, fake X and Graph, `chalice local` serving the API
and the page).

Screenshots of every page go to build/screenshots/web-inbox/ for review. Where Chromium or
Playwright is missing these tests skip, unless REQUIRE_BROWSER=1 (set by .ci/run), where a
missing browser fails the run instead.
"""
from __future__ import annotations

import json
import os
import shutil
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Iterator, Optional

import pytest

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "build" / "screenshots" / "web-inbox"
CHROMIUM = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or shutil.which("chromium-browser")
# The flags a closed network needs (no background connections refused one by one), as root in a container.
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage"]


def _browser_missing() -> Optional[str]:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright is not installed (make installs it from requirements-dev.txt)"
    if not CHROMIUM:
        return "Chromium is not installed (apt-get install chromium; .ci/run does it)"
    return None


_MISSING = _browser_missing()
if _MISSING and os.environ.get("REQUIRE_BROWSER") == "1":
    raise RuntimeError(f"REQUIRE_BROWSER=1 but the browser tests cannot run: {_MISSING}")
pytestmark = pytest.mark.skipif(_MISSING is not None, reason=_MISSING or "")


def _call(stack: Any, method: str, path: str, token: str, body: Any = None):
    request = urllib.request.Request(stack.api_url + path, method=method,
                                     data=json.dumps(body).encode() if body is not None else None,
                                     headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, json.loads(answer.read() or b"{}")
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"{}")


@pytest.fixture(scope="module")
def stack() -> Iterator[Any]:
    from local.stack import DEMO_PASSWORD, LocalDeployment

    saved = dict(os.environ)
    deployment = LocalDeployment(stage="web").start()
    try:
        deployment.run_schedule()
        for _ in range(4):
            if not any(deployment.pump().values()):
                break
        # A finance reader and a plain agent, beside the demo supervisor.
        from chalicelib.bootstrap import deps
        from chalicelib.domain.agent import Agent
        from local.cognito import issue_token

        deps().settings.put_agent(Agent.from_dict({"agent_id": "fiona", "name": "Fiona Finance", "teams": [],
                                                   "role": "finance", "capacity": 0}))
        cognito = deployment._client("cognito-idp")
        pool, client = deployment.env["USER_POOL_ID"], deployment.env["USER_POOL_CLIENT_ID"]
        deployment.tokens = {"demo": deployment.agent_token,
                             "fiona": issue_token(cognito, pool, client, "fiona", DEMO_PASSWORD),
                             "aiko": issue_token(cognito, pool, client, "aiko", DEMO_PASSWORD)}
        yield deployment
    finally:
        deployment.stop()
        os.environ.clear()
        os.environ.update(saved)
        from tests.conftest import reset_caches

        reset_caches()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture()
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 860}, locale="en-US")
    page = context.new_page()
    errors: list = []
    page.on("pageerror", lambda err: errors.append(str(err)))
    page.errors = errors
    try:
        yield page
    finally:
        context.close()
    assert not errors, f"the page raised JavaScript errors: {errors}"


def shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def sign_in(page: Any, stack: Any, who: str = "demo") -> None:
    page.goto(f"{stack.api_url}/#token={stack.tokens[who]}")
    page.wait_for_selector("#who:not(:empty)")


def test_the_page_and_its_assets_are_served_by_the_api(stack):
    with urllib.request.urlopen(stack.api_url + "/", timeout=30) as answer:
        html = answer.read().decode()
        assert answer.headers["Content-Type"].startswith("text/html")
        assert "default-src 'self'" in answer.headers["Content-Security-Policy"]
    assert '<script src="assets/app.js?v=' in html and "{{" not in html
    with urllib.request.urlopen(stack.api_url + "/assets/app.js", timeout=30) as answer:
        script = answer.read()
        assert answer.headers["Content-Type"].startswith("application/javascript")
    # Small and fast: the whole first load (page, script, style) stays under 100 KB uncompressed.
    with urllib.request.urlopen(stack.api_url + "/assets/app.css", timeout=30) as answer:
        style = answer.read()
    assert len(html) + len(script) + len(style) < 100_000
    with pytest.raises(urllib.error.HTTPError) as missing:
        urllib.request.urlopen(stack.api_url + "/assets/..%2Fconfig.py", timeout=30)
    assert missing.value.code == 404


def test_an_agent_signs_in_from_the_demo_link_and_sees_the_inbox(stack, page):
    sign_in(page, stack)
    assert "token=" not in page.url, "the token must leave the address bar (history, screenshots, shoulder surfing)"
    page.wait_for_selector("tr.case")
    rows = page.locator("tr.case")
    assert rows.count() >= 3
    assert page.locator("nav a[aria-current=page]").inner_text() == "Inbox"
    shot(page, "01-inbox")


def test_keyboard_opens_a_case_and_a_reply_goes_out(stack, page):
    sign_in(page, stack)
    page.wait_for_selector("tr.case")
    page.keyboard.press("j")
    page.keyboard.press("k")
    page.keyboard.press("Enter")
    page.wait_for_selector("#reply-text")
    assert page.locator(".conv li").count() >= 1, "the conversation shows the customer's post"
    case_id = page.url.rsplit("/", 1)[-1]
    shot(page, "02-case")
    page.fill("#reply-text", "We're sorry about this. Could you send us your booking reference by DM? -Demo")
    assert "/ " in page.inner_text("#reply-count")
    page.click("form[aria-labelledby=reply-title] button[type=submit]")
    page.wait_for_selector("form[aria-labelledby=reply-title] [role=status]:has-text('Delivery')")
    # The outbound queue is Lambda's job: play it, and the page follows the reply to "sent".
    deadline = time.time() + 40
    while time.time() < deadline and not page.locator(".conv li.ours .st-sent").count():
        stack.pump()
        page.wait_for_timeout(1200)
    shot(page, "03-reply-sent")
    assert page.locator(".conv li.ours .st-sent").count() >= 1, (
        "the reply shows as sent; the page says: " + page.inner_text("form[aria-labelledby=reply-title]"))
    status, detail = _call(stack, "GET", f"/cases/{case_id}", stack.tokens["demo"])
    assert status == 200 and any(r["delivery_status"] == "sent" for r in detail["replies"])


def test_x_counts_japanese_characters_as_two(stack, page):
    sign_in(page, stack)
    page.wait_for_selector("tr.case")
    x_case = next((row for row in page.locator("tr.case").all() if row.locator("td").nth(1).inner_text() == "x"), None)
    if x_case is None:
        pytest.skip("no X case in the first page")
    x_case.click()
    page.wait_for_selector("#reply-text")
    page.fill("#reply-text", "ご迷惑をおかけし申し訳ありません")  # 16 characters, 32 on X
    assert page.inner_text("#reply-count").startswith("32 /")


def test_status_change_and_filters(stack, page):
    sign_in(page, stack)
    page.wait_for_selector("tr.case")
    page.locator("tr.case").first.click()
    page.wait_for_selector("#status-select")
    case_id = page.url.rsplit("/", 1)[-1]
    page.select_option("#status-select", "pending")
    page.click("#status-select ~ button")
    page.wait_for_selector("#toast.show")
    assert page.inner_text("#toast") == "Saved.", page.inner_text("#toast")
    status, detail = _call(stack, "GET", f"/cases/{case_id}", stack.tokens["demo"])
    assert detail["case"]["status"] == "pending"
    page.click("nav a[href='#/inbox']")
    page.wait_for_selector("#f-status")
    page.select_option("#f-status", "pending")
    page.click("form.filters button[type=submit]")
    page.wait_for_selector(f"tr.case[data-id='{case_id}']")
    if page.locator("#f-platform").count():
        page.select_option("#f-status", "open")
        page.select_option("#f-platform", "x")
        page.click("form.filters button[type=submit]")
        page.wait_for_timeout(1500)
        platforms = {row.locator("td").nth(1).inner_text() for row in page.locator("tr.case").all()}
        assert platforms <= {"x"}, platforms
    shot(page, "04-filtered")


def test_a_case_still_loading_after_save_never_draws_itself_over_the_inbox(stack, page):
    """On a slow network an agent saves, then goes to the inbox before the case has reloaded: the inbox stays."""
    sign_in(page, stack)
    page.wait_for_selector("tr.case")
    page.locator("tr.case").first.click()
    page.wait_for_selector("#status-select")
    case_path = "/cases/" + page.url.rsplit("/", 1)[-1]

    def slow_case_reload(route):
        if route.request.method == "GET" and route.request.url.split("?")[0].endswith(case_path):
            time.sleep(2.5)  # the reload after "Save" answers late
        route.continue_()

    page.route("**/cases/**", slow_case_reload)
    page.select_option("#status-select", "pending")
    page.click("#status-select ~ button")
    page.wait_for_selector("#toast.show")
    page.click("nav a[href='#/inbox']")
    page.wait_for_selector("#f-status")
    page.wait_for_timeout(4000)  # the late answer has arrived by now
    assert page.locator("#f-status").count() == 1 and page.locator("#status-select").count() == 0, (
        "the inbox is still shown, not the case that finished loading after the agent left it")
    page.unroute("**/cases/**")


def test_notes_tags_and_hand_off_from_the_case_page(stack, page):
    sign_in(page, stack)
    page.wait_for_selector("tr.case")
    page.locator("tr.case").nth(1).click()
    page.wait_for_selector("#note-text")
    case_id = page.url.rsplit("/", 1)[-1]
    team = _call(stack, "GET", f"/cases/{case_id}", stack.tokens["demo"])[1]["case"]["team"]
    colleague = {"support": "aiko", "vip": "mika", "product": "priya", "sales": "lee"}[team]
    page.fill("#note-text", f"@{colleague} the customer called too; booking SA-12345678")
    page.click("#note-text ~ button")
    page.wait_for_selector(".conv li.note:has-text('booking SA-12345678')")
    page.fill("#edit-tags", "vip-contract, baggage")
    page.click("#edit-category ~ p button")
    page.wait_for_selector("section[aria-label=Triage] .pill:has-text('vip-contract')")
    page.select_option("#handoff-kind", "agent_id")
    page.fill("#handoff-to", colleague)
    page.fill("#handoff-note", f"{colleague} knows this route")
    page.click("#handoff-note ~ p button")
    page.wait_for_selector("#toast.show")
    shot(page, "09-case-worked")
    assert page.inner_text("#toast") == "Saved.", page.inner_text("#toast")
    page.wait_for_selector(f"section[aria-label=Triage] :text-is('{colleague}')")
    status, detail = _call(stack, "GET", f"/cases/{case_id}", stack.tokens["demo"])
    assert detail["case"]["assignee"] == colleague and "vip-contract" in detail["case"]["tags"]
    assert any("SA-12345678" in (n.get("text") or "") for n in detail["notes"])
    shot(page, "09-case-worked")


def test_japanese_interface(stack, page):
    sign_in(page, stack)
    page.select_option("#lang-switch", "ja")
    page.wait_for_selector("nav a:has-text('受信箱')")
    assert page.evaluate("document.documentElement.lang") == "ja"
    page.wait_for_selector("tr.case, td.muted")
    shot(page, "05-inbox-ja")


def test_supervisor_page(stack, page):
    sign_in(page, stack)
    page.click("nav a[href='#/supervisor']")
    page.wait_for_selector("h2:has-text('Waiting for an agent')")
    page.wait_for_selector("h2:has-text('Sources')")
    page.wait_for_selector("section:has(h2:has-text('Sources')) td:has-text('x_mentions')")
    shot(page, "06-supervisor")


def test_a_supervisor_makes_a_case_of_a_mention_triage_left_alone(stack, page):
    status, listed = _call(stack, "GET", "/mentions?case=false&limit=5", stack.tokens["demo"])
    assert status == 200, listed
    if not listed["mentions"]:
        pytest.skip("the fake platforms' first posts left nothing without a case")
    sign_in(page, stack)
    page.click("nav a[href='#/supervisor']")
    row = page.locator("section:has(h2:has-text('Mentions without a case')) li").first
    row.wait_for()
    mention_text = row.inner_text()
    row.locator("button:has-text('Make a case')").click()
    page.wait_for_selector("#toast.show")
    assert page.inner_text("#toast") == "Saved.", page.inner_text("#toast")
    status, after = _call(stack, "GET", "/mentions?case=false&limit=5", stack.tokens["demo"])
    assert listed["mentions"][0]["mention_id"] not in {m["mention_id"] for m in after["mentions"]}, mention_text


def test_finance_sees_costs_and_nothing_else(stack, page):
    sign_in(page, stack, "fiona")
    page.wait_for_selector("#cost-total")
    assert [a.inner_text() for a in page.locator("nav a").all()] == ["Finance"]
    assert page.inner_text("#cost-total").startswith("$")
    page.goto(f"{stack.api_url}/#/inbox")  # not hers: she lands on her page
    page.wait_for_selector("#cost-total")
    shot(page, "07-finance")


def test_an_agent_sees_no_supervisor_or_finance_pages(stack, page):
    sign_in(page, stack, "aiko")
    assert [a.inner_text() for a in page.locator("nav a").all()] == ["Inbox"]


def test_sign_in_form_with_cognito(stack, page):
    page.goto(f"{stack.api_url}/")
    page.wait_for_selector("#username")
    page.fill("#username", "aiko")
    page.fill("#password", "wrong-password-1!")
    page.click("form.signin button[type=submit]")
    page.wait_for_selector("form.signin [role=alert]:not(:empty)")
    from local.stack import DEMO_PASSWORD

    page.fill("#password", DEMO_PASSWORD)
    page.click("form.signin button[type=submit]")
    page.wait_for_selector("#who:not(:empty)")
    assert "aiko" in page.inner_text("#who") or "Aiko" in page.inner_text("#who")


def test_phone_width(stack, browser):
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    page = context.new_page()
    try:
        page.goto(f"{stack.api_url}/#token={stack.tokens['demo']}")
        page.wait_for_selector("tr.case")
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 420, f"the inbox scrolls sideways on a phone ({width}px)"
        shot(page, "08-phone")
    finally:
        context.close()
