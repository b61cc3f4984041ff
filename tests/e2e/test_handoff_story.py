"""The product page's story in a real browser: a customer asks for a person on the widget, an
agent's open queue shows it live, the agent takes over, they talk both ways, the agent resolves
and the ticket is resolved."""

import pytest

from crm.models import Conversation
from escalation.models import Escalation
from tests.factories import AgentFactory, AssistantFactory, ChannelFactory, TeamFactory

from .conftest import assert_page_clean, log_in, real_password, wait_for_js, wait_live

pytestmark = [pytest.mark.browser]


@pytest.fixture
def world(transactional_db):
    team = TeamFactory(name="Support")
    channel = ChannelFactory(
        kind="website",
        name="Website chat",
        assistant=AssistantFactory(handoff_enabled=True),
        default_team=team,
    )
    marina = real_password(AgentFactory(display_name="Marina", username="marina", teams=[team]))
    return {"channel": channel, "marina": marina, "team": team}


def test_customer_asks_for_a_person_and_an_agent_takes_over_live(open_page, world):
    agent = open_page("agent")
    log_in(agent, "marina")
    wait_live(agent)
    agent.wait_for_selector("#queue-results tr.empty")

    customer = open_page("customer")
    customer.goto("/widget/demo/")
    customer.click(".le-launch")
    customer.fill(".le-input", "I want to speak to a person")
    customer.press(".le-input", "Enter")
    customer.wait_for_selector(".le-customer:has-text('I want to speak to a person')")

    # The agent's already-open queue shows the conversation without a reload.
    row = agent.locator("#queue-results tr.queue-row")
    row.first.wait_for()
    assert row.count() == 1
    assert "Asked for a person" in row.first.inner_text()
    wait_for_js(
        agent, "document.querySelector('.queue-row .wait').textContent.match(/^\\d+:\\d\\d$/)"
    )

    row.first.locator("td.contact a").click()
    agent.wait_for_url("**/crm/conversations/*/")
    wait_live(agent)
    summary = agent.locator("#ai-summary").inner_text()
    assert summary.strip() and summary.strip() != "No summary."
    assert "Asked for a person" in agent.locator(".escalation-reason").inner_text()
    assert "I want to speak to a person" in agent.locator("#messages").inner_text()

    agent.click("#take-over")
    agent.wait_for_selector("#handled-by:has-text('You are handling this conversation.')")
    customer.wait_for_selector(".le-status:has-text('Now speaking with Marina')")
    assert_page_clean(agent)
    assert_page_clean(customer)

    # Agent → customer
    agent.fill("#reply-text", "Hi! I can sort out your order right now.")
    agent.click("#send-reply")
    customer.wait_for_selector(".le-agent:has-text('I can sort out your order right now.')")
    wait_for_js(agent, "document.querySelector('#reply-text').value === ''")
    agent.wait_for_selector("#messages .sender-agent:has-text('I can sort out your order')")

    # Customer → agent, live on the open conversation, with the typing indicator first
    customer.type(".le-input", "Thank you")
    agent.wait_for_selector("#typing:has-text('The customer is typing')")
    customer.fill(".le-input", "Thank you, it is order 1234")
    customer.press(".le-input", "Enter")
    agent.wait_for_selector("#messages .sender-customer:has-text('it is order 1234')")

    # A private note never reaches the customer
    agent.fill("#reply-text", "Checked the order system: shipped yesterday")
    agent.click("#add-note")
    agent.wait_for_selector("#messages .note:has-text('shipped yesterday')")

    agent.click("#resolve")
    agent.wait_for_selector("#conversation-panel .status-text:has-text('Resolved')")
    assert_page_clean(agent)
    agent.click("#conversation-panel .ticket-link")
    agent.wait_for_url("**/crm/tickets/*/")
    assert agent.locator("#ticket-status").inner_text() == "Resolved"

    assert "shipped yesterday" not in customer.locator(".le-list").inner_text()
    conversation = Conversation.objects.get()
    escalation = Escalation.objects.get(conversation=conversation)
    assert escalation.status == "resolved" and escalation.claimed_by == world["marina"]
    assert escalation.ticket.status == "resolved"
    errors = [line for line in agent.le_console if line.startswith("pageerror")]
    assert errors == []
