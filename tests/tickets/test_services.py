"""Ticket services: opened once per escalation, status moves checked, every change audited."""

import pytest
from django.utils import timezone

from escalation.errors import InvalidTransition
from escalation.models import Escalation, Priority
from tickets import services
from tickets.models import Ticket, TicketEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def escalation(conversation):
    return Escalation.objects.create(
        conversation=conversation,
        reason="complexity",
        detail="Double charge on order 5512",
        priority=Priority.HIGH,
        summary="Charged twice.",
        triggered_by="detection",
        escalated_at=timezone.now(),
    )


def test_a_ticket_is_opened_once_with_the_escalations_facts(escalation, conversation):
    ticket, created = services.open_ticket_for_escalation(escalation=escalation)
    again, created_again = services.open_ticket_for_escalation(escalation=escalation)
    assert created and not created_again and again.pk == ticket.pk
    assert (ticket.subject, ticket.description) == ("Double charge on order 5512", "Charged twice.")
    assert (ticket.reason, ticket.priority) == ("complexity", Priority.HIGH)
    assert ticket.contact == conversation.contact and ticket.conversation == conversation
    assert list(ticket.events.values_list("kind", flat=True)) == [TicketEvent.Kind.OPENED]
    assert ticket.reference == f"T-{ticket.pk:06d}"


def test_assigning_records_who_from_and_to(escalation, agent, other_agent):
    ticket, _ = services.open_ticket_for_escalation(escalation=escalation)
    services.assign_ticket(ticket=ticket, assignee=agent, actor=agent)
    services.assign_ticket(ticket=ticket, assignee=agent, actor=agent)  # no change, no event
    services.assign_ticket(ticket=ticket, assignee=other_agent, actor=agent)
    services.assign_ticket(ticket=ticket, assignee=None, actor=agent)
    moves = list(
        ticket.events.filter(kind=TicketEvent.Kind.ASSIGNED).values_list("old_value", "new_value")
    )
    assert moves == [("", "Marina"), ("Marina", "Alex"), ("Alex", "")]


def test_status_moves_are_checked_and_resolution_time_stored(escalation, agent):
    ticket, _ = services.open_ticket_for_escalation(escalation=escalation)
    ticket = services.set_ticket_status(ticket=ticket, status=Ticket.Status.RESOLVED, actor=agent)
    assert ticket.resolved_at is not None
    ticket = services.set_ticket_status(ticket=ticket, status=Ticket.Status.CLOSED, actor=agent)
    with pytest.raises(InvalidTransition):
        services.set_ticket_status(ticket=ticket, status=Ticket.Status.RESOLVED)
    statuses = list(
        ticket.events.filter(kind=TicketEvent.Kind.STATUS).values_list("old_value", "new_value")
    )
    assert statuses == [("open", "resolved"), ("resolved", "closed")]
    ticket.refresh_from_db()
    assert ticket.status == Ticket.Status.CLOSED


def test_priority_changes_are_audited_and_can_carry_the_new_reason(escalation):
    ticket, _ = services.open_ticket_for_escalation(escalation=escalation)
    services.set_ticket_priority(ticket=ticket, priority=Priority.HIGH)  # unchanged
    services.set_ticket_priority(ticket=ticket, priority=Priority.URGENT, reason="request")
    ticket.refresh_from_db()
    assert (ticket.priority, ticket.reason) == (Priority.URGENT, "request")
    change = ticket.events.get(kind=TicketEvent.Kind.PRIORITY)
    assert (change.old_value, change.new_value) == ("High", "Urgent")
