"""The handoff, step by step: escalate, take over, reply, reassign, resolve, close.

Each public function is one transaction and leaves an EscalationEvent. Broadcasts, emails and
tasks are scheduled with ``transaction.on_commit`` and never run for a rolled-back change.
Races are settled in the database: a row lock on the conversation for escalating, a conditional
``UPDATE ... WHERE status='queued'`` for taking over.
"""

import math

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from crm import realtime
from crm import services as crm_services
from crm.models import Conversation, CRMSettings, Message, agent_name
from notifications import services as notification_services
from tickets import services as ticket_services
from tickets.models import Ticket

from . import selectors
from .errors import AlreadyClaimed, InvalidTransition, NotYourEscalation, ReasonRequired
from .models import Escalation, EscalationEvent, Priority, Reason

Status = Escalation.Status


def _event(escalation, kind, *, actor=None, old="", new="", note="") -> EscalationEvent:
    return EscalationEvent.objects.create(
        escalation=escalation,
        kind=kind,
        actor=actor,
        old_value=str(old)[:200],
        new_value=str(new)[:200],
        note=note,
    )


def _locked(escalation_id: int) -> Escalation:
    return (
        Escalation.objects.select_for_update(of=("self",))
        .select_related("conversation")
        .get(pk=escalation_id)
    )


def _is_manager(user) -> bool:
    profile = getattr(user, "agent_profile", None)
    return user.is_superuser or (profile is not None and profile.is_manager)


def _require_owner(escalation: Escalation, agent) -> None:
    if escalation.claimed_by_id != agent.pk and not _is_manager(agent):
        raise NotYourEscalation(_("Only the agent handling this conversation or a manager can."))


def local_summary(conversation: Conversation, reason: str) -> str:
    from .detection import Turn, summarize

    turns = [
        Turn(role=_ROLE[m.sender], text=m.text, confidence=m.confidence)
        for m in conversation.messages.filter(is_private_note=False).order_by("id")
    ]
    return summarize(turns, reason)


_ROLE = {
    Message.Sender.CUSTOMER: "customer",
    Message.Sender.AI: "assistant",
    Message.Sender.AGENT: "agent",
    Message.Sender.SYSTEM: "system",
}


@transaction.atomic
def escalate_conversation(
    *,
    conversation: Conversation,
    reason: str,
    priority: Priority,
    triggered_by: str,
    detail: str = "",
    summary: str = "",
    signals: dict | None = None,
    actor=None,
) -> tuple[Escalation, bool]:
    """Hand the conversation to the human queue. Returns ``(escalation, created)``.

    One active escalation per conversation: the conversation row is locked, and a second
    trigger raises the priority (never lowers it) instead of duplicating. After commit the
    customer's handoff message, the queue row and agents' notifications go out.
    """
    if reason not in Reason.values:
        raise InvalidTransition(_("Unknown reason %(reason)r.") % {"reason": reason})
    priority = Priority(priority)
    conversation = (
        Conversation.objects.select_for_update(of=("self",))
        .select_related("contact", "channel")
        .get(pk=conversation.pk)
    )
    if conversation.mode == Conversation.Mode.CLOSED:
        raise InvalidTransition(_("This conversation is closed."))

    active = conversation.escalations.filter(status__in=Escalation.ACTIVE_STATUSES).first()
    if active is not None:
        _retrigger(active, reason=reason, priority=priority, detail=detail, actor=actor)
        return active, False

    escalation = Escalation.objects.create(
        conversation=conversation,
        status=Status.QUEUED,
        reason=reason,
        detail=detail[:300] or Reason(reason).label,
        priority=priority,
        summary=summary or local_summary(conversation, reason),
        signals=signals or {},
        team=conversation.team or conversation.channel.default_team,
        triggered_by=triggered_by,
        triggered_by_user=actor,
        escalated_at=timezone.now(),
    )
    _event(escalation, EscalationEvent.Kind.ESCALATED, actor=actor, new=reason, note=detail)

    conversation.mode = Conversation.Mode.AWAITING_AGENT
    conversation.save(update_fields=["mode", "updated_at"])
    realtime.publish_mode(conversation)

    wait_minutes = max(1, math.ceil(selectors.estimated_wait_seconds(escalation) / 60))
    crm_services.post_system_message(
        conversation=conversation,
        text=crm_services.fill_template(
            CRMSettings.load().handoff_message, wait_minutes=wait_minutes
        ),
    )
    ticket_services.open_ticket_for_escalation(escalation=escalation)
    notification_services.notify_agents_of_escalation(escalation=escalation)
    realtime.publish_queue_event("added", escalation.pk)
    return escalation, True


