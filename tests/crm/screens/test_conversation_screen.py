"""The conversation view: summary on top, labelled history, contact, sentiment, and actions."""

import pytest

from crm import services as crm_services
from crm.models import ContactIdentity, Conversation, Message
from escalation import services as escalation_services
from escalation.models import Escalation, MessageAnalysis
from tests.factories import ConversationFactory
from tickets.models import Ticket

HTMX = {"HTTP_HX_REQUEST": "true"}  # how the page asks for its fragments

HTMX_PANEL = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "conversation-panel"}


def page(client, escalation) -> str:
    response = client.get(f"/crm/conversations/{escalation.conversation_id}/")
    assert response.status_code == 200
    return response.content.decode()


def test_summary_and_reason_come_first_then_the_labelled_history(agent_client, escalate):
    conversation = ConversationFactory(contact__name="Jamie Patel")
    crm_services.receive_customer_message(conversation=conversation, text="Where is my refund?")
    escalation = escalate(conversation, reason="complexity", detail="Refund of a duplicate $49")
    html = page(agent_client, escalation)
    summary_at = html.index('id="ai-summary"')
    assert summary_at < html.index('id="messages"')
    assert "Customer wants a refund of a duplicate charge." in html
    assert "Complex issue" in html and "Refund of a duplicate $49" in html
    assert '<span class="sender-label">Customer</span>' in html
    assert '<span class="sender-label">System</span>' in html  # the handoff message
    assert "Where is my refund?" in html
    assert 'id="take-over"' in html


def test_the_contact_profile_lists_identities_prior_chats_and_tickets(agent_client, escalate):
    earlier = ConversationFactory(contact__name="Jamie Patel", contact__email="jamie@example.com")
    contact = earlier.contact
    ContactIdentity.objects.create(contact=contact, channel_kind="whatsapp", external_id="+1555")
    old_escalation = escalate(earlier)
    escalation_services.cancel_escalation(escalation_id=old_escalation.pk)
    current = escalate(ConversationFactory(contact=contact))
    html = page(agent_client, current)
    assert "jamie@example.com" in html
    assert "WhatsApp: +1555" in html
    assert f'href="/crm/conversations/{earlier.pk}/"' in html
    assert old_escalation.ticket.reference in html


def test_sentiment_of_customer_messages_is_drawn_as_a_chart(agent_client, escalate):
    conversation = ConversationFactory()
    scores = [0.4, -0.2, -0.9]
    for index, score in enumerate(scores):
        message = Message.objects.create(
            conversation=conversation,
            channel=conversation.channel,
            sender="customer",
            text=f"message {index}",
        )
        MessageAnalysis.objects.create(
            message=message, backend="local", signals={"sentiment": {"score": score}}
        )
    # an analysis without a score is skipped, not a crash
    odd = Message.objects.create(
        conversation=conversation, channel=conversation.channel, sender="customer", text="odd"
    )
    MessageAnalysis.objects.create(message=odd, backend="local", signals={"sentiment": "n/a"})
    escalation = escalate(conversation)
    html = page(agent_client, escalation)
    assert html.count("<circle cx=") == 3
    assert "dot-negative" in html and "dot-positive" in html
    assert "latest -0.9" in html
    partial = agent_client.get(f"/crm/conversations/{conversation.pk}/sentiment/", **HTMX)
    assert partial.content.decode().count("<circle cx=") == 3


def test_customer_and_ai_text_is_escaped(agent_client, escalate):
    conversation = ConversationFactory(contact__name="<b>Eve</b>")
    payload = '<script>alert("xss")</script><img src=x onerror=alert(1)>'
    crm_services.receive_customer_message(conversation=conversation, text=payload)
    escalation = escalate(conversation)
    Escalation.objects.filter(pk=escalation.pk).update(summary=payload)
    html = page(agent_client, escalation)
    assert "<script>alert" not in html
    assert "<img src=x" not in html
    assert "&lt;script&gt;alert(&quot;xss&quot;)&lt;/script&gt;" in html
    assert "&lt;b&gt;Eve&lt;/b&gt;" in html
    fragment = agent_client.get(f"/crm/conversations/{conversation.pk}/messages/?after=0", **HTMX)
    assert "<script>alert" not in fragment.content.decode()


