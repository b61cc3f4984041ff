"""When things fail the page says so and keeps working: an htmx request that fails shows a
message (not a broken page), and without the agent socket the queue falls back to polling."""

import pytest

from crm import services as crm_services
from escalation import services as escalation_services
from escalation.models import Escalation, Priority
from tests.factories import AgentFactory, ConversationFactory

from .conftest import off_the_browser_thread, sign_in, wait_live

pytestmark = [pytest.mark.browser]


def _escalate(name: str):
    def run():
        conversation = ConversationFactory(contact__name=name)
        crm_services.receive_customer_message(conversation=conversation, text="Hello?")
        return escalation_services.escalate_conversation(
            conversation=conversation,
            reason="request",
            priority=Priority.NORMAL,
            triggered_by=Escalation.Trigger.DETECTION,
        )[0]

    return off_the_browser_thread(run)


def test_a_failed_htmx_request_shows_a_message_and_the_page_stays(open_page, transactional_db):
    user = AgentFactory(display_name="Marina", username="marina")
    escalation = _escalate("Jamie Patel")
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


def test_without_the_agent_socket_the_queue_polls(open_page, transactional_db):
    user = AgentFactory(display_name="Marina", username="marina")
    page = open_page("agent")
    page.route_web_socket("**/ws/agent/", lambda socket: socket.close())
    sign_in(page, user)
    page.wait_for_selector('#live-state[data-state="offline"]')
    page.wait_for_selector("#queue-results tr.empty")
    page.evaluate("window.__same_page = true")

    escalation = _escalate("Polly Polling")
    page.wait_for_selector(f'.queue-row[data-escalation-id="{escalation.pk}"]', timeout=12_000)
    assert page.evaluate("window.__same_page") is True  # no reload happened