def _retrigger(escalation: Escalation, *, reason, priority, detail, actor) -> None:
    if priority <= escalation.priority:
        _event(escalation, EscalationEvent.Kind.RETRIGGERED, actor=actor, new=reason, note=detail)
        return
    old = Priority(escalation.priority)
    escalation.priority = priority
    escalation.reason = reason
    escalation.detail = detail[:300] or Reason(reason).label
    escalation.save(update_fields=["priority", "reason", "detail"])
    Ticket.objects.filter(escalation=escalation).update(priority=priority)
    _event(
        escalation,
        EscalationEvent.Kind.REPRIORITISED,
        actor=actor,
        old=old.code,
        new=priority.code,
        note=detail,
    )
    realtime.publish_queue_event("updated", escalation.pk)


@transaction.atomic
def take_over_escalation(*, escalation_id: int, agent) -> Escalation:
    """Claim a queued escalation for ``agent``. Exactly one of several concurrent callers wins:
    the claim is one conditional UPDATE; the others get AlreadyClaimed naming the winner."""
    now = timezone.now()
    won = Escalation.objects.filter(pk=escalation_id, status=Status.QUEUED).update(
        status=Status.CLAIMED, claimed_by=agent
    )
    escalation = _locked(escalation_id)
    if not won:
        if escalation.status == Status.CLAIMED:
            if escalation.claimed_by_id == agent.pk:
                return escalation  # a double click by the winner
            raise AlreadyClaimed(agent_name(escalation.claimed_by))
        raise InvalidTransition(
            _("This escalation is %(status)s and cannot be taken over.")
            % {"status": escalation.get_status_display().lower()}
        )
    if escalation.claimed_at is None:
        escalation.claimed_at = now
        escalation.save(update_fields=["claimed_at"])
    _event(escalation, EscalationEvent.Kind.CLAIMED, actor=agent, old="queued", new="claimed")
    _hand_conversation_to(escalation, agent)
    realtime.publish_queue_event("claimed", escalation.pk, agent_name=agent_name(agent))
    return escalation


def _hand_conversation_to(escalation: Escalation, agent) -> None:
    conversation = Conversation.objects.select_for_update(of=("self",)).get(
        pk=escalation.conversation_id
    )
    name = agent_name(agent)
    conversation.mode = Conversation.Mode.AGENT
    conversation.assigned_agent = agent
    conversation.save(update_fields=["mode", "assigned_agent", "updated_at"])
    ticket_services.assign_ticket(ticket=escalation.ticket, assignee=agent, actor=agent)
    realtime.publish_mode(conversation, agent_display_name=name)
    crm_services.post_system_message(
        conversation=conversation, text=_("Now speaking with %(name)s") % {"name": name}
    )
    crm_services.post_agent_text(
        conversation=conversation,
        agent=agent,
        text=crm_services.fill_template(CRMSettings.load().takeover_message, agent_name=name),
    )


