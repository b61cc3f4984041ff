"""A customer's HTML/script is shown as text everywhere an agent reads it — never run."""

import pytest

from tests.factories import AgentFactory, AssistantFactory, ChannelFactory

from .conftest import sign_in, wait_live

pytestmark = [pytest.mark.browser]

PAYLOAD = (
    'I want to speak to a person <img src=x onerror="window.__xss=1">'
    "<script>window.__xss=2</script>"
)


def test_a_script_from_the_customer_is_displayed_as_text(open_page, transactional_db):
    ChannelFactory(kind="website", assistant=AssistantFactory(handoff_enabled=True))
    agent_user = AgentFactory(display_name="Marina", username="marina")

    agent = open_page("agent")
    sign_in(agent, agent_user)
    wait_live(agent)

    customer = open_page("customer")
    customer.goto("/widget/demo/")
    customer.click(".le-launch")
    customer.fill(".le-input", PAYLOAD)
    customer.press(".le-input", "Enter")

    row = agent.locator("#queue-results tr.queue-row").first
    row.wait_for()
    row.locator("td.contact a").click()
    agent.wait_for_url("**/crm/conversations/*/")
    agent.wait_for_selector("#messages .sender-customer")

    messages = agent.locator("#messages")
    assert "<script>window.__xss=2</script>" in messages.inner_text()
    assert '<img src=x onerror="window.__xss=1">' in messages.inner_text()
    assert messages.locator("img, script").count() == 0
    assert agent.locator("#ai-summary img, #ai-summary script").count() == 0
    assert agent.evaluate("typeof window.__xss") == "undefined"

    # and the other way: an agent's markup reaches the customer as text
    agent.click("#take-over")
    agent.wait_for_selector("#handled-by")
    agent.fill("#reply-text", '<b>bold</b> <img src=y onerror="window.__xss=3">')
    agent.click("#send-reply")
    customer.wait_for_selector(".le-agent:has-text('<b>bold</b>')")
    assert customer.evaluate("typeof window.__xss") == "undefined"
    agent.wait_for_selector("#messages .sender-agent:has-text('<b>bold</b>')")
    assert agent.evaluate("typeof window.__xss") == "undefined"
