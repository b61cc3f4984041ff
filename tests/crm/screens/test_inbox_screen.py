"""The three-pane inbox, canned-reply endpoints, search and the contact page, through the test
client: what an agent sees and what a bad request gets."""

import re

import pytest

from crm import services as crm_services
from crm.models import CannedReply
from escalation import services as escalation_services
from tests.factories import AgentFactory, ConversationFactory

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def agent(team):
    return AgentFactory(display_name="Marina", username="marina", teams=[team])


def counts(html: str) -> dict:
    return {name: int(value) for name, value in re.findall(r'id="count-(\w+)">(\d+)<', html)}


def test_the_inbox_shows_four_lists_with_counts_and_opens_the_first_conversation(
    agent_client, agent, escalate, team
):
    first = escalate(contact_name="Jamie Patel", priority="high", team=team)
    escalate(contact_name="Ana Ruiz")
    mine = escalate(contact_name="Lee Wong", team=team)
    escalation_services.take_over_escalation(escalation_id=mine.pk, agent=agent)

    page = agent_client.get("/crm/inbox/").content.decode()
    assert counts(page) == {"queued": 2, "mine": 1, "team": 2, "resolved": 0}
    assert 'id="conversation"' in page and f'data-conversation-id="{first.conversation_id}"' in page
    assert "{%" not in page and "{{" not in page

    lists = agent_client.get("/crm/inbox/lists/?list=mine", **HTMX).content.decode()
    assert "Lee Wong" in lists and "Jamie Patel" not in lists
    assert 'aria-selected="true">Mine' in lists

    pane = agent_client.get(f"/crm/inbox/conversations/{mine.conversation_id}/", **HTMX)
    assert pane.status_code == 200
    assert "You are handling this conversation." in pane.content.decode()
    # Opened directly (a new tab), a fragment leads to its page.
    direct = agent_client.get(f"/crm/inbox/conversations/{mine.conversation_id}/")
    assert direct.status_code == 302
    assert direct["Location"] == f"/crm/conversations/{mine.conversation_id}/"
    assert agent_client.get("/crm/inbox/lists/")["Location"] == "/crm/inbox/"


def test_inbox_lists_run_a_fixed_number_of_queries(
    agent_client, escalate, django_assert_max_num_queries
):
    for n in range(3):
        escalate(contact_name=f"Customer {n}")
    with django_assert_max_num_queries(8) as small:
        agent_client.get("/crm/inbox/lists/", **HTMX)
    for n in range(3, 20):
        escalate(contact_name=f"Customer {n}")
    with django_assert_max_num_queries(len(small.captured_queries)):
        agent_client.get("/crm/inbox/lists/", **HTMX)


def test_bad_inbox_parameters_fall_back_or_are_404(agent_client):
    assert agent_client.get("/crm/inbox/?list=nope&c=abc").status_code == 200
    assert agent_client.get("/crm/inbox/?c=99999999999999999999999").status_code == 200
    assert agent_client.get("/crm/inbox/conversations/999999/", **HTMX).status_code == 404


def test_canned_search_and_insert_in_the_reply_box(agent_client, agent, escalate):
    escalation = escalate(contact_name="Jamie Patel")
    crm_services.save_canned_reply(
        actor=agent,
        shortcut="refund",
        title="Refund sent",
        body="Hi {contact.first_name}, {ticket.reference} is done. — {agent.name}",
    )
    menu = agent_client.get("/crm/canned-replies/search/?q=ref", **HTMX).content.decode()
    reply = CannedReply.objects.get()
    assert f'data-reply-id="{reply.pk}"' in menu and "/refund" in menu
    answer = agent_client.post(
        f"/crm/conversations/{escalation.conversation_id}/canned/", {"reply": reply.pk}, **HTMX
    )
    ticket = escalation.ticket
    assert answer.json() == {"text": f"Hi Jamie, {ticket.reference} is done. — Marina"}
    reply.refresh_from_db()
    assert reply.use_count == 1
    bad = agent_client.post(
        f"/crm/conversations/{escalation.conversation_id}/canned/", {"reply": "x"}, **HTMX
    )
    assert bad.status_code == 400
    missing = agent_client.post(
        f"/crm/conversations/{escalation.conversation_id}/canned/", {"reply": "999999"}, **HTMX
    )
    assert missing.status_code == 404


def test_canned_replies_are_managed_on_their_screen(agent_client, manager, team):
    from django.test import Client

    manager_client = Client()
    manager_client.force_login(manager)
    response = agent_client.post(
        "/crm/canned-replies/new/",
        {"shortcut": "hi", "title": "Hello", "body": "Hi {contact.first_name}"},
    )
    assert response.status_code == 302
    assert CannedReply.objects.get().owner.username == "marina"
    # A bad placeholder: a message, nothing saved.
    response = agent_client.post(
        "/crm/canned-replies/new/",
        {"shortcut": "bye", "title": "Bye", "body": "Bye {contact.email}"},
        follow=True,
    )
    assert "unknown placeholders" in response.content.decode()
    assert CannedReply.objects.count() == 1
    # Only managers write team replies.
    agent_client.post(
        "/crm/canned-replies/new/",
        {"team": team.pk, "shortcut": "t", "title": "T", "body": "b"},
    )
    assert CannedReply.objects.filter(team=team).count() == 0
    manager_client.post(
        "/crm/canned-replies/new/",
        {"team": team.pk, "shortcut": "t", "title": "T", "body": "b"},
    )
    assert CannedReply.objects.filter(team=team).count() == 1
    page = agent_client.get("/crm/canned-replies/").content.decode()
    assert "/hi" in page and "/t" in page


def test_search_finds_by_name_email_and_text_and_the_contact_page_lists_everything(
    agent_client, escalate
):
    escalation = escalate(contact_name="Jamie Patel")
    conversation = escalation.conversation
    crm_services.receive_customer_message(conversation=conversation, text="My parcel 7781 is late")
    other = ConversationFactory(contact__name="Ana Ruiz")

    for query in ("jamie", "jamie.patel@example", "PARCEL 7781"):
        page = agent_client.get("/crm/search/", {"q": query}).content.decode()
        assert f"/crm/conversations/{conversation.pk}/" in page, query
        assert f"/crm/conversations/{other.pk}/" not in page
    assert "at least 2" in agent_client.get("/crm/search/?q=j").content.decode()

    page = agent_client.get(f"/crm/contacts/{conversation.contact_id}/").content.decode()
    assert f"#{conversation.pk}" in page and escalation.ticket.reference in page
    assert agent_client.get("/crm/contacts/999999/").status_code == 404


def test_hand_back_with_a_note_gives_the_assistant_its_context(agent_client, agent, escalate):
    escalation = escalate(contact_name="Jamie Patel")
    escalation_services.take_over_escalation(escalation_id=escalation.pk, agent=agent)
    agent_client.post(
        f"/crm/escalations/{escalation.pk}/hand-back/",
        {"note": "Refunded the duplicate charge; 3-5 days."},
        HTTP_HX_REQUEST="true",
        HTTP_HX_TARGET="conversation-panel",
    )
    conversation = escalation.conversation
    conversation.refresh_from_db()
    assert conversation.mode == "ai"
    assert conversation.assistant_note == "Refunded the duplicate charge; 3-5 days."
    texts = list(conversation.messages.values_list("text", flat=True))
    assert "You're chatting with our assistant again." in texts