def test_take_over_gives_the_agent_the_conversation(agent_client, agent, escalate):
    escalation = escalate()
    response = agent_client.post(f"/crm/escalations/{escalation.pk}/take-over/", **HTMX_PANEL)
    assert response.status_code == 200
    html = response.content.decode()
    assert "You are handling this conversation." in html
    assert 'data-can-reply="1"' in html
    assert response["HX-Trigger"] == "le-messages"
    escalation.refresh_from_db()
    assert escalation.status == "claimed" and escalation.claimed_by == agent


def test_take_over_after_someone_else_names_the_winner_without_an_error_page(
    agent_client, other_agent, escalate
):
    escalation = escalate()
    escalation_services.take_over_escalation(escalation_id=escalation.pk, agent=other_agent)
    response = agent_client.post(f"/crm/escalations/{escalation.pk}/take-over/", **HTMX_PANEL)
    assert response.status_code == 409
    assert response["X-Swap-On-Error"] == "1"  # crm.js swaps it in
    html = response.content.decode()
    assert "Alex already took this conversation." in html
    assert "Alex is handling this conversation." in html
    # from the queue: a toast
    response = agent_client.post(
        f"/crm/escalations/{escalation.pk}/take-over/",
        HTTP_HX_REQUEST="true",
        HTTP_HX_TARGET="queue-results",
    )
    assert response["HX-Retarget"] == "#toasts"
    assert "Alex already took this conversation." in response.content.decode()
    # without JavaScript: back to the page with the same words
    response = agent_client.post(f"/crm/escalations/{escalation.pk}/take-over/", follow=True)
    assert response.status_code == 200
    assert "Alex already took this conversation." in response.content.decode()


def test_a_plain_take_over_post_from_the_inbox_returns_to_the_inbox(agent_client, escalate):
    escalation = escalate()
    inbox = f"http://testserver/crm/inbox/?c={escalation.conversation_id}"
    response = agent_client.post(f"/crm/escalations/{escalation.pk}/take-over/", HTTP_REFERER=inbox)
    assert response.status_code == 302 and response["Location"] == inbox
    # from anywhere else (here another site), the conversation page as before
    response = agent_client.post(
        f"/crm/escalations/{escalation.pk}/resolve/",
        HTTP_REFERER="https://elsewhere.example/crm/inbox/",
    )
    assert response["Location"] == f"/crm/conversations/{escalation.conversation_id}/"


def test_take_over_from_the_queue_opens_the_conversation(agent_client, escalate):
    escalation = escalate()
    response = agent_client.post(
        f"/crm/escalations/{escalation.pk}/take-over/",
        HTTP_HX_REQUEST="true",
        HTTP_HX_TARGET="queue-results",
    )
    assert response["HX-Redirect"] == f"/crm/conversations/{escalation.conversation_id}/"


def test_replies_need_the_conversation_and_notes_stay_private(agent_client, agent, escalate):
    escalation = escalate()
    url = f"/crm/conversations/{escalation.conversation_id}/reply/"
    refused = agent_client.post(url, {"text": "Hello"}, HTTP_HX_REQUEST="true")
    assert refused.status_code == 403
    assert refused["HX-Retarget"] == "#toasts"
    assert "Take over this conversation before replying." in refused.content.decode()

    note = agent_client.post(url, {"text": "VIP customer", "private": "1"}, HTTP_HX_REQUEST="true")
    assert note.status_code == 204
    stored = Message.objects.get(text="VIP customer")
    assert stored.is_private_note and stored.author == agent

    escalation_services.take_over_escalation(escalation_id=escalation.pk, agent=agent)
    sent = agent_client.post(url, {"text": "Hi Jamie", "private": "0"}, HTTP_HX_REQUEST="true")
    assert sent.status_code == 204 and sent["HX-Trigger"] == "le-messages"
    assert not Message.objects.get(text="Hi Jamie").is_private_note

    html = agent_client.get(
        f"/crm/conversations/{escalation.conversation_id}/messages/?after=0", **HTMX
    ).content.decode()
    assert "Private note · Marina" in html and "staff only" in html
    assert "Agent · Marina" in html


