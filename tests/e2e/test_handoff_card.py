"""The handoff card in a real browser: a customer gives an order number and an amount, gets
upset and asks for a person; the agent's conversation page and the inbox's pane show the card —
the problem, the facts, the mood over the conversation and what not to ask again."""

import pytest

from crm.models import Conversation
from escalation.models import Escalation
from tests.factories import AgentFactory, AssistantFactory, ChannelFactory, TeamFactory

from .conftest import assert_page_clean, sign_in, wait_live

pytestmark = [pytest.mark.browser]


@pytest.fixture
def world(transactional_db):
    team = TeamFactory(name="Support")
    ChannelFactory(
        kind="website",
        key="shop",
        name="Website chat",
        assistant=AssistantFactory(handoff_enabled=True),
        default_team=team,
    )
    return {"marina": AgentFactory(display_name="Marina", username="marina", teams=[team])}


def say(customer, text):
    customer.fill(".le-input", text)
    customer.press(".le-input", "Enter")
    customer.wait_for_selector(f".le-customer:has-text({text[:20]!r})")


def test_the_agent_sees_the_handoff_card_on_the_conversation_page_and_in_the_inbox(
    open_page, world
):
    customer = open_page("customer")
    customer.goto("/widget/demo/?channel=shop")
    customer.click(".le-launch")
    say(customer, "Hello, my parcel for order 55120 arrived broken. I paid $80 for it.")
    customer.wait_for_selector(".le-ai")
    say(customer, "This is ridiculous, I am furious! Get me a human right now!!!")
    customer.wait_for_selector(".le-status:has-text('Waiting for an agent')")

    conversation = Conversation.objects.get()
    escalation = Escalation.objects.get(conversation=conversation)
    agent = open_page("agent")
    sign_in(agent, world["marina"], f"/crm/conversations/{conversation.pk}/")
    wait_live(agent)
    card = agent.locator("#handoff-card")
    assert card.locator(".card-problem").inner_text() == (
        "Hello, my parcel for order 55120 arrived broken."
    )
    assert {"55120", "$80"} <= set(card.locator(".card-facts .chip").all_inner_texts())
    moods = card.locator(".card-mood .mood").all_inner_texts()
    assert moods == escalation.card["mood"] and moods[-1] in ("frustrated", "angry")
    assert "order number: 55120" in card.locator(".card-dont-ask").inner_text()
    assert card.locator(".card-why").inner_text().endswith(".")
    assert "|" not in card.inner_text()  # no pipe-separated line any more
    assert_page_clean(agent)

    agent.goto(f"/crm/inbox/?c={conversation.pk}")
    wait_live(agent)
    pane = agent.locator("#workspace #handoff-card")
    assert "order number: 55120" in pane.locator(".card-dont-ask").inner_text()
    assert pane.locator(".card-problem").inner_text().startswith("Hello, my parcel")
    assert_page_clean(agent)
    assert_page_clean(customer)
