"""Replies leave through the provider from a Celery task; failures are retried with back-off
and visible on the message."""

import json

import httpx
import pytest

from crm.models import ContactIdentity, Message
from integrations import senders as outbound_senders
from integrations.tasks import deliver_message
from integrations.transport import use_transport
from tests.factories import ChannelFactory, ConversationFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def whatsapp_reply(db):
    channel = ChannelFactory(kind="whatsapp", provider_account_id="555", access_token="tok")
    conversation = ConversationFactory(channel=channel)
    ContactIdentity.objects.create(
        contact=conversation.contact, channel_kind="whatsapp", external_id="4917"
    )
    return Message.objects.create(
        conversation=conversation,
        channel=channel,
        sender="ai",
        text="Hello!",
        delivery_status="pending",
    )


def respond(*responses):
    calls = []

    def handler(request):
        calls.append(request)
        answer = responses[min(len(calls), len(responses)) - 1]
        if isinstance(answer, Exception):
            raise answer
        return answer

    return calls, httpx.MockTransport(handler)


@pytest.fixture
def no_wait(monkeypatch):
    waits = []
    monkeypatch.setattr(outbound_senders, "backoff_seconds", lambda n: waits.append(n) or 0)
    return waits


def test_a_send_that_fails_then_works_is_retried_and_ends_sent(whatsapp_reply, no_wait):
    calls, transport = respond(
        httpx.ConnectError("down"),
        httpx.Response(503, json={"error": {"message": "try later"}}),
        httpx.Response(200, json={"messages": [{"id": "wamid.X"}]}),
    )
    with use_transport(transport):
        deliver_message.delay(whatsapp_reply.pk)
    whatsapp_reply.refresh_from_db()
    assert len(calls) == 3 and no_wait == [0, 1]
    assert whatsapp_reply.delivery_status == "sent"
    assert whatsapp_reply.provider_message_id == "wamid.X"
    assert whatsapp_reply.delivery_error == ""


def test_a_send_that_keeps_failing_ends_failed_with_the_error(whatsapp_reply, no_wait):
    calls, transport = respond(httpx.Response(500, json={"error": {"message": "Meta is down"}}))
    with use_transport(transport):
        deliver_message.delay(whatsapp_reply.pk)
    whatsapp_reply.refresh_from_db()
    assert len(calls) == deliver_message.max_retries + 1
    assert whatsapp_reply.delivery_status == "failed"
    assert "HTTP 500: Meta is down" in whatsapp_reply.delivery_error
    assert whatsapp_reply.delivery_error.startswith("Attempt 6")


def test_a_refusal_is_not_retried(whatsapp_reply, no_wait):
    calls, transport = respond(
        httpx.Response(400, json={"error": {"message": "Recipient not on WhatsApp"}})
    )
    with use_transport(transport):
        deliver_message.delay(whatsapp_reply.pk)
    whatsapp_reply.refresh_from_db()
    assert len(calls) == 1 and no_wait == []
    assert whatsapp_reply.delivery_status == "failed"
    assert "Recipient not on WhatsApp" in whatsapp_reply.delivery_error


def test_the_failure_is_visible_through_the_api(whatsapp_reply, no_wait, api):
    _calls, transport = respond(httpx.Response(401, json={"error": {"message": "bad token"}}))
    with use_transport(transport):
        deliver_message.delay(whatsapp_reply.pk)
    url = f"/api/v1/conversations/{whatsapp_reply.conversation_id}/messages/"
    row = api.get(url).json()["results"][0]
    assert row["delivery_status"] == "failed" and "bad token" in row["delivery_error"]


def test_a_contact_without_a_whatsapp_id_fails_clearly(whatsapp_reply):
    ContactIdentity.objects.all().delete()
    deliver_message.delay(whatsapp_reply.pk)
    whatsapp_reply.refresh_from_db()
    assert whatsapp_reply.delivery_status == "failed"
    assert "no whatsapp id" in whatsapp_reply.delivery_error.lower()


def test_a_sent_message_is_not_sent_twice(whatsapp_reply):
    calls, transport = respond(httpx.Response(200, json={"messages": [{"id": "wamid.Y"}]}))
    with use_transport(transport):
        deliver_message.delay(whatsapp_reply.pk)
        deliver_message.delay(whatsapp_reply.pk)  # a duplicate task
    assert len(calls) == 1


def test_backoff_grows_and_is_capped():
    assert 10 <= outbound_senders.backoff_seconds(0) <= 12
    assert 80 <= outbound_senders.backoff_seconds(3) <= 96
    assert outbound_senders.backoff_seconds(20) <= 720


def test_a_reply_goes_to_the_number_the_conversation_came_from(whatsapp_reply, no_wait):
    """A contact with two WhatsApp numbers: the reply follows the conversation, not the first
    identity on file."""
    conversation = whatsapp_reply.conversation
    ContactIdentity.objects.create(
        contact=conversation.contact, channel_kind="whatsapp", external_id="4999"
    )
    conversation.external_id = "4999"
    conversation.save(update_fields=["external_id"])
    calls, transport = respond(httpx.Response(200, json={"messages": [{"id": "wamid.Y"}]}))
    with use_transport(transport):
        deliver_message.delay(whatsapp_reply.pk)
    assert len(calls) == 1
    assert json.loads(calls[0].content)["to"] == "4999"
