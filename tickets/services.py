"""Ticket state changes. Escalation services call these inside their own transaction."""

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from crm.models import agent_name
from escalation.errors import InvalidTransition
from integrations.payloads import emit_ticket_created

from .models import Ticket, TicketEvent

ALLOWED_STATUS_MOVES = {
    Ticket.Status.OPEN: {Ticket.Status.PENDING, Ticket.Status.RESOLVED, Ticket.Status.CLOSED},
    Ticket.Status.PENDING: {Ticket.Status.OPEN, Ticket.Status.RESOLVED, Ticket.Status.CLOSED},
    Ticket.Status.RESOLVED: {Ticket.Status.OPEN, Ticket.Status.CLOSED},
    Ticket.Status.CLOSED: {Ticket.Status.OPEN},
}


@transaction.atomic
def open_ticket_for_escalation(*, escalation) -> tuple[Ticket, bool]:
    """The escalation's ticket, opened once: the one-to-one's unique index settles races."""
    conversation = escalation.conversation
    ticket, created = Ticket.objects.get_or_create(
        escalation=escalation,
        defaults={
            "conversation": conversation,
            "contact_id": conversation.contact_id,
            "subject": (escalation.detail or escalation.get_reason_display())[:200],
            "description": escalation.summary,
            "priority": escalation.priority,
            "reason": escalation.reason,
        },
    )
    if created:
        TicketEvent.objects.create(
            ticket=ticket, kind=TicketEvent.Kind.OPENED, new_value=ticket.status
        )
        emit_ticket_created(ticket)
    return ticket, created


@transaction.atomic
def assign_ticket(*, ticket: Ticket, assignee, actor=None) -> Ticket:
    ticket = Ticket.objects.select_for_update().get(pk=ticket.pk)
    if ticket.assignee_id == (assignee.pk if assignee else None):
        return ticket
    old = agent_name(ticket.assignee) if ticket.assignee_id else ""
    ticket.assignee = assignee
    ticket.save(update_fields=["assignee", "updated_at"])
    TicketEvent.objects.create(
        ticket=ticket,
        kind=TicketEvent.Kind.ASSIGNED,
        actor=actor,
        old_value=old,
        new_value=agent_name(assignee) if assignee else "",
    )
    return ticket


@transaction.atomic
def set_ticket_status(*, ticket: Ticket, status: str, actor=None, note: str = "") -> Ticket:
    ticket = Ticket.objects.select_for_update().get(pk=ticket.pk)
    if ticket.status == status:
        return ticket
    if status not in ALLOWED_STATUS_MOVES.get(ticket.status, set()):
        raise InvalidTransition(
            _("A ticket cannot go from %(old)s to %(new)s.") % {"old": ticket.status, "new": status}
        )
    old = ticket.status
    ticket.status = status
    ticket.resolved_at = timezone.now() if status == Ticket.Status.RESOLVED else ticket.resolved_at
    ticket.save(update_fields=["status", "resolved_at", "updated_at"])
    TicketEvent.objects.create(
        ticket=ticket,
        kind=TicketEvent.Kind.STATUS,
        actor=actor,
        old_value=old,
        new_value=status,
        note=note,
    )
    return ticket


@transaction.atomic
def set_ticket_priority(
    *, ticket: Ticket, priority: int, actor=None, reason: str | None = None
) -> Ticket:
    """Follow the escalation's priority (and, when a stronger trigger took over, its reason)."""
    ticket = Ticket.objects.select_for_update().get(pk=ticket.pk)
    fields = []
    if reason and ticket.reason != reason:
        ticket.reason = reason
        fields.append("reason")
    if ticket.priority != priority:
        old = ticket.get_priority_display()
        ticket.priority = priority
        fields.append("priority")
        TicketEvent.objects.create(
            ticket=ticket,
            kind=TicketEvent.Kind.PRIORITY,
            actor=actor,
            old_value=old,
            new_value=ticket.get_priority_display(),
        )
    if fields:
        ticket.save(update_fields=[*fields, "updated_at"])
    return ticket
