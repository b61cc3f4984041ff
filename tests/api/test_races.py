"""Races through the API, for real: threads against the database (PostgreSQL or SQLite)."""

import hashlib
import hmac
import json
import threading
import time

import httpx
import pytest
from django.db import connection

from crm.models import Contact, ContactIdentity, Conversation, Message
from escalation import services as escalation_services
from escalation.models import Escalation, Priority
from integrations import senders as outbound_senders
from integrations import services as integration_services
from integrations.models import WebhookDelivery
from integrations.transport import use_transport
from tests.api.conftest import token_client
from tests.factories import AgentFactory, ChannelFactory, ConversationFactory

# Run on PostgreSQL (row locks, conditional updates) and on SQLite (IMMEDIATE transactions
# serialise writers), the two databases the product runs on.
pytestmark = [pytest.mark.django_db(transaction=True)]


def race(calls):
    """Run the callables at the same moment, one thread each; return their results."""
    barrier = threading.Barrier(len(calls))
    results = [None] * len(calls)

    def run(index, call):
        try:
            barrier.wait()
            results[index] = call()
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return results


def test_two_agents_take_over_at_once_one_wins_one_gets_409():
    escalation, _ = escalation_services.escalate_conversation(
        conversation=ConversationFactory(),
        reason="request",
        priority=Priority.HIGH,
        triggered_by="detection",
    )
    agents = [
        AgentFactory(display_name=name, username=name.lower())
        for name in ("Marina", "Alex", "Sam", "Kim")
    ]
    clients = [token_client(agent) for agent in agents]
    url = f"/api/v1/escalations/{escalation.pk}/take-over/"
    responses = race([lambda c=c: c.post(url) for c in clients])
    codes = sorted(response.status_code for response in responses)
    assert codes == [200, 409, 409, 409]
    winner = Escalation.objects.get(pk=escalation.pk).claimed_by
    for response in responses:
        if response.status_code == 409:
            error = response.json()["error"]
            assert error["code"] == "already_claimed"
            assert error["agent"] == winner.agent_profile.display_name
    assert Conversation.objects.get(pk=escalation.conversation_id).assigned_agent == winner


def test_the_same_whatsapp_message_delivered_concurrently_is_stored_once():
    channel = ChannelFactory(kind="whatsapp", key="wa-race", webhook_secret="s3cret")
    payload = {
        "entry": [
            {
                "changes": [
                    {
                        "value": {
                            "contacts": [{"profile": {"name": "Kerry"}, "wa_id": "4900"}],
                            "messages": [
                                {
                                    "from": "4900",
                                    "id": "wamid.RACE",
                                    "type": "text",
                                    "text": {"body": "Where is my parcel?"},
                                }
                            ],
                        }
                    }
                ]
            }
        ]
    }
    body = json.dumps(payload).encode()
    signature = "sha256=" + hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()

    def deliver():
        from django.test import Client

        return (
            Client()
            .generic(
                "POST",
                "/api/webhooks/whatsapp/wa-race/",
                body,
                content_type="application/json",
                HTTP_X_HUB_SIGNATURE_256=signature,
            )
            .status_code
        )

    assert race([deliver] * 4) == [200] * 4
    assert Message.objects.filter(channel=channel, provider_message_id="wamid.RACE").count() == 1
    assert Conversation.objects.filter(channel=channel).count() == 1
    assert Contact.objects.count() == 1


class _Task:
    """Stands in for the bound Celery task: the first attempt, retries left."""

    class request:  # noqa: N801
        retries = 0

    max_retries = 5


def slow_receiver(calls, answer):
    def handler(request):
        calls.append(request)
        time.sleep(0.3)  # the second copy arrives while the first is mid-send
        return answer

    return httpx.MockTransport(handler)


def test_two_copies_of_a_provider_send_send_once():
    """Celery redelivers an unacknowledged task: both copies run at once, one message goes out."""
    channel = ChannelFactory(kind="whatsapp", provider_account_id="555", access_token="tok")
    conversation = ConversationFactory(channel=channel)
    ContactIdentity.objects.create(
        contact=conversation.contact, channel_kind="whatsapp", external_id="4917"
    )
    message = Message.objects.create(
        conversation=conversation,
        channel=channel,
        sender="ai",
        text="Hi",
        delivery_status="pending",
    )
    calls = []
    ok = httpx.Response(200, json={"messages": [{"id": "wamid.1"}]})
    with use_transport(slow_receiver(calls, ok)):
        race([lambda: outbound_senders.deliver(message_id=message.pk, task=_Task)] * 2)
    message.refresh_from_db()
    assert len(calls) == 1
    assert (message.delivery_status, message.provider_message_id) == ("sent", "wamid.1")


def test_two_copies_of_a_webhook_delivery_send_once():
    subscription = integration_services.create_webhook_subscription(
        url="https://example.com/hook", events=["ticket.created"], secret="s" * 20
    )
    delivery = WebhookDelivery.objects.create(
        subscription=subscription, event="ticket.created", payload={}
    )
    calls = []
    with use_transport(slow_receiver(calls, httpx.Response(200))):
        results = race(
            [
                lambda: integration_services.attempt_webhook_delivery(
                    delivery_id=delivery.pk, final=False
                )
            ]
            * 2
        )
    delivery.refresh_from_db()
    assert len(calls) == 1 and results == [True, True]
    assert (delivery.status, delivery.attempts, delivery.claim) == ("succeeded", 1, "")
