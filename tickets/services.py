"""Ticket state changes. Escalation services call these inside their own transaction."""

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from crm.errors import InvalidTransition
from crm.models import agent_name
from integrations.payloads import emit_ticket_created

from .errors import EscalationActive
from .models import Ticket, TicketEvent

ALLOWED_STATUS_MOVES = {
    Ticket.Status.OPEN: {Ticket.Status.PENDING, Ticket.Status.RESOLVED, Ticket.Status.CLOSED},
    Ticket.Status.PENDING: {Ticket.Status.OPEN, Ticket.Status.RESOLVED, Ticket.Status.CLOSED},
    Ticket.Status.RESOLVED: {Ticket.Status.OPEN, Ticket.Status.CLOSED},
    Ticket.Status.CLOSED: {Ticket.Status.OPEN},
}


# No savepoint of its own inside the escalation's transaction (nobody catches its errors there):
# two round trips fewer on the handoff.
@transaction.atomic(savepoint=False)
def open_ticket_for_escalation(
    *, escalation, escalation_is_new: bool = False
) -> tuple[Ticket, bool]:
    """The escalation's ticket, opened once: the one-to-one's unique index settles races. The
    insert comes first (a handoff's escalation never has a ticket yet: no read before it); a
    second call finds the first's ticket after the insert fails. ``escalation_is_new``: the
    caller inserted the escalation in this transaction, so no other transaction can see it, let
    alone give it a ticket: the insert needs no savepoint to recover from a duplicate."""
    conversation = escalation.conversation
    fields = {
        "escalation": escalation,
        "conversation": conversation,
        "contact_id": conversation.contact_id,
        "subject": (escalation.detail or escalation.get_reason_display())[:200],
        "description": escalation.summary,
        "priority": escalation.priority,
        "reason": escalation.reason,
    }
    if escalation_is_new:
        ticket = Ticket.objects.create(**fields)
    else:
        try:
            with transaction.atomic():
                ticket = Ticket.objects.create(**fields)
        except IntegrityError:
            existing = Ticket.objects.filter(escalation=escalation).first()
            if existing is None:
                raise  # not the one-ticket-per-escalation index: a real error
            return existing, False
    TicketEvent.objects.create(ticket=ticket, kind=TicketEvent.Kind.OPENED, new_value=ticket.status)
    emit_ticket_created(ticket)
    return ticket, True


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
    if status == Ticket.Status.RESOLVED:
        ticket.resolved_at = timezone.now()
    elif status == Ticket.Status.OPEN:
        ticket.resolved_at = None  # reopened: no longer resolved
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


# Edges (API, screens) change a ticket through these two; the escalation services drive
# assign_ticket / set_ticket_status directly while they move the handoff itself.
ACTIVE_ESCALATION_STATUSES = ("queued", "claimed")


def _locked_outside_escalation(ticket: Ticket) -> Ticket:
    """The ticket row-locked, refused while its escalation is queued or claimed.

    Locks the escalation row before the ticket row, the order the escalation services use,
    so a handoff move in flight finishes first and its new state is what we read."""
    if ticket.escalation_id:
        # Through the ticket's own reference: escalation is the layer above and calls us.
        escalations = Ticket.escalation.field.related_model.objects
        status = (
            escalations.select_for_update()
            .filter(pk=ticket.escalation_id)
            .values_list("status", flat=True)
            .first()
        )
        if status in ACTIVE_ESCALATION_STATUSES:
            raise EscalationActive()
    return Ticket.objects.select_for_update().get(pk=ticket.pk)


@transaction.atomic
def change_ticket_status(*, ticket: Ticket, status: str, actor=None, note: str = "") -> Ticket:
    """A person's status change: refused while the ticket's escalation is queued or claimed."""
    ticket = _locked_outside_escalation(ticket)
    return set_ticket_status(ticket=ticket, status=status, actor=actor, note=note)


@transaction.atomic
def change_ticket_assignee(*, ticket: Ticket, assignee, actor=None) -> Ticket:
    """A person's reassignment: refused while the ticket's escalation is queued or claimed."""
    ticket = _locked_outside_escalation(ticket)
    return assign_ticket(ticket=ticket, assignee=assignee, actor=actor)
