"""The rest of the agent's workspace in Chromium: WhatsApp's 24-hour window (time left, then
free text refused and a template sent), handing back to the AI with a note the assistant then
answers from, and finding a conversation by its text, then the contact's history."""

from datetime import timedelta

import pytest
from django.utils import timezone

from crm import services as crm_services
from crm.models import Message, MessageTemplate
from escalation import satisfaction
from escalation import services as escalation_services
from escalation.models import Escalation, Priority
from tests.factories import (
    AgentFactory,
    AssistantFactory,
    ChannelFactory,
    ConversationFactory,
    TeamFactory,
)

from .conftest import off_the_browser_thread, sign_in, wait_for_js, wait_live
from .test_inbox import assert_clean, watch_console

pytestmark = [pytest.mark.browser, pytest.mark.postgres, pytest.mark.redis]


def handled(conversation, agent, text="Refund please"):
    crm_services.receive_customer_message(conversation=conversation, text=text)
    escalation = escalation_services.escalate_conversation(
        conversation=conversation,
        reason="request",
        priority=Priority.NORMAL,
        triggered_by=Escalation.Trigger.DETECTION,
    )[0]
    escalation_services.take_over_escalation(escalation_id=escalation.pk, agent=agent)
    return escalation


def test_the_whatsapp_window_counts_down_closes_and_a_template_goes_out(
    open_page, transactional_db
):
    marina = AgentFactory(display_name="Marina", username="marina")
    # No access token: the provider is never called from the test server (the send is
    # recorded as failed instead); tests/crm/test_reply_window.py drives the real call.
    whatsapp = ChannelFactory(kind="whatsapp", name="WhatsApp", access_token="")
    MessageTemplate.objects.create(
        channel=whatsapp, name="follow_up", language="en_US", body="Hi! Reply to continue."
    )
    conversation = ConversationFactory(channel=whatsapp, external_id="34600", contact__name="Ana")
    off_the_browser_thread(handled, conversation, marina)
    # The customer wrote 24 hours ago, less 12 seconds.
    Message.objects.filter(conversation=conversation, sender="customer").update(
        created_at=timezone.now() - timedelta(hours=24) + timedelta(seconds=12)
    )

    page = open_page("marina")
    errors = watch_console(page)
    sign_in(page, marina, next_url=f"/crm/inbox/?c={conversation.pk}")
    wait_live(page)
    page.wait_for_selector("#reply-window .window-left")
    assert "left to reply freely" in page.locator("#reply-window").inner_text()
    assert page.locator("#send-reply").is_enabled()

    # When it runs out the panel says so, free text is refused, a template is offered.
    page.wait_for_selector(
        "#reply-window:has-text('The 24-hour WhatsApp window has closed.')", timeout=30_000
    )
    wait_for_js(page, "document.querySelector('#send-reply').disabled")
    page.wait_for_selector("#reply-warning:has-text('free text can')")
    page.fill("#reply-text", "Are you still there?")
    page.press("#reply-text", "Enter")
    page.select_option("#template-choice", label="follow_up (en_US) — Hi! Reply to continue.")
    page.click("#send-template")
    page.wait_for_selector("#messages .sender-agent:has-text('Hi! Reply to continue.')")
    assert not Message.objects.filter(text="Are you still there?").exists()
    assert Message.objects.get(conversation=conversation, template__name="follow_up")
    assert_clean(page)
    assert errors == []