@transaction.atomic
def reassign_escalation(
    *, escalation_id: int, actor, to_agent=None, to_team=None, note: str = ""
) -> Escalation:
    """Move an active escalation: to an agent (who owns it at once), to a team's queue, or
    (neither given) back to the queue. The original escalation time is kept for wait metrics."""
    escalation = _locked(escalation_id)
    if not escalation.is_active:
        raise InvalidTransition(_("Only an active escalation can be reassigned."))
    if escalation.status == Status.CLAIMED:
        _require_owner(escalation, actor)
    previous = agent_name(escalation.claimed_by) if escalation.claimed_by_id else _("queue")

    if to_agent is not None:
        escalation.status = Status.CLAIMED
        escalation.claimed_by = to_agent
        escalation.claimed_at = escalation.claimed_at or timezone.now()
        escalation.save(update_fields=["status", "claimed_by", "claimed_at"])
        _event(
            escalation,
            EscalationEvent.Kind.REASSIGNED,
            actor=actor,
            old=previous,
            new=agent_name(to_agent),
            note=note,
        )
        _hand_conversation_to(escalation, to_agent)
        realtime.publish_queue_event("claimed", escalation.pk, agent_name=agent_name(to_agent))
        realtime.publish_to_agent(
            to_agent.pk,
            {"type": "assignment.created", "escalation": escalation.pk,
             "conversation": escalation.conversation_id},
        )
        return escalation

    escalation.status = Status.QUEUED
    escalation.claimed_by = None
    if to_team is not None:
        escalation.team = to_team
    escalation.save(update_fields=["status", "claimed_by", "team"])
    _event(
        escalation,
        EscalationEvent.Kind.RELEASED,
        actor=actor,
        old=previous,
        new=to_team.name if to_team else _("queue"),
        note=note,
    )
    conversation = Conversation.objects.select_for_update(of=("self",)).get(
        pk=escalation.conversation_id
    )
    conversation.mode = Conversation.Mode.AWAITING_AGENT
    conversation.assigned_agent = None
    if to_team is not None:
        conversation.team = to_team
    conversation.save(update_fields=["mode", "assigned_agent", "team", "updated_at"])
    ticket_services.assign_ticket(ticket=escalation.ticket, assignee=None, actor=actor)
    realtime.publish_mode(conversation)
    crm_services.post_system_message(
        conversation=conversation,
        text=_("You're back in the queue; the next available agent will be with you shortly."),
    )
    notification_services.notify_agents_of_escalation(escalation=escalation)
    realtime.publish_queue_event("added", escalation.pk)
    return escalation


@transaction.atomic
def resolve_escalation(*, escalation_id: int, agent, note: str = "") -> Escalation:
    """The agent solved it: the ticket is resolved and the resolution time stored. The
    conversation stays with the agent until closed or handed back."""
    escalation = _locked(escalation_id)
    if escalation.status != Status.CLAIMED:
        raise InvalidTransition(_("Only a taken-over escalation can be resolved."))
    _require_owner(escalation, agent)
    escalation.status = Status.RESOLVED
    escalation.resolved_at = timezone.now()
    escalation.save(update_fields=["status", "resolved_at"])
    _event(escalation, EscalationEvent.Kind.RESOLVED, actor=agent, old="claimed",
           new="resolved", note=note)
    ticket_services.set_ticket_status(
        ticket=escalation.ticket, status=Ticket.Status.RESOLVED, actor=agent, note=note
    )
    realtime.publish_queue_event("removed", escalation.pk)
    return escalation


@transaction.atomic
def close_escalation(*, escalation_id: int, agent, reason: str = "") -> Escalation:
    """End the conversation. Closing without resolving first needs a reason."""
    escalation = _locked(escalation_id)
    if escalation.status in (Status.CLOSED, Status.CANCELLED):
        raise InvalidTransition(_("This escalation is already closed."))
    if escalation.status == Status.CLAIMED:
        _require_owner(escalation, agent)
    if escalation.status != Status.RESOLVED and not reason.strip():
        raise ReasonRequired(_("Say why you are closing without resolving."))
    old = escalation.status
    escalation.status = Status.CLOSED
    escalation.closed_at = timezone.now()
    escalation.close_reason = reason.strip()[:300]
    escalation.save(update_fields=["status", "closed_at", "close_reason"])
    _event(escalation, EscalationEvent.Kind.CLOSED, actor=agent, old=old, new="closed",
           note=reason)
    ticket_services.set_ticket_status(
        ticket=escalation.ticket, status=Ticket.Status.CLOSED, actor=agent, note=reason
    )
    conversation = Conversation.objects.select_for_update(of=("self",)).get(
        pk=escalation.conversation_id
    )
    crm_services.close_conversation_now(conversation)
    realtime.publish_queue_event("removed", escalation.pk)
    return escalation


