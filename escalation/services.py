"""The handoff, step by step: escalate, take over, reply, reassign, resolve, close.

Each public function is one transaction and leaves an EscalationEvent. Broadcasts, emails and
tasks are scheduled with ``transaction.on_commit`` and never run for a rolled-back change.
Races are settled in the database: a row lock on the conversation for escalating, a conditional
``UPDATE ... WHERE status='queued'`` for taking over.

Lock order, everywhere: conversation → escalation → ticket. ``crm.services`` locks the
conversation alone, so no two of these transactions can wait on each other in a cycle.
"""

import functools
import logging
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Value
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext as _

from crm import customer_texts, metrics, realtime
from crm import services as crm_services
from crm.models import PROVIDER_CHANNELS, Conversation, agent_name
from integrations.payloads import emit_escalation_event
from integrations.services import subscriptions_read_once
from tickets import services as ticket_services
from tickets.models import Ticket

from . import alerts, satisfaction, selectors
from .errors import (
    AlreadyClaimed,
    EscalationNotFound,
    InvalidTransition,
    NotYourEscalation,
    ReasonRequired,
    ReplayAlreadyRunning,
    VerdictAlreadyGiven,
)
from .models import Escalation, EscalationEvent, HandoffVerdict, Priority, Reason, ReplayJob
from .routing import clocks as routing_clocks
from .routing import rules as routing_rules
from .routing import tasks as routing_tasks
from .routing.models import RoutingSettings

Status = Escalation.Status
logger = logging.getLogger(__name__)


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
    """The escalation and its conversation, both row-locked, conversation first (lock order)."""
    rows = Escalation.objects.filter(pk=escalation_id).values_list("conversation_id", flat=True)
    conversation_id = rows.first()
    if conversation_id is None:
        raise EscalationNotFound(_("No escalation #%(id)s.") % {"id": escalation_id})
    conversation = (
        Conversation.objects.select_for_update(of=("self",))
        .select_related("contact", "channel")
        .get(pk=conversation_id)
    )
    escalation = Escalation.objects.select_for_update().get(pk=escalation_id)
    escalation.conversation = conversation
    return escalation


def _tell_customer(escalation: Escalation, kind: str, **values):
    """A system message of ``kind`` (``crm.customer_texts``) in the customer's language, as
    guessed when the conversation escalated. Inside the caller's transaction."""
    return crm_services.post_system_message(
        conversation=escalation.conversation,
        text=customer_texts.render(kind, escalation.language, **values),
    )


def _is_manager(user) -> bool:
    profile = getattr(user, "agent_profile", None)
    return user.is_superuser or (profile is not None and profile.is_manager)


def _require_owner(escalation: Escalation, agent) -> None:
    if escalation.claimed_by_id != agent.pk and not _is_manager(agent):
        raise NotYourEscalation(_("Only the agent handling this conversation or a manager can."))


