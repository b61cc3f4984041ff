"""The end of a conversation, in a real browser: a German-speaking customer on the widget is
taken over and resolved, reads the closing message in German, rates 4 with a comment, and the
rating reaches the agent's page and Analytics; the agent's page (conversation page and inbox)
tells one state after Resolve, live."""

import pytest

from escalation.models import Escalation, SatisfactionRating
from tests.factories import AgentFactory, AssistantFactory, ChannelFactory, TeamFactory

from .conftest import assert_page_clean, log_in, real_password, sign_in, wait_live

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
    morgan = AgentFactory(display_name="Morgan", username="morgan", role="manager", teams=[team])
    return {"channel": channel, "marina": marina, "morgan": morgan, "team": team}


def customer_asks_for_a_person(customer):
    customer.goto("/widget/demo/")
    customer.click(".le-launch")
    customer.fill(".le-input", "Ich möchte bitte mit einem Menschen sprechen")
    customer.press(".le-input", "Enter")
    customer.wait_for_selector(".le-system:has-text('Ich verbinde Sie mit jemandem')")


def test_a_customer_is_resolved_reads_the_closing_in_german_and_rates_it(open_page, world):
    customer = open_page("customer", locale="de-DE")
    customer_asks_for_a_person(customer)
    # The widget's own words follow the browser's language, the server's the conversation's
    assert customer.locator(".le-send").inner_text() == "Senden"
    assert customer.locator(".le-input").get_attribute("placeholder") == "Ihre Nachricht…"
    assert "etwa" in customer.locator(".le-system").first.inner_text()  # the plural phrase

    agent = open_page("agent")
    log_in(agent, "marina")
    wait_live(agent)
    agent.locator("#queue-results tr.queue-row td.contact a").first.click()
    agent.wait_for_url("**/crm/conversations/*/")
    wait_live(agent)
    agent.click("#take-over")
    agent.wait_for_selector("#handled-by:has-text('You are handling this conversation.')")
    customer.wait_for_selector(".le-system:has-text('Sie sprechen jetzt mit Marina')")
    customer.wait_for_selector(".le-status:has-text('Sie sprechen jetzt mit Marina')")

    agent.click("#resolve")
    agent.wait_for_selector("#conversation-panel .status-text:has-text('Resolved')")
    # One state: the sidebar's ticket follows the panel without a reload
    agent.wait_for_selector("#contact-tickets .pill:has-text('Resolved')")
    assert agent.locator("#contact-tickets .status-open").count() == 0
    agent.wait_for_selector('#customer-rating:has-text("Waiting for the customer\'s rating")')
    assert_page_clean(agent)

    # The customer: the closing message in German, no "Now speaking with", the rating card
    customer.wait_for_selector(".le-system:has-text('Danke für Ihre Nachricht.')")
    customer.wait_for_selector(".le-rating.shown .le-rating-prompt:has-text('Wie waren wir?')")
    customer.wait_for_selector(".le-status:has-text('Gelöst — schreiben Sie hier')")
    assert "sprechen jetzt mit" not in customer.locator(".le-status").inner_text()
    customer.click(".le-star[data-score='4']")
    customer.fill(".le-comment", "Schnell und freundlich")
    assert customer.locator(".le-rate").inner_text() == "Bewertung senden"
    customer.click(".le-rate")
    customer.wait_for_selector(".le-rating.shown .le-thanks")
    customer.wait_for_selector(".le-system:has-text('Danke für Ihre Rückmeldung!')")
    assert_page_clean(customer)

    rating = SatisfactionRating.objects.get()
    assert (rating.score, rating.comment) == (4, "Schnell und freundlich")
    assert rating.escalation.claimed_by == world["marina"]

    # The agent's open page shows the rating live
    agent.wait_for_selector("#customer-rating:has-text('Customer rating: 4/5')")
    assert "Schnell und freundlich" in agent.locator("#customer-rating").inner_text()

    # A reload keeps the end: still not "Now speaking with", nothing left to rate
    customer.reload()
    customer.click(".le-launch")
    customer.wait_for_selector(".le-system:has-text('Danke für Ihre Rückmeldung!')")
    customer.wait_for_selector(".le-status:has-text('Gelöst')")
    assert customer.locator(".le-rating.shown").count() == 0

    # Analytics: the manager sees Marina's rating
    manager = open_page("manager")
    sign_in(manager, world["morgan"], next_url="/crm/analytics/")
    csat = manager.locator("#csat")
    csat.wait_for()
    assert "4.0" in csat.inner_text() and "Marina" in csat.inner_text()
    assert_page_clean(manager)


def test_after_close_the_customer_starts_a_new_conversation_with_the_assistant(open_page, world):
    customer = open_page("customer")
    customer_asks_for_a_person(customer)
    escalation = Escalation.objects.get()

    agent = open_page("agent")
    sign_in(agent, world["marina"], next_url=f"/crm/inbox/?c={escalation.conversation_id}")
    wait_live(agent)
    agent.wait_for_selector(f'#conversation[data-conversation-id="{escalation.conversation_id}"]')
    agent.click("#take-over")
    agent.wait_for_selector("#handled-by:has-text('You are handling this conversation.')")
    agent.click("#resolve")
    # the inbox's conversation pane: one state there too
    agent.wait_for_selector("#conversation-panel .status-text:has-text('Resolved')")
    agent.wait_for_selector("#contact-tickets .pill:has-text('Resolved')")
    # and the inbox's lists follow: nothing of Marina's open, one recently resolved
    agent.wait_for_selector("#count-mine:text-is('0')")
    agent.wait_for_selector("#count-resolved:text-is('1')")
    agent.click("#close")
    agent.wait_for_selector("#contact-tickets .pill:has-text('Closed')")
    agent.wait_for_selector("#conversation-mode:has-text('Closed')")
    assert_page_clean(agent)

    # one closing message (resolve, then close), the prompt, then a new conversation
    customer.wait_for_selector(".le-status:has-text('This conversation is closed')")
    assert customer.locator(".le-system:has-text('Danke für Ihre Nachricht.')").count() == 1
    customer.click(".le-star[data-score='5']")
    customer.click(".le-rate")
    customer.click(".le-again")
    customer.wait_for_selector(".le-status:has-text('Our assistant')")
    assert customer.locator(".le-msg").count() == 0
    customer.fill(".le-input", "What are your opening hours?")
    customer.press(".le-input", "Enter")
    customer.wait_for_selector(".le-customer:has-text('What are your opening hours?')")
    customer.wait_for_selector(".le-ai")
    assert SatisfactionRating.objects.get().score == 5
    conversations = list(Escalation.objects.values_list("conversation_id", flat=True)) + [None]
    assert len({c for c in conversations if c}) == 1  # the new conversation has no escalation
    assert_page_clean(customer)