def test_an_empty_reply_is_a_clear_error(agent_client, agent, escalate):
    escalation = escalate()
    escalation_services.take_over_escalation(escalation_id=escalation.pk, agent=agent)
    response = agent_client.post(
        f"/crm/conversations/{escalation.conversation_id}/reply/",
        {"text": "   "},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 400
    assert "Message text is empty." in response.content.decode()


def test_messages_after_an_id_are_only_the_new_ones(agent_client, escalate):
    escalation = escalate()
    first = Message.objects.filter(conversation_id=escalation.conversation_id).order_by("id")
    last_id = first.last().id
    crm_services.receive_customer_message(conversation=escalation.conversation, text="new one")
    html = agent_client.get(
        f"/crm/conversations/{escalation.conversation_id}/messages/?after={last_id}", **HTMX
    ).content.decode()
    assert "new one" in html and html.count("data-message-id=") == 1
    bad = agent_client.get(
        f"/crm/conversations/{escalation.conversation_id}/messages/?after=x", **HTMX
    )
    assert bad.status_code == 400


def test_resolve_then_close_updates_escalation_ticket_and_conversation(
    agent_client, agent, escalate
):
    escalation = escalate()
    escalation_services.take_over_escalation(escalation_id=escalation.pk, agent=agent)
    response = agent_client.post(f"/crm/escalations/{escalation.pk}/resolve/", **HTMX_PANEL)
    assert response.status_code == 200
    assert Ticket.objects.get(escalation=escalation).status == "resolved"
    assert 'id="close"' in response.content.decode()
    response = agent_client.post(f"/crm/escalations/{escalation.pk}/close/", **HTMX_PANEL)
    assert response.status_code == 200
    escalation.refresh_from_db()
    assert escalation.status == "closed"
    assert Conversation.objects.get(pk=escalation.conversation_id).mode == "closed"


def test_after_resolve_the_panel_and_the_sidebar_tell_one_state(agent_client, agent, escalate):
    """The panel's answer carries the contact's tickets out of band: the sidebar's ticket says
    Resolved with the panel, in the conversation page and the inbox (the same partials), and
    so does the live refresh another agent's page makes."""
    escalation = escalate()
    escalation_services.take_over_escalation(escalation_id=escalation.pk, agent=agent)
    page_before = page(agent_client, escalation)
    ticket = Ticket.objects.get(escalation=escalation)
    assert f'data-ticket="{ticket.pk}"' in page_before
    response = agent_client.post(f"/crm/escalations/{escalation.pk}/resolve/", **HTMX_PANEL)
    html = response.content.decode()
    assert '<span class="status-text">Resolved' in html
    assert 'id="contact-tickets" hx-swap-oob="true"' in html
    sidebar = html[html.index('id="contact-tickets"') :]
    assert '<span class="pill status-resolved">Resolved</span>' in sidebar
    assert "status-open" not in sidebar
    assert "Waiting for the customer's rating" in html
    refresh = agent_client.get(
        f"/crm/conversations/{escalation.conversation_id}/panel/", **HTMX
    ).content.decode()
    assert 'hx-swap-oob="true"' in refresh and "status-resolved" in refresh


def test_closing_without_resolving_needs_a_reason(agent_client, agent, escalate):
    escalation = escalate()
    escalation_services.take_over_escalation(escalation_id=escalation.pk, agent=agent)
    response = agent_client.post(f"/crm/escalations/{escalation.pk}/close/", **HTMX_PANEL)
    assert response.status_code == 409  # depends on the escalation's state
    assert response["HX-Retarget"] == "#toasts"
    assert "Say why you are closing without resolving." in response.content.decode()
    response = agent_client.post(
        f"/crm/escalations/{escalation.pk}/close/", {"reason": "Spam"}, **HTMX_PANEL
    )
    assert response.status_code == 200
    escalation.refresh_from_db()
    assert escalation.status == "closed" and escalation.close_reason == "Spam"


def test_reassign_to_an_agent_a_team_or_back_to_the_queue(
    agent_client, agent, other_agent, escalate, team
):
    escalation = escalate()
    escalation_services.take_over_escalation(escalation_id=escalation.pk, agent=agent)
    url = f"/crm/escalations/{escalation.pk}/reassign/"

    agent_client.post(url, {"target": f"team:{team.pk}"}, **HTMX_PANEL)
    escalation.refresh_from_db()
    assert escalation.status == "queued" and escalation.team == team

    escalation_services.take_over_escalation(escalation_id=escalation.pk, agent=agent)
    agent_client.post(url, {"target": f"agent:{other_agent.pk}", "note": "billing"}, **HTMX_PANEL)
    escalation.refresh_from_db()
    assert escalation.status == "claimed" and escalation.claimed_by == other_agent

    # now it is Alex's: Marina (an agent, not a manager) may not move it
    response = agent_client.post(url, {"target": "queue"}, **HTMX_PANEL)
    assert response.status_code == 403
    escalation.refresh_from_db()
    assert escalation.claimed_by == other_agent


def test_reassign_rejects_unknown_targets(agent_client, escalate):
    escalation = escalate()
    for target in ["agent:999999", "team:999999", "somewhere"]:
        response = agent_client.post(
            f"/crm/escalations/{escalation.pk}/reassign/", {"target": target}, **HTMX_PANEL
        )
        assert response.status_code == 400, target
    escalation.refresh_from_db()
    assert escalation.status == "queued"


def test_a_manager_can_act_on_someone_elses_conversation(manager_client, other_agent, escalate):
    escalation = escalate()
    escalation_services.take_over_escalation(escalation_id=escalation.pk, agent=other_agent)
    html = manager_client.get(f"/crm/conversations/{escalation.conversation_id}/").content.decode()
    assert 'id="resolve"' in html
    response = manager_client.post(
        f"/crm/escalations/{escalation.pk}/reassign/", {"target": "queue"}, **HTMX_PANEL
    )
    assert response.status_code == 200
    escalation.refresh_from_db()
    assert escalation.status == "queued"


def test_an_agent_sees_who_handles_a_conversation_and_no_owner_actions(
    agent_client, other_agent, escalate
):
    escalation = escalate()
    escalation_services.take_over_escalation(escalation_id=escalation.pk, agent=other_agent)
    html = page(agent_client, escalation)
    assert "Alex is handling this conversation." in html
    assert 'id="resolve"' not in html and 'id="take-over"' not in html
    assert 'data-can-reply="0"' in html


def test_hand_back_returns_the_conversation_to_the_ai(agent_client, agent, escalate):
    escalation = escalate()
    escalation_services.take_over_escalation(escalation_id=escalation.pk, agent=agent)
    agent_client.post(f"/crm/escalations/{escalation.pk}/hand-back/", **HTMX_PANEL)
    assert Conversation.objects.get(pk=escalation.conversation_id).mode == "ai"


@pytest.mark.django_db
def test_unknown_conversations_and_escalations_are_404(agent_client):
    assert agent_client.get("/crm/conversations/999999/").status_code == 404
    assert agent_client.post("/crm/escalations/999999/take-over/").status_code == 404


def test_conversation_list_shows_mine_and_recent(agent_client, agent, escalate):
    escalation = escalate(contact_name="Mine Person")
    escalation_services.take_over_escalation(escalation_id=escalation.pk, agent=agent)
    html = agent_client.get("/crm/conversations/").content.decode()
    assert "Mine Person" in html
    assert agent_client.get("/crm/conversations/?mode=bogus").status_code == 200


def test_the_conversation_page_query_count_does_not_grow_with_history(
    agent_client, agent, escalate, django_assert_max_num_queries
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    escalation = escalate()
    escalation_services.take_over_escalation(escalation_id=escalation.pk, agent=agent)
    url = f"/crm/conversations/{escalation.conversation_id}/"
    with CaptureQueriesContext(connection) as short:
        agent_client.get(url)
    conversation = escalation.conversation
    for index in range(30):
        message = Message.objects.create(
            conversation=conversation,
            channel=conversation.channel,
            sender="customer" if index % 2 else "agent",
            author=None if index % 2 else agent,
            text=f"line {index}",
        )
        if index % 2:
            MessageAnalysis.objects.create(
                message=message, backend="local", signals={"sentiment": {"score": -0.5}}
            )
    with django_assert_max_num_queries(len(short)):
        response = agent_client.get(url)
    assert response.content.decode().count("data-message-id=") >= 30