@transaction.atomic
@subscriptions_read_once()  # its three or four webhook events read the subscriptions once
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

    ``summary`` is a model's account of the problem (Claude's), used as the handoff card's
    problem statement; without one the card states the customer's own first words. The card
    (``Escalation.card``) and its plain text (``Escalation.summary``) are built here, from the
    turns, the moods the analyses stored and what the contact already gave.

    ``priority`` is a ``Priority`` (or its code, "high"). ``triggered_by`` is an
    ``Escalation.Trigger`` (detection, assistant, agent, api); ``actor`` the staff user when one
    asked. One active escalation per conversation: the conversation row is locked, and a second
    trigger raises the priority (never lowers it) instead of duplicating. Refused (typed error)
    for a closed conversation, one an agent already drives with no open escalation, and a
    detection or assistant trigger when the assistant's handoff is disabled.

    In the transaction: the escalation, its ESCALATED event, mode ``awaiting_agent`` (the AI
    stops), the handoff message with the estimated wait, the ticket, agents' notifications.
    After commit: the broadcasts (message, mode, queue, notifications) and provider delivery.
    """
    if reason not in Reason.values:
        raise InvalidTransition(_("Unknown reason %(reason)r.") % {"reason": reason})
    if triggered_by not in Escalation.Trigger.values:
        raise InvalidTransition(_("Unknown trigger %(trigger)r.") % {"trigger": triggered_by})
    try:
        priority = Priority.parse(priority)
    except ValueError:
        raise InvalidTransition(_("Unknown priority %(p)r.") % {"p": priority}) from None
    detail = (detail or "").strip()
    conversation = (
        Conversation.objects.select_for_update(of=("self",))
        .select_related("contact", "channel", "assistant")
        .get(pk=conversation.pk)
    )
    if conversation.mode == Conversation.Mode.CLOSED:
        raise InvalidTransition(_("This conversation is closed."))
    assistant = conversation.assistant
    if (
        triggered_by in (Escalation.Trigger.DETECTION, Escalation.Trigger.ASSISTANT)
        and assistant is not None
        and not assistant.handoff_enabled
    ):
        # Handoff disabled: the AI never escalates on its own (a person still may).
        raise InvalidTransition(_("Human handoff is disabled for this assistant."))

    active = (
        Escalation.objects.select_for_update()
        .filter(conversation=conversation, status__in=Escalation.ACTIVE_STATUSES)
        .first()
    )
    if active is not None:
        active.conversation = conversation
        _retrigger(active, reason=reason, priority=priority, detail=detail, actor=actor)
        _refresh_card(active, problem=summary)
        return active, False
    if conversation.mode == Conversation.Mode.AGENT:
        raise InvalidTransition(_("An agent is already handling this conversation."))

    turns = selectors.conversation_turns(conversation.pk)
    customer_lines = [turn.text for turn in turns if turn.role == "customer"]
    facts = routing_rules.RoutingFacts(
        reason=reason,
        topics=frozenset(routing_rules.routing_topics(signals or {}, customer_lines)),
        channel_kind=conversation.channel.kind,
        language=routing_rules.guess_language(customer_lines),
    )
    # The routing settings and the team's routing row, each read once for the whole handoff.
    load_settings = functools.cache(RoutingSettings.load)
    team, rule = routing_rules.choose_team(
        conversation=conversation, facts=facts, load_settings=load_settings
    )
    clock = routing_clocks.TeamClock(team.pk if team else None, load_settings=load_settings)
    now = timezone.now()
    card = selectors.handoff_card(conversation, reason, problem=summary, turns=turns)
    escalation = Escalation(
        conversation=conversation,
        status=Status.QUEUED,
        reason=reason,
        detail=detail[:300] or str(Reason(reason).label),
        priority=priority,
        summary=card.as_text(),
        card=card.as_dict(),
        signals=signals or {},
        team=team,
        routing_rule=rule,
        language=facts.language,
        triggered_by=triggered_by,
        triggered_by_user=actor,
        escalated_at=now,
        priority_changed_at=now,
        wait_sentiment=((signals or {}).get("sentiment") or {}).get("intensity"),
        after_hours_until=clock.reopens_at(now),
    )
    escalation.sla_due_at = clock.sla_due_at(escalation)  # in the INSERT, not after it
    escalation.save(force_insert=True)
    _event(
        escalation,
        EscalationEvent.Kind.ESCALATED,
        actor=actor,
        old=conversation.mode,
        new=reason,
        note=f"{triggered_by}: {detail}" if detail else triggered_by,
    )
    if rule is not None:
        _event(escalation, EscalationEvent.Kind.ROUTED, new=team.name, note=rule.name)
    # Registered first so it is the first broadcast after commit: the queue is what agents
    # wait on (the handoff benchmark measures exactly this hop).
    realtime.publish_queue_event("added", escalation.pk)

    conversation.mode = Conversation.Mode.AWAITING_AGENT
    if escalation.team_id is not None and conversation.team_id != escalation.team_id:
        conversation.team_id = escalation.team_id
    conversation.save(update_fields=["mode", "team", "updated_at"])
    realtime.publish_mode(conversation)

    if escalation.after_hours_until is not None:
        notice = routing_clocks.after_hours_notice(
            escalation.team, escalation.after_hours_until, escalation.language
        )
    else:
        wait_minutes, reopens_at = selectors.estimated_wait(escalation, clock=clock)
        if reopens_at is None:
            notice = customer_texts.render(
                "handoff", escalation.language, wait_minutes=wait_minutes
            )
        else:  # open now, but closing before the customer's turn comes
            notice = routing_clocks.handoff_before_closing_notice(reopens_at, escalation.language)
    crm_services.post_system_message(conversation=conversation, text=notice)
    crm_services.forget_wait_notice(conversation=conversation)
    ticket_services.open_ticket_for_escalation(escalation=escalation, escalation_is_new=True)
    alerts.notify_agents_of_escalation(escalation=escalation, is_new=True)
    emit_escalation_event("escalation.created", escalation)
    _route_after_commit(escalation.pk)
    return escalation, True


def _route_after_commit(escalation_id: int) -> None:
    """An automatic team's escalation is pushed to an agent by a task after commit."""
    transaction.on_commit(
        lambda: routing_tasks.route_escalation_task.delay(escalation_id), robust=True
    )


