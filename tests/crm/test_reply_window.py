"""WhatsApp's 24-hour window: free text from the agent is refused once it has closed (service,
API, screen), an approved template goes out through the provider's template call instead."""

import json
from datetime import timedelta

import httpx
import pytest
from django.utils import timezone

from crm import selectors, services
from crm.errors import ReplyWindowClosed
from crm.models import Message, MessageTemplate
from escalation import services as escalation_services
from escalation.models import Escalation, Priority
from integrations import senders, transport

from ..factories import AgentFactory, ChannelFactory, ConversationFactory


@pytest.fixture
def marina(db):
    return AgentFactory(display_name="Marina", username="marina")


@pytest.fixture
def whatsapp(db):
    channel = ChannelFactory(
        kind="whatsapp", provider_account_id="1555", access_token="token", key="wa"
    )
    MessageTemplate.objects.create(
        channel=channel, name="follow_up", language="en_US", body="Hi! Reply to continue."
    )
    return channel


def handled_conversation(channel, agent, *, customer_wrote_ago):
    conversation = ConversationFactory(channel=channel, external_id="34600000000")
    message = services.receive_customer_message(conversation=conversation, text="Refund?")
    Message.objects.filter(pk=message.pk).update(created_at=timezone.now() - customer_wrote_ago)
    escalation, _ = escalation_services.escalate_conversation(
        conversation=conversation,
        reason="request",
        priority=Priority.NORMAL,
        triggered_by=Escalation.Trigger.DETECTION,
    )
    escalation_services.take_over_escalation(escalation_id=escalation.pk, agent=agent)
    conversation.refresh_from_db()
    return conversation


def test_the_window_is_open_for_24_hours_after_the_customer_wrote(marina, whatsapp):
    conversation = handled_conversation(whatsapp, marina, customer_wrote_ago=timedelta(hours=23))
    window = selectors.reply_window(conversation)
    assert window.applies and window.is_open
    assert timedelta(minutes=59) < window.closes_at - timezone.now() <= timedelta(hours=1)
    message = services.send_agent_message(conversation=conversation, agent=marina, text="Done")
    assert message.delivery_status == Message.Delivery.PENDING
    assert selectors.reply_window(ConversationFactory()).applies is False  # website


def test_after_24_hours_free_text_is_refused_and_nothing_is_stored(marina, whatsapp):
    conversation = handled_conversation(whatsapp, marina, customer_wrote_ago=timedelta(hours=25))
    before = Message.objects.count()
    with pytest.raises(ReplyWindowClosed, match="24 hours"):
        services.send_agent_message(conversation=conversation, agent=marina, text="Hello?")
    assert Message.objects.count() == before
    # A private note is not sent anywhere, so it is still fine.
    services.send_agent_message(
        conversation=conversation, agent=marina, text="Called them", private_note=True
    )


def test_the_api_answers_409_and_the_screen_a_clear_toast(marina, whatsapp, client):
    from tests.api.conftest import token_client

    conversation = handled_conversation(whatsapp, marina, customer_wrote_ago=timedelta(days=2))
    response = token_client(marina).post(
        f"/api/v1/conversations/{conversation.pk}/agent-messages/",
        {"text": "Hello?"},
        format="json",
    )
    assert response.status_code == 409, response.content
    assert response.json()["error"]["code"] == "reply_window_closed"

    client.force_login(marina)
    page = client.get(f"/crm/conversations/{conversation.pk}/")
    assert b"The 24-hour WhatsApp window has closed." in page.content
    assert b"follow_up (en_US)" in page.content
    answer = client.post(
        f"/crm/conversations/{conversation.pk}/reply/",
        {"text": "Hello?"},
        HTTP_HX_REQUEST="true",
    )
    assert answer.status_code == 409
    assert "WhatsApp accepts no free text" in answer.content.decode()


def test_an_approved_template_goes_out_through_the_template_call(marina, whatsapp, client):
    conversation = handled_conversation(whatsapp, marina, customer_wrote_ago=timedelta(days=2))
    template = whatsapp.templates.get()
    client.force_login(marina)
    answer = client.post(
        f"/crm/conversations/{conversation.pk}/template/",
        {"template": template.pk},
        HTTP_HX_REQUEST="true",
    )
    assert answer.status_code == 204
    message = Message.objects.get(template=template)
    assert message.text == "Hi! Reply to continue."

    sent = []

    def provider(request):
        sent.append(json.loads(request.content))
        return httpx.Response(200, json={"messages": [{"id": "wamid.1"}]})

    class Task:
        class request:
            retries = 0

        max_retries = 3

    with transport.use_transport(httpx.MockTransport(provider)):
        senders.deliver(message_id=message.pk, task=Task)
    assert sent[0]["type"] == "template"
    assert sent[0]["template"] == {"name": "follow_up", "language": {"code": "en_US"}}
    message.refresh_from_db()
    assert message.delivery_status == Message.Delivery.SENT
