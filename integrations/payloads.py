"""The JSON bodies of outbound webhook events: the same fields the REST API returns."""

from crm.codes import Priority
from crm.models import agent_name


def _person(user) -> dict | None:
    if user is None:
        return None
    return {"id": user.pk, "name": agent_name(user)}


def escalation_payload(escalation) -> dict:
    conversation = escalation.conversation
    contact = conversation.contact
    return {
        "escalation": {
            "id": escalation.pk,
            "conversation": escalation.conversation_id,
            "status": escalation.status,
            "reason": escalation.reason,
            "priority": Priority(escalation.priority).code,
            "detail": escalation.detail,
            "summary": escalation.summary,
            "channel": conversation.channel.kind,
            "team": escalation.team_id,
            "contact": {
                "id": contact.pk,
                "name": contact.name,
                "email": contact.email,
                "display_name": contact.display_name,
            },
            "claimed_by": _person(escalation.claimed_by) if escalation.claimed_by_id else None,
            "assigned_to": _person(escalation.claimed_by) if escalation.claimed_by_id else None,
            "offered_to": _person(escalation.offered_to) if escalation.offered_to_id else None,
            "offer_expires_at": escalation.offer_expires_at,
            "sla_due_at": escalation.sla_due_at,
            "sla_breached": escalation.sla_breached,
            "routing_rule": escalation.routing_rule_id,
            "escalated_at": escalation.escalated_at,
            "claimed_at": escalation.claimed_at,
            "resolved_at": escalation.resolved_at,
        }
    }


def ticket_payload(ticket) -> dict:
    return {
        "ticket": {
            "id": ticket.pk,
            "reference": ticket.reference,
            "status": ticket.status,
            "priority": Priority(ticket.priority).code,
            "subject": ticket.subject,
            "reason": ticket.reason,
            "conversation": ticket.conversation_id,
            "escalation": ticket.escalation_id,
            "assignee": _person(ticket.assignee) if ticket.assignee_id else None,
            "created_at": ticket.created_at,
        }
    }


def message_payload(message) -> dict:
    return {
        "message": {
            "id": message.pk,
            "conversation": message.conversation_id,
            "sender": message.sender,
            "author": _person(message.author) if message.author_id else None,
            "text": message.text,
            "created_at": message.created_at,
        }
    }


def emit_escalation_event(name: str, escalation) -> None:
    """One line for the escalation services: ``emit_escalation_event("escalation.claimed", e)``."""
    from .services import emit_event

    emit_event(name, lambda: escalation_payload(escalation))


def emit_ticket_created(ticket) -> None:
    from .services import emit_event

    emit_event("ticket.created", lambda: ticket_payload(ticket))


def emit_message_created(*, message) -> None:
    """Listener of ``crm.hooks.message_stored``. Private notes never leave the CRM."""
    if message.is_private_note:
        return
    from .services import emit_event

    emit_event("message.created", lambda: message_payload(message))
