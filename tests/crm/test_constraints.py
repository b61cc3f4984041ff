"""The invariants the database itself enforces, proven on PostgreSQL."""

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from crm.models import Conversation, Message
from escalation.models import Escalation, Priority
from tickets.models import Ticket

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


def _escalation(conversation, status="queued"):
    return Escalation.objects.create(
        conversation=conversation,
        status=status,
        reason="request",
        priority=Priority.HIGH,
        triggered_by="detection",
        escalated_at=timezone.now(),
    )


def test_a_second_active_escalation_for_one_conversation_is_refused(conversation):
    _escalation(conversation, "queued")
    with pytest.raises(IntegrityError), transaction.atomic():
        _escalation(conversation, "claimed")


def test_finished_escalations_do_not_block_a_new_one(conversation):
    _escalation(conversation, "resolved")
    _escalation(conversation, "closed")
    assert _escalation(conversation, "queued").pk


def test_a_second_ticket_for_one_escalation_is_refused(conversation):
    escalation = _escalation(conversation)
    fields = dict(
        escalation=escalation,
        conversation=conversation,
        contact=conversation.contact,
        subject="x",
        reason="request",
    )
    Ticket.objects.create(**fields)
    with pytest.raises(IntegrityError), transaction.atomic():
        Ticket.objects.create(**fields)


def test_a_repeated_provider_message_id_on_one_channel_is_refused(conversation):
    fields = dict(
        conversation=conversation,
        channel=conversation.channel,
        sender="customer",
        text="hi",
        provider_message_id="wamid.1",
    )
    Message.objects.create(**fields)
    with pytest.raises(IntegrityError), transaction.atomic():
        Message.objects.create(**fields)


def test_the_same_provider_id_on_another_channel_is_accepted(conversation):
    from tests.factories import ChannelFactory, ConversationFactory

    other = ConversationFactory(channel=ChannelFactory(kind="whatsapp"))
    Message.objects.create(
        conversation=conversation,
        channel=conversation.channel,
        sender="customer",
        text="hi",
        provider_message_id="wamid.1",
    )
    Message.objects.create(
        conversation=other,
        channel=other.channel,
        sender="customer",
        text="hi",
        provider_message_id="wamid.1",
    )
    assert Message.objects.filter(provider_message_id="wamid.1").count() == 2


def test_a_customer_token_belongs_to_one_conversation(conversation):
    clash = Conversation(
        contact=conversation.contact,
        channel=conversation.channel,
        customer_token=conversation.customer_token,
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        clash.save()
