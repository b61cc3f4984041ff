"""Races through the API, for real: threads against PostgreSQL."""

import hashlib
import hmac
import json
import threading

import pytest
from django.db import connection

from crm.models import Contact, Conversation, Message
from escalation import services as escalation_services
from escalation.models import Escalation, Priority
from tests.api.conftest import token_client
from tests.factories import AgentFactory, ChannelFactory, ConversationFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


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