def _free_slot_after_commit(user_id: int | None) -> None:
    """The agent has room again: routing gives them the next escalation of their teams."""
    if user_id is not None:
        transaction.on_commit(
            lambda: routing_tasks.fill_agent_slots_task.delay(user_id), robust=True
        )


def _refresh_card(escalation: Escalation, *, problem: str = "") -> None:
    """A later trigger: the card follows the conversation (the mood may have turned, more
    facts given); the problem statement stays unless a model gives a new one."""
    old = escalation.handoff_card
    if not problem and old is not None:
        problem = old.problem  # the problem as stated at the handoff stays
    card = selectors.handoff_card(escalation.conversation, escalation.reason, problem=problem)
    escalation.card, escalation.summary = card.as_dict(), card.as_text()
    escalation.save(update_fields=["card", "summary"])


def _retrigger(escalation: Escalation, *, reason, priority, detail, actor) -> None:
    """A later trigger of an active escalation: recorded; it raises the priority (and takes
    over the reason) only when stronger, never lowers it."""
    if priority <= escalation.priority:
        _event(escalation, EscalationEvent.Kind.RETRIGGERED, actor=actor, new=reason, note=detail)
        return
    old = Priority(escalation.priority)
    escalation.priority = priority
    escalation.reason = reason
    escalation.detail = detail[:300] or str(Reason(reason).label)
    escalation.priority_changed_at = timezone.now()
    if escalation.status == Status.QUEUED and escalation.sla_breached_at is None:
        escalation.sla_due_at = routing_clocks.sla_due_at(escalation)
    escalation.save(
        update_fields=["priority", "reason", "detail", "priority_changed_at", "sla_due_at"]
    )
    ticket_services.set_ticket_priority(
        ticket=escalation.ticket, priority=priority, reason=reason, actor=actor
    )
    _event(
        escalation,
        EscalationEvent.Kind.REPRIORITISED,
        actor=actor,
        old=old.code,
        new=priority.code,
        note=f"{reason}: {detail}" if detail else reason,
    )
    realtime.publish_queue_event("updated", escalation.pk)


def take_over_escalation(*, escalation_id: int, agent) -> Escalation:
    """Claim a queued escalation for ``agent``. Exactly one of several concurrent callers wins:
    the conversation row is locked first, then the claim is one conditional
    ``UPDATE ... WHERE status='queued'``; the others get ``AlreadyClaimed`` naming the winner.
    A repeated click by the winner returns the escalation unchanged. A pending offer to
    another agent is withdrawn (the one who clicked wins).

    The mode becomes ``agent``, the ticket is assigned, the customer gets "Now speaking with
    {agent}" then the takeover message; broadcasts after commit."""
    return claim_escalation(
        escalation_id=escalation_id, agent=agent, kind=EscalationEvent.Kind.CLAIMED, actor=agent
    )


