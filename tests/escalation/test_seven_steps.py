"""The handoff end to end on PostgreSQL, with Celery eager and every on-commit effect running."""

from datetime import timedelta

import pytest
from django.utils import timezone

from crm import services as crm_services
from crm.models import Conversation, KnowledgeArticle, Message
from escalation import selectors, services
from escalation.models import Escalation, Priority
from notifications.models import Notification
from tests.factories import AgentFactory, ChannelFactory, ContactFactory, TeamFactory
from tickets.models import Ticket

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_customer_message_to_metrics_in_seven_steps():
    team = TeamFactory(name="Billing")
    channel = ChannelFactory(default_team=team)
    marina = AgentFactory(display_name="Marina", username="marina", teams=[team])
    KnowledgeArticle.objects.create(
        title="Refund policy", keywords="refund money back", body="Refunds take 5 days."
    )
    started = timezone.now() - timedelta(minutes=10)

    # 1. A customer asks for a person: stored, analysed, escalated with reason and priority.
    conversation = crm_services.start_conversation(
        channel=channel,
        contact=ContactFactory(name="Jamie"),
        text="I want to speak to a human agent right now about order #A1234",
    )
    escalation = Escalation.objects.get(conversation=conversation)
    assert escalation.reason == "request"
    assert escalation.priority >= Priority.HIGH
    assert escalation.triggered_by == Escalation.Trigger.DETECTION
    assert "A1234" in escalation.summary
    conversation.refresh_from_db()
    assert conversation.mode == Conversation.Mode.AWAITING_AGENT
    handoff = conversation.messages.get(sender=Message.Sender.SYSTEM)
    assert "minute" in handoff.text and "{wait_minutes}" not in handoff.text
    assert not conversation.messages.filter(sender=Message.Sender.AI).exists()

    # 2. It is a queue row, with its contact, channel, team and position.
    rows = list(selectors.queued_escalations())
    assert rows == [escalation]
    assert rows[0].conversation.contact.name == "Jamie"
    assert rows[0].conversation.channel == channel and rows[0].team == team
    assert selectors.queue_position(rows[0]) == 1
    assert selectors.estimated_wait_seconds(rows[0]) > 0

    # 3. The available agent was notified through the notifications app.
    notification = Notification.objects.get(recipient=marina, escalation=escalation)
    assert notification.kind == Notification.Kind.ESCALATION

    # 4. Marina takes over (the customer waited three minutes; she then works for one).
    Escalation.objects.filter(pk=escalation.pk).update(
        escalated_at=escalation.escalated_at - timedelta(minutes=3)
    )
    services.take_over_escalation(escalation_id=escalation.pk, agent=marina)
    Escalation.objects.filter(pk=escalation.pk).update(
        claimed_at=timezone.now() - timedelta(minutes=1)
    )
    conversation.refresh_from_db()
    assert conversation.mode == Conversation.Mode.AGENT
    assert conversation.messages.filter(text="Now speaking with Marina").exists()

    # 5. The AI is silent: a customer message in agent mode gets no AI reply.
    crm_services.receive_customer_message(
        conversation=conversation, text="How long does a refund take?"
    )
    assert not conversation.messages.filter(sender=Message.Sender.AI).exists()
    crm_services.send_agent_message(conversation=conversation, agent=marina, text="Refunding now.")

    # 6. One ticket, assigned to Marina.
    ticket = Ticket.objects.get(conversation=conversation)
    assert ticket.escalation_id == escalation.pk
    assert ticket.assignee == marina
    assert ticket.reason == "request" and ticket.contact == conversation.contact

    # 7. Resolved; the metrics show the one escalation with its wait and resolution times.
    services.resolve_escalation(escalation_id=escalation.pk, agent=marina)
    escalation.refresh_from_db()
    ticket.refresh_from_db()
    assert ticket.status == Ticket.Status.RESOLVED and ticket.resolved_at is not None
    metrics = selectors.escalation_metrics(
        selectors.MetricsFilters(start=started, end=timezone.now() + timedelta(seconds=1))
    )
    wait = (escalation.claimed_at - escalation.escalated_at).total_seconds()
    resolution = (escalation.resolved_at - escalation.claimed_at).total_seconds()
    assert metrics["conversations"] == 1
    assert metrics["escalations"] == 1
    assert metrics["escalation_rate"] == 1.0
    assert metrics["reasons"] == {"request": 1}
    assert 119 < wait < 125 and 59 < resolution < 65
    assert metrics["wait_time"]["count"] == 1
    assert metrics["wait_time"]["median"] == round(wait, 1)
    assert metrics["resolution_time"]["count"] == 1
    assert metrics["resolution_time"]["mean"] == round(resolution, 1)
