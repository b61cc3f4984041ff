"""Races settled in the database: real threads, one connection each, started together."""

import pytest

from crm.models import Conversation, Message
from escalation import services
from escalation.errors import AlreadyClaimed
from escalation.models import Escalation, EscalationEvent, Priority
from tests.factories import AgentFactory, ConversationFactory
from tests.races import race
from tickets.models import Ticket, TicketEvent

# Run on PostgreSQL (row locks, conditional updates) and on SQLite (IMMEDIATE transactions
# serialise writers), the two databases the product runs on.
pytestmark = [pytest.mark.django_db(transaction=True)]


def test_twenty_agents_taking_over_one_escalation_leave_one_winner():
    conversation = ConversationFactory()
    escalation, _ = services.escalate_conversation(
        conversation=conversation,
        reason="request",
        priority=Priority.HIGH,
        triggered_by=Escalation.Trigger.DETECTION,
    )
    agents = [AgentFactory(display_name=f"Agent {i:02d}") for i in range(20)]

    outcomes = race(
        lambda i: services.take_over_escalation(escalation_id=escalation.pk, agent=agents[i]), 20
    )

    winners = [i for i, outcome in enumerate(outcomes) if isinstance(outcome, Escalation)]
    assert len(winners) == 1, outcomes
    winner = agents[winners[0]]
    losers = [outcome for outcome in outcomes if not isinstance(outcome, Escalation)]
    assert len(losers) == 19
    assert all(isinstance(outcome, AlreadyClaimed) for outcome in losers), losers
    winner_name = f"Agent {winners[0]:02d}"
    assert {loser.agent_name for loser in losers} == {winner_name}
    assert all(winner_name in str(loser) for loser in losers)

    escalation.refresh_from_db()
    assert escalation.status == Escalation.Status.CLAIMED
    assert escalation.claimed_by == winner
    assert escalation.claimed_at is not None
    assert escalation.events.filter(kind=EscalationEvent.Kind.CLAIMED).count() == 1
    conversation.refresh_from_db()
    assert conversation.mode == Conversation.Mode.AGENT
    assert conversation.assigned_agent == winner
    ticket = Ticket.objects.get(escalation=escalation)
    assert ticket.assignee == winner
    assert ticket.events.filter(kind=TicketEvent.Kind.ASSIGNED).count() == 1
    now_speaking = conversation.messages.filter(
        sender=Message.Sender.SYSTEM, text__startswith="Now speaking with"
    )
    assert [m.text for m in now_speaking] == [f"Now speaking with {winner_name}"]
    assert conversation.messages.filter(sender=Message.Sender.AGENT).count() == 1


def test_ten_concurrent_escalations_of_one_conversation_make_one_escalation_and_one_ticket():
    conversation = ConversationFactory()
    priorities = [Priority.LOW, Priority.NORMAL, Priority.HIGH, Priority.URGENT] * 3

    outcomes = race(
        lambda i: services.escalate_conversation(
            conversation=conversation,
            reason="sentiment" if i % 2 else "request",
            priority=priorities[i],
            triggered_by=Escalation.Trigger.DETECTION,
        ),
        10,
    )

    assert all(isinstance(outcome, tuple) for outcome in outcomes), outcomes
    assert sorted(created for _e, created in outcomes) == [False] * 9 + [True]
    assert len({escalation.pk for escalation, _c in outcomes}) == 1
    assert Escalation.objects.filter(conversation=conversation).count() == 1
    escalation = Escalation.objects.get(conversation=conversation)
    assert Ticket.objects.filter(conversation=conversation).count() == 1
    # Never lowered: whatever the arrival order, the strongest trigger's priority stands.
    assert escalation.priority == max(priorities[:10])
    assert Ticket.objects.get(escalation=escalation).priority == escalation.priority
    handoff = conversation.messages.filter(sender=Message.Sender.SYSTEM)
    assert handoff.count() == 1
    assert escalation.events.filter(kind=EscalationEvent.Kind.ESCALATED).count() == 1
    assert escalation.events.count() == 10  # one escalated + nine retriggered/reprioritised


def test_take_overs_retriggers_and_customer_messages_at_once_never_deadlock():
    """One lock order (conversation → escalation → ticket) for every writer: mixing take overs,
    new triggers and customer messages on one conversation ends cleanly, never in a deadlock."""
    from crm import services as crm_services

    conversation = ConversationFactory()
    escalation, _ = services.escalate_conversation(
        conversation=conversation,
        reason="loop",
        priority=Priority.LOW,
        triggered_by=Escalation.Trigger.DETECTION,
    )
    agents = [AgentFactory(display_name=f"Agent {i:02d}") for i in range(4)]

    def work(i):
        if i < 4:
            return services.take_over_escalation(escalation_id=escalation.pk, agent=agents[i])
        if i < 8:
            return services.escalate_conversation(
                conversation=conversation,
                reason="sentiment",
                priority=Priority.URGENT,
                triggered_by=Escalation.Trigger.DETECTION,
            )
        return crm_services.send_agent_message(
            conversation=conversation, agent=agents[0], text="note", private_note=True
        )

    outcomes = race(work, 12)

    unexpected = [
        o for o in outcomes if isinstance(o, Exception) and not isinstance(o, AlreadyClaimed)
    ]
    assert unexpected == []
    assert sum(isinstance(o, Escalation) for o in outcomes) == 1
    escalation.refresh_from_db()
    assert escalation.status == Escalation.Status.CLAIMED
    assert escalation.priority == Priority.URGENT
    assert Escalation.objects.filter(conversation=conversation).count() == 1


def test_a_take_over_racing_a_cancel_has_one_outcome():
    conversation = ConversationFactory()
    escalation, _ = services.escalate_conversation(
        conversation=conversation,
        reason="request",
        priority=Priority.HIGH,
        triggered_by=Escalation.Trigger.DETECTION,
    )
    agent = AgentFactory(display_name="Marina")

    def work(i):
        if i == 0:
            return services.take_over_escalation(escalation_id=escalation.pk, agent=agent)
        return services.cancel_escalation(escalation_id=escalation.pk)

    took, cancelled = race(work, 2)
    escalation.refresh_from_db()
    conversation.refresh_from_db()
    if isinstance(took, Escalation):
        assert escalation.status == Escalation.Status.CLAIMED
        assert conversation.mode == Conversation.Mode.AGENT
        assert isinstance(cancelled, Exception)
    else:
        assert escalation.status == Escalation.Status.CANCELLED
        assert conversation.mode == Conversation.Mode.CLOSED
        assert isinstance(cancelled, Escalation)