@transaction.atomic
@subscriptions_read_once()  # the take-over's three webhook events read the subscriptions once
def claim_escalation(*, escalation_id: int, agent, kind: str, actor, note: str = "") -> Escalation:
    """The take-over, recorded as ``kind`` by ``actor``: CLAIMED by the agent (a click, an
    accepted offer) or ASSIGNED by routing (actor None)."""
    escalation = _locked(escalation_id)
    now = timezone.now()
    withdrawn_from = escalation.offered_to_id if escalation.offered_to_id != agent.pk else None
    won = Escalation.objects.filter(pk=escalation_id, status=Status.QUEUED).update(
        status=Status.CLAIMED,
        claimed_by=agent,
        claimed_at=Coalesce(F("claimed_at"), Value(now)),
        offered_to=None,
        offer_expires_at=None,
    )
    if not won:
        if escalation.status == Status.CLAIMED:
            if escalation.claimed_by_id == agent.pk:
                return escalation  # a double click by the winner
            raise AlreadyClaimed(agent_name(escalation.claimed_by))
        raise InvalidTransition(
            _("This escalation is %(status)s and cannot be taken over.")
            % {"status": escalation.get_status_display().lower()}
        )
    escalation.refresh_from_db(
        fields=["status", "claimed_by", "claimed_at", "offered_to", "offer_expires_at"]
    )
    _event(escalation, kind, actor=actor, old="queued", new="claimed", note=note)
    _hand_conversation_to(escalation, agent)
    _free_slot_after_commit(withdrawn_from)
    alerts.settle_alerts(
        escalation=escalation, what="taken" if actor is not None else "assigned", by=agent
    )
    realtime.publish_queue_event("claimed", escalation.pk, agent_name=agent_name(agent))
    emit_escalation_event("escalation.claimed", escalation)
    if escalation.claimed_at == now:  # the first pickup (a re-queued one keeps its first)
        waited = (now - escalation.escalated_at).total_seconds()
        priority = Priority(escalation.priority).code
        transaction.on_commit(lambda: metrics.escalation_wait.labels(priority).observe(waited))
    return escalation


def _hand_conversation_to(escalation: Escalation, agent) -> None:
    """Inside the caller's transaction, with the conversation already locked."""
    conversation = escalation.conversation
    name = agent_name(agent)
    conversation.mode = Conversation.Mode.AGENT
    conversation.assigned_agent = agent
    conversation.save(update_fields=["mode", "assigned_agent", "updated_at"])
    ticket_services.assign_ticket(ticket=escalation.ticket, assignee=agent, actor=agent)
    realtime.publish_mode(conversation, agent_display_name=name, language=escalation.language)
    _tell_customer(escalation, "takeover", agent_name=name)
    crm_services.post_agent_text(
        conversation=conversation,
        agent=agent,
        text=customer_texts.render("agent_greeting", escalation.language, agent_name=name),
    )


