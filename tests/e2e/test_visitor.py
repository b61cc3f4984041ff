"""Who the customer is, in a real browser: a required pre-chat form (a bad email refused under
its field, then corrected), an optional one skipped, and what the agent then sees — the name or
a friendly visitor name, the page, referrer, language and time zone in the contact panel."""

import pytest

from crm.models import Channel, Conversation
from crm.visitors import visitor_name
from tests.factories import AgentFactory, AssistantFactory, ChannelFactory, TeamFactory

from .conftest import assert_page_clean, sign_in, wait_live

pytestmark = [pytest.mark.browser]


@pytest.fixture
def world(transactional_db):
    team = TeamFactory(name="Support")
    marina = AgentFactory(display_name="Marina", username="marina", teams=[team])

    def channel(key, prechat):
        return ChannelFactory(
            kind="website",
            key=key,
            name=f"Chat {key}",
            assistant=AssistantFactory(handoff_enabled=True),
            default_team=team,
            prechat_form=prechat,
        )

    return {"marina": marina, "channel": channel}


def test_a_required_form_refuses_a_bad_email_then_the_agent_sees_who_and_where(
    open_page, world, live_server_url
):
    world["channel"]("shop", Channel.PrechatForm.REQUIRED)
    customer = open_page("customer")
    customer.goto("/widget/demo/?channel=shop", referer=f"{live_server_url}/from-a-search")
    customer.click(".le-launch")
    customer.wait_for_selector(".le-prechat-name")
    assert not customer.locator(".le-input").is_visible()  # no message before the form
    assert not customer.locator(".le-prechat-skip").is_visible()  # required: no skipping

    customer.fill(".le-prechat-name", "Jamie Patel")
    customer.fill(".le-prechat-email", "jamie@nowhere")
    customer.click(".le-prechat-start")
    error = customer.locator(".le-prechat-email-error")
    error.wait_for()
    customer.wait_for_selector(".le-prechat-email-error:has-text('email address')")
    assert customer.locator(".le-prechat-email").get_attribute("aria-invalid") == "true"
    assert Conversation.objects.count() == 0

    customer.fill(".le-prechat-email", "jamie@example.com")
    customer.click(".le-prechat-start")
    customer.wait_for_selector(".le-input", state="visible")
    assert not customer.locator(".le-prechat").is_visible()
    # The form was checked, nothing stored: a customer who leaves now leaves nothing behind.
    assert Conversation.objects.count() == 0
    customer.fill(".le-input", "I want to speak to a person about order 5512")
    customer.press(".le-input", "Enter")
    customer.wait_for_selector(".le-customer:has-text('order 5512')")
    assert_page_clean(customer)

    conversation = Conversation.objects.select_related("contact").get()
    assert conversation.contact.name == "Jamie Patel"
    language = customer.evaluate("navigator.language")
    time_zone = customer.evaluate("Intl.DateTimeFormat().resolvedOptions().timeZone")

    agent = open_page("agent")
    sign_in(agent, world["marina"], f"/crm/conversations/{conversation.pk}/")
    wait_live(agent)
    card = agent.locator(".contact-card")
    assert card.locator("#contact-link").inner_text() == "Jamie Patel"
    assert "jamie@example.com" in card.inner_text()
    assert agent.locator("#visitor-pill").count() == 0
    assert "/widget/demo/?channel=shop" in card.locator(".visit-page").inner_text()
    assert card.locator(".visit-referrer").inner_text() == f"{live_server_url}/from-a-search"
    assert card.locator(".visit-language").inner_text() == language
    assert card.locator(".visit-time-zone").inner_text() == time_zone
    assert_page_clean(agent)


def test_a_skipped_form_leaves_a_friendly_visitor_in_the_queue_inbox_and_contact_panel(
    open_page, world
):
    world["channel"]("maybe", Channel.PrechatForm.OPTIONAL)
    customer = open_page("customer")
    customer.goto("/widget/demo/?channel=maybe")
    customer.click(".le-launch")
    customer.click(".le-prechat-skip")
    customer.wait_for_selector(".le-input", state="visible")
    customer.fill(".le-input", "I want to speak to a person")
    customer.press(".le-input", "Enter")
    customer.wait_for_selector(".le-customer:has-text('speak to a person')")

    conversation = Conversation.objects.select_related("contact").get()
    assert conversation.contact.is_visitor
    name = visitor_name(conversation.contact_id)

    agent = open_page("agent")
    sign_in(agent, world["marina"])
    wait_live(agent)
    row = agent.locator("#queue-results tr.queue-row")
    row.first.wait_for()
    assert row.first.locator("td.contact").inner_text() == f"{name} (visitor)"
    assert "Contact #" not in agent.locator("body").inner_text()

    agent.goto(f"/crm/inbox/?c={conversation.pk}")
    wait_live(agent)
    assert f"{name} (visitor)" in agent.locator(".inbox-contact").first.inner_text()
    card = agent.locator("#workspace .contact-card")
    assert card.locator("#contact-link").inner_text() == name
    assert card.locator("#visitor-pill").inner_text() == "Visitor"
    assert "/widget/demo/?channel=maybe" in card.locator(".visit-page").inner_text()
    assert card.locator(".visit-referrer").count() == 0  # the page was opened directly
    assert_page_clean(agent)
    assert_page_clean(customer)