@transaction.atomic
def cancel_escalation(*, escalation_id: int, reason: str = "") -> Escalation:
    """The customer left before anyone picked up."""
    escalation = _locked(escalation_id)
    if escalation.status != Status.QUEUED:
        raise InvalidTransition(_("Only a queued escalation can be cancelled."))
    escalation.status = Status.CANCELLED
    escalation.closed_at = timezone.now()
    escalation.close_reason = reason[:300] or _("Customer left before pickup.")
    escalation.save(update_fields=["status", "closed_at", "close_reason"])
    _event(escalation, EscalationEvent.Kind.CANCELLED, old="queued", new="cancelled", note=reason)
    ticket_services.set_ticket_status(
        ticket=escalation.ticket, status=Ticket.Status.CLOSED, note=escalation.close_reason
    )
    conversation = Conversation.objects.select_for_update(of=("self",)).get(
        pk=escalation.conversation_id
    )
    crm_services.close_conversation_now(conversation)
    realtime.publish_queue_event("removed", escalation.pk)
    return escalation


@transaction.atomic
def hand_back_to_ai(*, escalation_id: int, agent, note: str = "") -> Escalation:
    """The agent lets the AI drive again. The escalation ends as resolved."""
    escalation = _locked(escalation_id)
    if escalation.status not in (Status.CLAIMED, Status.RESOLVED):
        raise InvalidTransition(_("Take over the conversation before handing it back."))
    _require_owner(escalation, agent)
    if escalation.status == Status.CLAIMED:
        escalation.status = Status.RESOLVED
        escalation.resolved_at = timezone.now()
        escalation.save(update_fields=["status", "resolved_at"])
        ticket_services.set_ticket_status(
            ticket=escalation.ticket, status=Ticket.Status.RESOLVED, actor=agent, note=note
        )
    _event(escalation, EscalationEvent.Kind.HANDED_BACK, actor=agent, old="agent", new="ai",
           note=note)
    conversation = Conversation.objects.select_for_update(of=("self",)).get(
        pk=escalation.conversation_id
    )
    conversation.mode = Conversation.Mode.AI
    conversation.assigned_agent = None
    conversation.save(update_fields=["mode", "assigned_agent", "updated_at"])
    realtime.publish_mode(conversation)
    crm_services.post_system_message(
        conversation=conversation, text=_("You're chatting with our assistant again.")
    )
    realtime.publish_queue_event("removed", escalation.pk)
    return escalation


@transaction.atomic
def remind_overdue_escalation(*, escalation_id: int) -> bool:
    """Raise a queued escalation past its team's target wait one priority level and notify
    again; at most once per target interval (a conditional update decides)."""
    escalation = _locked(escalation_id)
    if escalation.status != Status.QUEUED:
        return False
    target = selectors.target_wait_seconds(escalation)
    now = timezone.now()
    due_since = now - timezone.timedelta(seconds=target)
    if escalation.escalated_at > due_since or (
        escalation.last_reminded_at and escalation.last_reminded_at > due_since
    ):
        return False
    old = Priority(escalation.priority)
    escalation.priority = old.raised()
    escalation.last_reminded_at = now
    escalation.save(update_fields=["priority", "last_reminded_at"])
    Ticket.objects.filter(escalation=escalation).update(priority=escalation.priority)
    _event(escalation, EscalationEvent.Kind.REMINDED, old=old.code,
           new=Priority(escalation.priority).code)
    notification_services.notify_agents_of_reminder(escalation=escalation)
    realtime.publish_queue_event("updated", escalation.pk)
    return True