@transaction.atomic
def reassign_escalation(
    *, escalation_id: int, actor, to_agent=None, to_team=None, note: str = ""
) -> Escalation:
    """Move an active escalation: to an agent (who owns it at once), to a team's queue, or
    (neither given) back to the queue. A claimed escalation moves only by its agent or a
    manager. The original escalation time and the first pickup time are kept, so wait metrics
    stay honest; the hop is an event (REASSIGNED or RELEASED)."""
    escalation = _locked(escalation_id)
    if not escalation.is_active:
        raise InvalidTransition(_("Only an active escalation can be reassigned."))
    if escalation.status == Status.CLAIMED:
        _require_owner(escalation, actor)
    was_claimed = escalation.status == Status.CLAIMED
    previous = agent_name(escalation.claimed_by) if escalation.claimed_by_id else _("queue")
    _free_slot_after_commit(escalation.claimed_by_id or escalation.offered_to_id)
    conversation = escalation.conversation

    if to_agent is not None:
        if was_claimed and escalation.claimed_by_id == to_agent.pk:
            raise InvalidTransition(_("%(name)s already has it.") % {"name": previous})
        escalation.status = Status.CLAIMED
        escalation.claimed_by = to_agent
        escalation.claimed_at = escalation.claimed_at or timezone.now()
        escalation.offered_to = None
        escalation.offer_expires_at = None
        if to_team is not None:
            escalation.team = to_team
        escalation.save(
            update_fields=[
                "status",
                "claimed_by",
                "claimed_at",
                "team",
                "offered_to",
                "offer_expires_at",
            ]
        )
        _event(
            escalation,
            EscalationEvent.Kind.REASSIGNED,
            actor=actor,
            old=previous,
            new=agent_name(to_agent),
            note=note,
        )
        if to_team is not None:
            conversation.team = to_team
            conversation.save(update_fields=["team", "updated_at"])
        _hand_conversation_to(escalation, to_agent)
        alerts.settle_alerts(escalation=escalation, what="assigned", by=to_agent)
        realtime.publish_queue_event("claimed", escalation.pk, agent_name=agent_name(to_agent))
        emit_escalation_event("escalation.claimed", escalation)
        realtime.publish_to_agent(
            to_agent.pk,
            {
                "type": "assignment.created",
                "escalation": escalation.pk,
                "conversation": escalation.conversation_id,
            },
        )
        return escalation

    escalation.status = Status.QUEUED
    escalation.claimed_by = None
    escalation.offered_to = None
    escalation.offer_expires_at = None
    if to_team is not None:
        escalation.team = to_team
    # The reminder clock restarts: the original escalated_at stays for wait metrics, but a
    # released escalation is not overdue the moment it is back in the queue.
    escalation.last_reminded_at = timezone.now()
    escalation.save(
        update_fields=[
            "status",
            "claimed_by",
            "team",
            "last_reminded_at",
            "offered_to",
            "offer_expires_at",
        ]
    )
    _event(
        escalation,
        EscalationEvent.Kind.RELEASED,
        actor=actor,
        old=previous,
        new=to_team.name if to_team else _("queue"),
        note=note,
    )
    conversation.mode = Conversation.Mode.AWAITING_AGENT
    conversation.assigned_agent = None
    if to_team is not None:
        conversation.team = to_team
    conversation.save(update_fields=["mode", "assigned_agent", "team", "updated_at"])
    ticket_services.assign_ticket(ticket=escalation.ticket, assignee=None, actor=actor)
    realtime.publish_mode(conversation)
    if was_claimed:
        _tell_customer(escalation, "back_in_queue")
    alerts.notify_agents_of_escalation(escalation=escalation)
    realtime.publish_queue_event("added" if was_claimed else "updated", escalation.pk)
    _route_after_commit(escalation.pk)
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
    _free_slot_after_commit(escalation.claimed_by_id)
    _event(
        escalation,
        EscalationEvent.Kind.RESOLVED,
        actor=agent,
        old="claimed",
        new="resolved",
        note=note,
    )
    ticket_services.set_ticket_status(
        ticket=escalation.ticket, status=Ticket.Status.RESOLVED, actor=agent, note=note
    )
    # The agent keeps the chat, but for the customer it has ended: the closing message, the
    # rating prompt, and a mode frame that no longer says "Now speaking with ...".
    realtime.publish_mode(
        escalation.conversation,
        agent_display_name=agent_name(escalation.claimed_by),
        resolved=True,
        language=escalation.language,
    )
    satisfaction.end_for_customer(escalation)
    alerts.settle_alerts(escalation=escalation, what="resolved", by=agent)
    realtime.publish_queue_event("removed", escalation.pk)
    emit_escalation_event("escalation.resolved", escalation)
    return escalation


def _require_latest(escalation: Escalation) -> None:
    """A finished escalation may not act on a conversation a newer escalation now drives."""
    newer = (
        Escalation.objects.filter(
            conversation_id=escalation.conversation_id, status__in=Escalation.ACTIVE_STATUSES
        )
        .exclude(pk=escalation.pk)
        .exists()
    )
    if newer:
        raise InvalidTransition(_("A newer escalation is open for this conversation."))


@transaction.atomic
def close_escalation(*, escalation_id: int, agent, reason: str = "") -> Escalation:
    """End the conversation. Closing without resolving first needs a reason (ReasonRequired);
    a taken-over or resolved escalation closes only by its agent or a manager."""
    escalation = _locked(escalation_id)
    if escalation.status in (Status.CLOSED, Status.CANCELLED):
        raise InvalidTransition(_("This escalation is already closed."))
    if escalation.status in (Status.CLAIMED, Status.RESOLVED):
        _require_owner(escalation, agent)
    _require_latest(escalation)
    reason = (reason or "").strip()
    if escalation.status != Status.RESOLVED and not reason:
        raise ReasonRequired(_("Say why you are closing without resolving."))
    old = escalation.status
    if old == Status.CLAIMED:
        _free_slot_after_commit(escalation.claimed_by_id)
    elif old == Status.QUEUED:
        _free_slot_after_commit(escalation.offered_to_id)
    escalation.status = Status.CLOSED
    escalation.offered_to = None
    escalation.closed_at = timezone.now()
    escalation.close_reason = reason[:300]
    escalation.save(update_fields=["status", "offered_to", "closed_at", "close_reason"])
    _event(escalation, EscalationEvent.Kind.CLOSED, actor=agent, old=old, new="closed", note=reason)
    ticket_services.set_ticket_status(
        ticket=escalation.ticket, status=Ticket.Status.CLOSED, actor=agent, note=reason
    )
    satisfaction.end_for_customer(escalation)  # a no-op when resolving already did it
    crm_services.close_conversation_now(escalation.conversation)
    alerts.settle_alerts(escalation=escalation, what="closed", by=agent)
    realtime.publish_queue_event("removed", escalation.pk)
    return escalation


