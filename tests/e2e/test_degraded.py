"""When things fail the page says so and keeps working: an htmx request that fails shows a
message (not a broken page), and without the agent socket the queue falls back to polling."""

import pytest

from tests.factories import AgentFactory, ConversationFactory

from .conftest import sign_in, wait_live

pytestmark = [pytest.mark.browser]


def test_a_failed_htmx_request_shows_a_message_and_the_page_stays(open_page, escalate):
    user = AgentFactory(display_name="Marina", username="marina")
    escalation = escalate(ConversationFactory(contact__name="Jamie Patel"), text="Hello?")
    page = open_page("agent")
    sign_in(page, user, next_url=f"/crm/conversations/{escalation.conversation_id}/")
    wait_live(page)

    page.route("**/take-over/", lambda route: route.fulfill(status=500, body="Server Error"))
    page.click("#take-over")
    page.wait_for_selector(".toast.error:has-text('Something went wrong (500)')")
    assert page.locator("#conversation-panel #take-over").count() == 1
    assert "Server Error" not in page.locator("body").inner_text()

    page.unroute("**/take-over/")
    page.route("**/take-over/", lambda route: route.abort())
    page.click("#take-over")
    page.wait_for_selector('.toast.error:has-text("The server can\'t be reached")')

    page.unroute("**/take-over/")
    page.click("#take-over")
    page.wait_for_selector("#handled-by:has-text('You are handling this conversation.')")


def test_without_the_agent_socket_the_queue_polls(open_page, escalate):
    user = AgentFactory(display_name="Marina", username="marina")
    page = open_page("agent")
    page.route_web_socket("**/ws/agent/", lambda socket: socket.close())
    sign_in(page, user)
    page.wait_for_selector('#live-state[data-state="offline"]')
    page.wait_for_selector("#queue-results tr.empty")
    page.evaluate("window.__same_page = true")

    escalation = escalate(ConversationFactory(contact__name="Polly Polling"), text="Hello?")
    page.wait_for_selector(f'.queue-row[data-escalation-id="{escalation.pk}"]', timeout=12_000)
    assert page.evaluate("window.__same_page") is True  # no reload happened
