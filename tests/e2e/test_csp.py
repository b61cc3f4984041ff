"""The strict Content-Security-Policy (scripts and styles from our own static files only) breaks
nothing a person sees: the pages that once needed inline style — the analytics bars, the widget
on its demo page, Swagger UI, htmx's request indicators — render with nothing refused (open_page
fails a test on any console line of a CSP refusal)."""

import pytest

from tests.factories import AgentFactory, AssistantFactory, ChannelFactory

from .conftest import assert_page_clean, sign_in, wait_for_js

pytestmark = [pytest.mark.browser]


def test_the_widget_styles_itself_on_its_demo_page_under_the_csp(open_page, transactional_db):
    ChannelFactory(kind="website", assistant=AssistantFactory())
    customer = open_page("customer")
    customer.goto("/widget/demo/")
    launch = customer.locator(".le-launch")
    launch.wait_for()
    # its own stylesheet applies inside the shadow root: a fixed, rounded launcher
    assert launch.evaluate("b => getComputedStyle(b).borderRadius") == "24px"
    assert launch.evaluate("b => getComputedStyle(b.closest('.le')).position") == "fixed"
    launch.click()
    customer.locator(".le-panel").wait_for()
    assert_page_clean(customer)


def test_analytics_bars_render_under_the_csp(open_page, transactional_db):
    manager = AgentFactory(username="morgan", role="manager")
    page = open_page("manager")
    sign_in(page, manager, next_url="/crm/analytics/")
    page.locator("#kpi-wait svg.hbar").first.wait_for()
    assert (
        page.locator("#kpi-wait svg.hbar").first.evaluate("s => s.getBoundingClientRect().height")
        == 12
    )
    assert_page_clean(page)


def test_swagger_ui_renders_under_the_csp(browser, live_server_url):
    """Not through open_page: the API docs show JSON in braces, which its template-syntax watch
    would take for a leak; here only what the policy refused and script errors count."""
    page = browser.new_page(base_url=live_server_url)
    console = []
    page.on("console", lambda message: console.append(message.text))
    page.on("pageerror", lambda error: console.append(f"pageerror: {error}"))
    try:
        page.goto("/api/docs/")
        wait_for_js(page, "document.querySelectorAll('.opblock').length > 0", timeout=30)
        page.locator(".opblock-summary").first.click()  # an operation opens (React styles it)
        page.locator(".opblock-body").first.wait_for()
        assert page.evaluate("getComputedStyle(document.body).marginTop") == "0px"
        problems = [
            line for line in console if "Content Security Policy" in line or "pageerror" in line
        ]
        assert problems == []
    finally:
        page.close()