@transaction.atomic
def cancel_escalation(*, escalation_id: int, reason: str = "", actor=None) -> Escalation:
    """The customer left before anyone picked up: the escalation is cancelled, its ticket
    closed and the conversation closed."""
    escalation = _locked(escalation_id)
    if escalation.status != Status.QUEUED:
        raise InvalidTransition(_("Only a queued escalation can be cancelled."))
    _free_slot_after_commit(escalation.offered_to_id)
    escalation.status = Status.CANCELLED
    escalation.offered_to = None
    escalation.closed_at = timezone.now()
    escalation.close_reason = (reason or "").strip()[:300] or _("Customer left before pickup.")
    escalation.save(update_fields=["status", "offered_to", "closed_at", "close_reason"])
    _event(
        escalation,
        EscalationEvent.Kind.CANCELLED,
        actor=actor,
        old="queued",
        new="cancelled",
        note=escalation.close_reason,
    )
    ticket_services.set_ticket_status(
        ticket=escalation.ticket,
        status=Ticket.Status.CLOSED,
        actor=actor,
        note=escalation.close_reason,
    )
    crm_services.close_conversation_now(escalation.conversation)
    alerts.settle_alerts(escalation=escalation, what="cancelled")
    realtime.publish_queue_event("removed", escalation.pk)
    return escalation


@transaction.atomic
def hand_back_to_ai(*, escalation_id: int, agent, note: str = "") -> Escalation:
    """The agent lets the AI drive again (the AI resumes only this way). A claimed escalation
    ends as resolved; the note is kept as a private note for the next agent."""
    escalation = _locked(escalation_id)
    if escalation.status not in (Status.CLAIMED, Status.RESOLVED):
        raise InvalidTransition(_("Take over the conversation before handing it back."))
    conversation = escalation.conversation
    if conversation.mode != Conversation.Mode.AGENT:
        raise InvalidTransition(_("Only a conversation an agent is handling can go back."))
    _require_owner(escalation, agent)
    _require_latest(escalation)
    if escalation.status == Status.CLAIMED:
        escalation.status = Status.RESOLVED
        escalation.resolved_at = timezone.now()
        escalation.save(update_fields=["status", "resolved_at"])
        _free_slot_after_commit(escalation.claimed_by_id)
        ticket_services.set_ticket_status(
            ticket=escalation.ticket, status=Ticket.Status.RESOLVED, actor=agent, note=note
        )
        emit_escalation_event("escalation.resolved", escalation)
        alerts.settle_alerts(escalation=escalation, what="handed_back", by=agent)
    _event(
        escalation, EscalationEvent.Kind.HANDED_BACK, actor=agent, old="agent", new="ai", note=note
    )
    conversation.mode = Conversation.Mode.AI
    conversation.assigned_agent = None
    # The assistant's next answers take the agent's account into account (crm.assistant).
    conversation.assistant_note = note.strip()[:1000]
    conversation.save(update_fields=["mode", "assigned_agent", "assistant_note", "updated_at"])
    realtime.publish_mode(conversation)
    if note.strip():
        crm_services.post_private_note(conversation=conversation, agent=agent, text=note)
    notice = _tell_customer(escalation, "hand_back", agent_name=agent_name(agent))
    # Detection starts afresh from here (escalation.selectors.detection_turns).
    conversation.ai_resumed_after_message_id = notice.pk
    conversation.save(update_fields=["ai_resumed_after_message_id"])
    realtime.publish_queue_event("removed", escalation.pk)
    return escalation