def test_hand_back_with_a_note_and_the_assistant_answers_from_it(open_page, transactional_db):
    team = TeamFactory(name="Support")
    channel = ChannelFactory(
        kind="website",
        assistant=AssistantFactory(handoff_enabled=True, always_human_topics=[]),
        default_team=team,
    )
    marina = AgentFactory(display_name="Marina", username="marina", teams=[team])

    # A conversation escalated after a weak AI answer, resumed by the customer's widget from
    # localStorage. After the hand-back, detection reads only what comes after it, so that
    # answer doesn't hand the customer's next question straight back to the queue.
    conversation = ConversationFactory(channel=channel, contact__name="Jamie Patel")

    def escalate():
        Message.objects.create(
            conversation=conversation,
            channel=channel,
            sender="customer",
            text="My order arrived damaged",
        )
        Message.objects.create(
            conversation=conversation,
            channel=channel,
            sender="ai",
            text="I'm not sure I can help with that.",
            confidence=0.1,
        )
        return escalation_services.escalate_conversation(
            conversation=conversation,
            reason="complexity",
            priority=Priority.NORMAL,
            triggered_by=Escalation.Trigger.DETECTION,
        )[0]

    off_the_browser_thread(escalate)
    customer = open_page("customer")
    customer_errors = watch_console(customer)
    key = f"live-escalation:{channel.key}"
    customer.add_init_script(
        f"localStorage.setItem({key!r}, JSON.stringify("
        f"{{id: {conversation.pk}, token: {conversation.customer_token!r}}}))"
    )
    customer.goto(f"/widget/demo/?channel={channel.key}")
    customer.click(".le-launch")
    customer.wait_for_selector(".le-status:has-text('You are number 1')", timeout=45_000)

    agent = open_page("marina")
    agent_errors = watch_console(agent)
    sign_in(agent, marina, next_url="/crm/inbox/")
    wait_live(agent)
    agent.wait_for_selector("#take-over")
    agent.keyboard.press("t")
    customer.wait_for_selector(".le-status:has-text('Now speaking with Marina')")

    note = "Refunded the duplicate charge; the money will reach your card in 3-5 business days."
    agent.click("#hand-back-menu summary")
    agent.fill("#hand-back-note", note)
    agent.click("#hand-back")
    agent.wait_for_selector("#conversation-mode:has-text('AI')")
    customer.wait_for_selector(".le-system:has-text('chatting with our assistant again')")
    customer.wait_for_selector(".le-status:has-text('Our assistant')")
    agent.wait_for_selector(f"#messages .note:has-text('{note}')")

    customer.fill(".le-input", "When will the money reach my card?")
    customer.press(".le-input", "Enter")
    customer.wait_for_selector(f".le-ai:has-text('{note}')", timeout=45_000)
    assert note not in customer.locator(".le-customer").all_inner_texts()
    assert_clean(agent)
    assert agent_errors == [] and customer_errors == []


def test_search_by_name_email_or_text_then_the_contact_page(open_page, transactional_db):
    marina = AgentFactory(display_name="Marina", username="marina")
    conversation = ConversationFactory(contact__name="Jamie Patel", contact__email="jp@shop.test")
    escalation = off_the_browser_thread(
        handled, conversation, marina, text="My parcel 7781 never arrived"
    )

    def resolved_and_rated():
        escalation_services.resolve_escalation(escalation_id=escalation.pk, agent=marina)
        satisfaction.rate_escalation(
            conversation_id=conversation.pk,
            escalation_id=escalation.pk,
            score=4,
            comment="Quick, thanks",
        )

    off_the_browser_thread(resolved_and_rated)
    ConversationFactory(contact__name="Ana Ruiz", contact__email="ana@shop.test")

    page = open_page("marina")
    errors = watch_console(page)
    sign_in(page, marina, next_url="/crm/inbox/")
    # By name and by email, from the search page's own box.
    for query in ("jamie pat", "JP@SHOP"):
        page.goto("/crm/search/")
        page.fill("#search-q", query)
        page.press("#search-q", "Enter")
        page.wait_for_selector("#search-results")
        rows = page.locator("#search-results .search-result")
        assert rows.count() == 1 and "Jamie Patel" in rows.first.inner_text(), query
        assert "jp@shop.test" in rows.first.inner_text()

    # By message text, from the inbox's box.
    page.goto("/crm/inbox/")
    page.fill("#inbox-search-q", "parcel 7781")
    page.press("#inbox-search-q", "Enter")
    page.wait_for_url("**/crm/search/?q=parcel+7781")
    rows = page.locator("#search-results .search-result")
    assert rows.count() == 1 and "Jamie Patel" in rows.first.inner_text()
    rows.first.locator("a", has_text="Jamie Patel").click()
    page.wait_for_url(f"**/crm/contacts/{conversation.contact_id}/")
    assert f"#{conversation.pk}" in page.locator("#contact-conversations").inner_text()
    ticket = Escalation.objects.get(pk=escalation.pk).ticket
    assert ticket.reference in page.locator("#contact-tickets").inner_text()
    rating = page.locator("#contact-ratings li[data-rating]")
    assert rating.count() == 1
    assert "4/5" in rating.inner_text() and "Quick, thanks" in rating.inner_text()
    assert f"Conversation #{conversation.pk}" in rating.inner_text()
    page.locator("#contact-conversations a", has_text=f"#{conversation.pk}").click()
    page.wait_for_url(f"**/crm/conversations/{conversation.pk}/")
    page.wait_for_selector("#messages .sender-customer:has-text('parcel 7781')")
    assert_clean(page)
    assert errors == []