@transaction.atomic
def remind_overdue_escalation(*, escalation_id: int, now=None) -> bool:
    """Raise a queued escalation past its team's target wait one priority level and notify
    again; at most once per target interval (decided under the row lock)."""
    escalation = _locked(escalation_id)
    if escalation.status != Status.QUEUED:
        return False
    target = selectors.target_wait_seconds(escalation)
    now = now or timezone.now()
    due_since = now - timedelta(seconds=target)
    if escalation.escalated_at > due_since or (
        escalation.last_reminded_at and escalation.last_reminded_at > due_since
    ):
        return False
    old = Priority(escalation.priority)
    escalation.priority = old.raised()
    escalation.last_reminded_at = now
    fields = ["priority", "last_reminded_at"]
    if escalation.priority != old:
        escalation.priority_changed_at = now
        fields.append("priority_changed_at")
        if escalation.sla_breached_at is None:
            escalation.sla_due_at = routing_clocks.sla_due_at(escalation)
            fields.append("sla_due_at")
    escalation.save(update_fields=fields)
    ticket_services.set_ticket_priority(ticket=escalation.ticket, priority=escalation.priority)
    _event(
        escalation,
        EscalationEvent.Kind.REMINDED,
        old=old.code,
        new=Priority(escalation.priority).code,
        note=_("Waiting longer than %(seconds)s seconds.") % {"seconds": target},
    )
    alerts.notify_agents_of_reminder(escalation=escalation)
    realtime.publish_queue_event("updated", escalation.pk)
    return True


def queue_position_event(place: selectors.QueuePlace) -> dict:
    """The widget's ``queue.position`` frame; ``text`` is the sentence in the customer's
    language ("You are number 3 in the queue — about 4 minutes.", or the reopening while the
    wait runs over the team's closed hours)."""
    return {
        "type": "queue.position",
        "conversation": place.conversation_id,
        **place.shown(),
    }


def announce_queue_places() -> int:
    """Tell every waiting customer where they stand: a ``queue.position`` event to each
    widget, and, on WhatsApp and Instagram, a message when the estimate moved by at least
    ``WAIT_UPDATE_MIN_CHANGE_MINUTES`` (or they are next), at most once per
    ``WAIT_UPDATE_MIN_INTERVAL_SECONDS`` (``crm.services.post_wait_update`` decides under a
    row lock), and not while their team is closed (the estimate then only counts down to the
    reopening the handoff message gave). Returns how many customers were told. Called by a
    Celery task, never in a request."""
    config = settings.LIVE_ESCALATION
    places = selectors.queue_places()
    for place in places:
        realtime.publish_on_commit(
            realtime.conversation_group(place.conversation_id), queue_position_event(place)
        )
        if place.channel_kind in PROVIDER_CHANNELS and place.team_open:
            crm_services.post_wait_update(
                conversation_id=place.conversation_id,
                position=place.position,
                wait_minutes=place.wait_minutes,
                language=place.language,
                reopens_at=place.reopens_at,
                min_change=config["WAIT_UPDATE_MIN_CHANGE_MINUTES"],
                min_interval=timedelta(seconds=config["WAIT_UPDATE_MIN_INTERVAL_SECONDS"]),
            )
    return len(places)


JUDGEABLE_STATUSES = (Status.RESOLVED, Status.CLOSED)


@transaction.atomic
def record_handoff_verdict(*, escalation_id: int, needed: bool, agent) -> HandoffVerdict:
    """An agent's answer to "Was handing this over needed?", once per escalation (the one-to-one
    refuses a second, also from a concurrent click), for a resolved or closed escalation that
    detection or the assistant started. Writes a ``verdict`` event."""
    if not isinstance(needed, bool):
        raise InvalidTransition(_("Answer yes or no."))
    escalation = Escalation.objects.filter(pk=escalation_id).first()
    if escalation is None:
        raise EscalationNotFound(_("No escalation #%(id)s.") % {"id": escalation_id})
    if escalation.status not in JUDGEABLE_STATUSES:
        raise InvalidTransition(_("A handover is judged once it is resolved or closed."))
    if escalation.reason == Reason.MANUAL:
        raise InvalidTransition(_("Only an automatic handover can be judged."))
    _require_owner(escalation, agent)
    try:
        with transaction.atomic():
            verdict = HandoffVerdict.objects.create(
                escalation=escalation,
                needed=needed,
                reason=escalation.reason,
                given_by=agent,
                given_at=timezone.now(),
            )
    except IntegrityError:
        raise VerdictAlreadyGiven(_("Someone already answered for this handover.")) from None
    _event(
        escalation,
        EscalationEvent.Kind.VERDICT,
        actor=agent,
        new="needed" if needed else "not_needed",
    )
    return verdict


# --- Replays: what detection would do with an assistant's current settings -------------------

REPLAY_CHUNK = 10  # conversations between two progress saves
REPLAY_STALE_AFTER = timedelta(minutes=10)  # an unfinished job without progress for this long


@transaction.atomic
def start_replay_job(*, assistant, since, requested_by=None) -> ReplayJob:
    """Queue a replay of the assistant's conversations since ``since``; it starts after commit
    (a Celery task; with eager Celery, a thread, so the page can show progress). One unfinished
    job per assistant (a partial unique constraint): a second start while one runs raises
    ``ReplayAlreadyRunning``; a job silent for REPLAY_STALE_AFTER is marked failed first."""
    from . import replay

    now = timezone.now()
    if since >= now:
        raise InvalidTransition(_("The replay must start in the past."))
    ReplayJob.objects.filter(
        assistant=assistant,
        status__in=[ReplayJob.Status.QUEUED, ReplayJob.Status.RUNNING],
        updated_at__lt=now - REPLAY_STALE_AFTER,
    ).update(
        status=ReplayJob.Status.FAILED,
        error=_("Stopped without finishing."),
        finished_at=now,
        updated_at=now,
    )
    try:
        with transaction.atomic():
            job = ReplayJob.objects.create(
                assistant=assistant,
                since=since,
                total=replay.conversations_to_replay(assistant, since).count(),
                requested_by=requested_by,
            )
    except IntegrityError:
        raise ReplayAlreadyRunning(
            _("A replay for %(name)s is already running.") % {"name": assistant.name}
        ) from None
    job_id = job.pk
    transaction.on_commit(lambda: _dispatch_replay(job_id), robust=True)
    return job


def _dispatch_replay(job_id: int) -> None:
    from .tasks import run_replay_job as task

    if task.app.conf.task_always_eager:
        # Eager Celery (make run) would run the whole replay inside the request that started it.
        import threading

        threading.Thread(
            target=_run_replay_in_thread, args=(job_id,), name=f"replay-{job_id}", daemon=True
        ).start()
    else:
        task.delay(job_id)


def _run_replay_in_thread(job_id: int) -> None:
    from django.db import connections

    try:
        run_replay_job(job_id=job_id)
    finally:
        connections.close_all()


def run_replay_job(*, job_id: int) -> ReplayJob | None:
    """Claim a queued job (a conditional UPDATE: one runner), replay its conversations in
    chunks and save the tally and progress after each, then mark it done (or failed, with the
    error). Returns None when another run has the job."""
    from . import replay

    claimed = ReplayJob.objects.filter(pk=job_id, status=ReplayJob.Status.QUEUED).update(
        status=ReplayJob.Status.RUNNING, updated_at=timezone.now()
    )
    if not claimed:
        return None
    job = ReplayJob.objects.select_related("assistant").get(pk=job_id)
    try:
        settings = replay.replay_settings(job.assistant)
        tally = replay.empty_tally()
        conversations = replay.conversations_to_replay(job.assistant, job.since).select_related(
            "channel"
        )
        after = 0
        while True:
            chunk = list(conversations.filter(id__gt=after)[:REPLAY_CHUNK])
            if not chunk:
                break
            for conversation in chunk:
                replay.add_outcome(tally, replay.replay_conversation(conversation, settings))
            after = chunk[-1].pk
            ReplayJob.objects.filter(pk=job_id).update(
                done=tally["conversations"],
                total=max(job.total, tally["conversations"]),
                result=tally,
                updated_at=timezone.now(),
            )
        tally["rate"] = replay.rate(tally["escalated"], tally["conversations"])
        tally["actual_escalated"] = replay.actual_escalations(job.assistant, job.since)
        tally["actual_rate"] = replay.rate(tally["actual_escalated"], tally["conversations"])
        ReplayJob.objects.filter(pk=job_id).update(
            status=ReplayJob.Status.DONE,
            done=tally["conversations"],
            total=tally["conversations"],
            result=tally,
            finished_at=timezone.now(),
            updated_at=timezone.now(),
        )
    except Exception as exc:  # the page must show an end, not poll forever
        logger.exception("replay job %s failed", job_id)
        ReplayJob.objects.filter(pk=job_id).update(
            status=ReplayJob.Status.FAILED,
            error=f"{type(exc).__name__}: {exc}"[:500],
            finished_at=timezone.now(),
            updated_at=timezone.now(),
        )
    return ReplayJob.objects.get(pk=job_id)
