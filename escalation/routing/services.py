"""Routing's state changes: pushing escalations to agents (offers and direct assignments),
accepting, declining and expiring offers, ageing priorities, SLA breaches, follow-up emails,
and the routing settings themselves.

Capacity and exclusivity hold by construction:
- every push locks the agent's ``AgentProfile`` row, counts their load (escalations they hold
  plus offers waiting for them) under that lock, and gives work only below ``capacity``: two
  pushes to one agent are serialised, and the second sees the first's work;
- the escalation moves with a conditional ``UPDATE ... WHERE status='queued' AND offered_to IS
  NULL`` (an offer) or the take-over's ``WHERE status='queued'`` (an assignment): one agent at
  most, whatever runs at the same time.
Lock order: agent profile → conversation → escalation → ticket (the escalation services' order
with the agent in front). Nothing here locks an agent while holding a conversation.
"""

from __future__ import annotations

import enum
import functools
import re
from datetime import timedelta

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.db.models import Max, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from crm import customer_texts, realtime
from crm import services as crm_services
from crm.models import AgentProfile, Team, agent_name
from integrations.payloads import emit_escalation_event
from tickets import services as ticket_services

from .. import services as escalation_services
from ..models import Escalation, EscalationEvent, Priority
from . import alerts, clocks, selectors
from .errors import OfferNotYours
from .models import AgentRoutingState, RoutingRule, RoutingSettings, TeamRouting
from .validation import agent_capacity_errors, rule_errors, team_routing_errors

Status = Escalation.Status
_event = escalation_services._event


class Outcome(enum.Enum):
    GIVEN = "given"  # offered or assigned to the agent
    AGENT_FULL = "agent_full"  # the agent is at capacity, offline or gone: try another
    ESCALATION_GONE = "escalation_gone"  # taken, offered or closed meanwhile: stop


def _lock_agent(user_id: int) -> AgentProfile | None:
    return (
        AgentProfile.objects.select_for_update(of=("self",))
        .select_related("user")
        .filter(user_id=user_id)
        .first()
    )


def _routing_of(escalation: Escalation) -> TeamRouting | None:
    if not escalation.team_id:
        return None
    return TeamRouting.objects.filter(team_id=escalation.team_id).first()


def _give(*, escalation_id: int, user_id: int) -> Outcome:
    """Offer or assign one escalation to one agent, in one transaction, under the agent's row
    lock and then the escalation's."""
    with transaction.atomic():
        profile = _lock_agent(user_id)
        if (
            profile is None
            or not profile.user.is_active
            or profile.availability != AgentProfile.Availability.ONLINE
            or selectors.agent_load(user_id) >= profile.capacity
        ):
            return Outcome.AGENT_FULL
        escalation = escalation_services._locked(escalation_id)
        routing = _routing_of(escalation)
        if (
            escalation.status != Status.QUEUED
            or escalation.offered_to_id is not None
            or routing is None
            or not routing.is_automatic
        ):
            return Outcome.ESCALATION_GONE
        if not profile.teams.filter(pk=escalation.team_id).exists():
            return Outcome.AGENT_FULL
        now = timezone.now()
        AgentRoutingState.objects.update_or_create(
            user_id=user_id, defaults={"last_routed_at": now}
        )
        if routing.offer_first:
            _offer(escalation, profile, routing, now)
        else:
            _assign(escalation, profile)
        return Outcome.GIVEN


def _offer(escalation: Escalation, profile: AgentProfile, routing: TeamRouting, now) -> None:
    expires = now + timedelta(seconds=routing.accept_timeout_seconds)
    offered = Escalation.objects.filter(
        pk=escalation.pk, status=Status.QUEUED, offered_to__isnull=True
    ).update(offered_to=profile.user, offer_expires_at=expires)
    if not offered:  # cannot happen under the lock; kept as the construction's guarantee
        return
    escalation.offered_to = profile.user
    escalation.offer_expires_at = expires
    _event(
        escalation,
        EscalationEvent.Kind.OFFERED,
        new=agent_name(profile.user),
        note=_("Accept within %(seconds)d s") % {"seconds": routing.accept_timeout_seconds},
    )
    number = escalation.events.filter(kind=EscalationEvent.Kind.OFFERED).count()
    # The agent's socket hears of it as a notification (with offer_expires_at in its details),
    # and every queue re-reads its rows.
    alerts.notify_agent_of_offer(escalation=escalation, profile=profile, number=number)
    realtime.publish_queue_event("updated", escalation.pk)
    emit_escalation_event("escalation.offered", escalation)


def _assign(escalation: Escalation, profile: AgentProfile) -> None:
    escalation_services.claim_escalation(
        escalation_id=escalation.pk,
        agent=profile.user,
        kind=EscalationEvent.Kind.ASSIGNED,
        actor=None,
        note=_("Assigned automatically"),
    )
    escalation.refresh_from_db()
    number = escalation.events.filter(kind=EscalationEvent.Kind.ASSIGNED).count()
    alerts.notify_agent_of_assignment(escalation=escalation, profile=profile, number=number)
    realtime.publish_to_agent(
        profile.user_id,
        {
            "type": "assignment.created",
            "escalation": escalation.pk,
            "conversation": escalation.conversation_id,
        },
    )
    emit_escalation_event("escalation.assigned", escalation)


def route_escalation(*, escalation_id: int) -> Outcome | None:
    """Push a queued escalation of an automatic, open team to its best agent (see
    ``selectors.candidate_agents``). Returns the outcome, or None when there is nothing to do
    (manual team, after hours, already offered, nobody free)."""
    escalation = Escalation.objects.filter(pk=escalation_id).first()
    if escalation is None or escalation.status != Status.QUEUED or escalation.offered_to_id:
        return None
    routing = _routing_of(escalation)
    if routing is None or not routing.is_automatic:
        return None
    if clocks.reopens_at(escalation.team_id) is not None:
        return None  # after hours: the sweep routes it when the team opens
    for profile in selectors.candidate_agents(escalation=escalation, strategy=routing.strategy):
        outcome = _give(escalation_id=escalation_id, user_id=profile.user_id)
        if outcome != Outcome.AGENT_FULL:
            return outcome
    return None


def fill_agent_slots(*, user_id: int) -> int:
    """An agent freed a slot or came online: give them the highest-priority, longest-waiting
    escalations of their automatic, open teams until they are full. Returns how many."""
    profile = AgentProfile.objects.filter(user_id=user_id).first()
    if profile is None or profile.availability != AgentProfile.Availability.ONLINE:
        return 0
    given = 0
    closed_teams: set[int] = set()
    for escalation_id, team_id in selectors.next_escalations_for(profile):
        if team_id in closed_teams or clocks.reopens_at(team_id) is not None:
            closed_teams.add(team_id)
            continue
        outcome = _give(escalation_id=escalation_id, user_id=user_id)
        if outcome == Outcome.GIVEN:
            given += 1
        elif outcome == Outcome.AGENT_FULL:
            break
    return given


@transaction.atomic
def accept_offer(*, escalation_id: int, agent) -> Escalation:
    """The offered agent accepts: the escalation is theirs (the take-over, with its messages to
    the customer). Refused once the offer went to someone else or its time is up, even before
    the sweep (every 5 s) has moved it on: the agent's countdown said it was over."""
    escalation = escalation_services._locked(escalation_id)
    expires_at = escalation.offer_expires_at
    if (
        escalation.status != Status.QUEUED
        or escalation.offered_to_id != agent.pk
        or (expires_at is not None and expires_at <= timezone.now())
    ):
        raise OfferNotYours(_("This offer is no longer yours: it expired or moved on."))
    escalation = escalation_services.claim_escalation(
        escalation_id=escalation_id,
        agent=agent,
        kind=EscalationEvent.Kind.CLAIMED,
        actor=agent,
        note=_("Accepted the offer"),
    )
    AgentRoutingState.objects.update_or_create(user_id=agent.pk, defaults={"missed_offers": 0})
    emit_escalation_event("escalation.assigned", escalation)
    return escalation


def decline_offer(*, escalation_id: int, agent) -> Escalation:
    """The offered agent passes: the offer moves to the next agent (after commit). Refused past
    the timeout, as accepting is: the sweep then counts it as missed, which a decline is not."""
    with transaction.atomic():
        _lock_agent(agent.pk)
        escalation = escalation_services._locked(escalation_id)
        cleared = (
            Escalation.objects.filter(pk=escalation_id, status=Status.QUEUED, offered_to=agent)
            .exclude(offer_expires_at__lte=timezone.now())
            .update(offered_to=None, offer_expires_at=None)
        )
        if not cleared:
            raise OfferNotYours(_("This offer is no longer yours: it expired or moved on."))
        escalation.offered_to = None
        _event(escalation, EscalationEvent.Kind.OFFER_DECLINED, actor=agent, old=agent_name(agent))
        realtime.publish_queue_event("updated", escalation.pk)
        _route_after_commit(escalation_id)
    return escalation


def expire_offer(*, escalation_id: int, now=None) -> bool:
    """An offer past its accept timeout moves on: the agent's missed offers in a row go up,
    and at the team's limit the agent is set away and told why. Decided under the agent's and
    the escalation's locks; False when the offer was already answered or moved."""
    now = now or timezone.now()
    user_id = (
        Escalation.objects.filter(pk=escalation_id).values_list("offered_to_id", flat=True).first()
    )
    if user_id is None:
        return False
    with transaction.atomic():
        profile = _lock_agent(user_id)
        escalation = escalation_services._locked(escalation_id)
        cleared = Escalation.objects.filter(
            pk=escalation_id,
            status=Status.QUEUED,
            offered_to_id=user_id,
            offer_expires_at__lte=now,
        ).update(offered_to=None, offer_expires_at=None)
        if not cleared:
            return False
        escalation.offered_to = None
        name = agent_name(profile.user) if profile else ""
        _event(
            escalation,
            EscalationEvent.Kind.OFFER_EXPIRED,
            actor=profile.user if profile else None,
            old=name,
            note=_("Not accepted in time"),
        )
        emit_escalation_event("escalation.offer_expired", escalation)
        realtime.publish_queue_event("updated", escalation.pk)
        if profile is not None:
            _count_missed_offer(profile, escalation)
        _route_after_commit(escalation_id)
    return True


def _count_missed_offer(profile: AgentProfile, escalation: Escalation) -> None:
    state, _created = AgentRoutingState.objects.select_for_update().get_or_create(
        user_id=profile.user_id
    )
    state.missed_offers += 1
    routing = _routing_of(escalation)
    limit = routing.max_missed_offers if routing else 3
    if state.missed_offers >= limit and profile.availability == AgentProfile.Availability.ONLINE:
        missed = state.missed_offers
        state.missed_offers = 0
        crm_services.set_agent_availability(
            user=profile.user, availability=AgentProfile.Availability.AWAY
        )
        number = escalation.events.filter(kind=EscalationEvent.Kind.OFFER_EXPIRED).count()
        alerts.notify_agent_set_away(
            escalation=escalation, profile=profile, missed=missed, number=number
        )
    state.save(update_fields=["missed_offers"])


def _route_after_commit(escalation_id: int) -> None:
    from .tasks import route_escalation_task

    transaction.on_commit(lambda: route_escalation_task.delay(escalation_id), robust=True)


# --- Priority that ages -------------------------------------------------------------------


def raise_priority(escalation: Escalation, *, new_priority: Priority, cause: str, now=None) -> None:
    """Inside the caller's transaction, with the escalation locked: the new priority, the
    ticket's, a re-computed SLA due time (not once breached), an AGED event with its cause,
    and the queue re-sorted live."""
    now = now or timezone.now()
    old = Priority(escalation.priority)
    escalation.priority = new_priority
    escalation.priority_changed_at = now
    fields = ["priority", "priority_changed_at"]
    if escalation.sla_breached_at is None:
        escalation.sla_due_at = clocks.sla_due_at(escalation)
        fields.append("sla_due_at")
    escalation.save(update_fields=fields)
    ticket_services.set_ticket_priority(ticket=escalation.ticket, priority=new_priority)
    _event(escalation, EscalationEvent.Kind.AGED, old=old.code, new=new_priority.code, note=cause)
    realtime.publish_queue_event("updated", escalation.pk)


@transaction.atomic
def age_escalation(*, escalation_id: int, now=None) -> bool:
    """Raise a queued escalation one level when it has waited its level's ageing time."""
    now = now or timezone.now()
    escalation = escalation_services._locked(escalation_id)
    if escalation.status != Status.QUEUED or escalation.priority >= Priority.URGENT:
        return False
    code = Priority(escalation.priority).code
    seconds = (RoutingSettings.load().ageing_seconds or {}).get(code)
    since = escalation.priority_changed_at or escalation.escalated_at
    if not seconds or (now - since).total_seconds() < seconds:
        return False
    raise_priority(
        escalation,
        new_priority=Priority(escalation.priority).raised(),
        cause=_("Waited %(minutes)d min at %(priority)s priority")
        % {"minutes": max(1, seconds // 60), "priority": code},
        now=now,
    )
    return True


@transaction.atomic
def raise_priority_on_worse_sentiment(*, conversation_id: int, intensity: float) -> bool:
    """A waiting customer's anger rose by the configured step since the escalation (or the
    last such raise): one level up at once, the cause in the history."""
    escalation_id = (
        Escalation.objects.filter(conversation_id=conversation_id, status=Status.QUEUED)
        .values_list("id", flat=True)
        .first()
    )
    if escalation_id is None:
        return False
    escalation = escalation_services._locked(escalation_id)
    if escalation.status != Status.QUEUED:
        return False
    baseline = escalation.wait_sentiment or 0.0
    step = RoutingSettings.load().sentiment_raise_step
    if intensity < baseline + step:
        return False
    escalation.wait_sentiment = intensity
    escalation.save(update_fields=["wait_sentiment"])
    if escalation.priority >= Priority.URGENT:
        return False
    raise_priority(
        escalation,
        new_priority=Priority(escalation.priority).raised(),
        cause=_("Customer more upset while waiting (intensity %(old).2f → %(new).2f)")
        % {"old": baseline, "new": intensity},
    )
    return True


# --- SLA -----------------------------------------------------------------------------------


@transaction.atomic
def mark_sla_breach(*, escalation_id: int, now=None) -> bool:
    """A queued escalation past its SLA due time: recorded once, managers alerted, webhook."""
    now = now or timezone.now()
    escalation = escalation_services._locked(escalation_id)
    marked = Escalation.objects.filter(
        pk=escalation_id, status=Status.QUEUED, sla_breached_at__isnull=True, sla_due_at__lte=now
    ).update(sla_breached_at=now)
    if not marked:
        return False
    escalation.sla_breached_at = now
    _event(
        escalation,
        EscalationEvent.Kind.SLA_BREACHED,
        new=Priority(escalation.priority).code,
        note=_("Not picked up by %(due)s") % {"due": escalation.sla_due_at.isoformat()},
    )
    alerts.notify_managers_of_sla_breach(escalation=escalation)
    emit_escalation_event("escalation.sla_breached", escalation)
    realtime.publish_queue_event("updated", escalation.pk)
    return True


# --- Messages: follow-up emails after hours, the first agent reply --------------------------

EMAIL_IN_TEXT = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")


def record_follow_up_email(*, message) -> None:
    """Listener of ``crm.hooks.message_stored``: a customer waiting after hours who types an
    email address leaves it for follow-up (stored on the escalation, and on the contact when
    it has none); the ticket stays open. Inside the message's transaction."""
    if message.sender != message.Sender.CUSTOMER:
        return
    # The text first: most messages hold no address, and need no query on every store.
    address = next((m for m in EMAIL_IN_TEXT.findall(message.text) if _is_email(m)), None)
    if address is None:
        return
    escalation = Escalation.objects.filter(
        conversation_id=message.conversation_id,
        status=Status.QUEUED,
        after_hours_until__isnull=False,
        follow_up_email="",
    ).first()
    if escalation is None:
        return
    updated = Escalation.objects.filter(pk=escalation.pk, follow_up_email="").update(
        follow_up_email=address
    )
    if not updated:
        return
    _event(escalation, EscalationEvent.Kind.FOLLOW_UP, new=address)
    contact = message.conversation.contact
    if not contact.email:
        contact.email = address
        contact.save(update_fields=["email"])
    crm_services.post_system_message(
        conversation=message.conversation,
        text=customer_texts.render("follow_up_email", escalation.language, email=address),
    )
    realtime.publish_queue_event("updated", escalation.pk)


def _is_email(text: str) -> bool:
    try:
        validate_email(text)
    except ValidationError:
        return False
    return True


def record_first_reply(*, message) -> None:
    """Listener of ``crm.hooks.agent_replied``: the first reply of the agent holding the
    escalation after the takeover (the takeover greeting is not a reply)."""
    Escalation.objects.filter(
        conversation_id=message.conversation_id,
        status__in=(Status.CLAIMED, Status.RESOLVED),
        claimed_by_id=message.author_id,
        first_reply_at__isnull=True,
    ).update(first_reply_at=message.created_at)


# --- Settings ------------------------------------------------------------------------------

TEAM_FIELDS = (
    "mode",
    "strategy",
    "offer_first",
    "accept_timeout_seconds",
    "max_missed_offers",
    "time_zone",
    "weekly_hours",
    "holidays",
    "sla_targets",
)


# What a waiting escalation's clocks (its reopening, its SLA due time) are computed from.
CLOCK_FIELDS = ("time_zone", "weekly_hours", "holidays", "sla_targets")


@transaction.atomic
def update_team_routing(*, team: Team, **changes) -> TeamRouting:
    """Change a team's routing (any of TEAM_FIELDS). Raises ValidationError naming each bad
    field (overlapping hours, unknown time zone, automatic with no capacity...). A team that
    becomes automatic routes its waiting escalations after commit; new hours, holidays, time
    zone or targets re-set the clocks of its waiting escalations (``reset_waiting_clocks``)."""
    unknown = set(changes) - set(TEAM_FIELDS)
    if unknown:
        raise ValidationError({name: [_("Not a routing setting.")] for name in unknown})
    routing, _created = TeamRouting.objects.select_for_update().get_or_create(team=team)
    was_automatic = routing.is_automatic
    clocks_before = [getattr(routing, name) for name in CLOCK_FIELDS]
    for name, value in changes.items():
        setattr(routing, name, value)
    errors = team_routing_errors(routing)
    if errors:
        raise ValidationError(errors)
    routing.save()
    if [getattr(routing, name) for name in CLOCK_FIELDS] != clocks_before:
        reset_waiting_clocks(team_id=team.pk)
    if routing.is_automatic and not was_automatic:
        transaction.on_commit(_sweep_after_commit, robust=True)
    return routing


def reset_waiting_clocks(*, team_id: int | None, now=None) -> int:
    """Inside the caller's transaction, after the team's hours or targets changed (None: the
    escalations of no team, after the default targets changed): its queued escalations read
    their clocks again, as escalating now would. One escalated after hours reopens at the
    team's next opening (now, if the team is open now and its reopening was still ahead); one
    not yet breached falls due at its target counted in the new open hours. Locks the rows (id
    order), so an ageing or a take-over waits and then sees the new values. Returns how many
    changed; the queue updates live."""
    now = now or timezone.now()
    clock = clocks.TeamClock(team_id, load_settings=functools.cache(RoutingSettings.load))
    opens = clock.reopens_at(now)  # None: open now
    waiting = (
        Escalation.objects.select_for_update(of=("self",))
        .filter(team_id=team_id, status=Status.QUEUED)
        .filter(Q(after_hours_until__isnull=False) | Q(sla_breached_at__isnull=True))
        .order_by("id")
    )
    changed = 0
    for escalation in waiting:
        fields = []
        if escalation.after_hours_until is not None:
            # Open now: a reopening still ahead is now; one already past stays as it was.
            reopens = opens if opens is not None else min(escalation.after_hours_until, now)
            if reopens != escalation.after_hours_until:
                escalation.after_hours_until = reopens
                fields.append("after_hours_until")
        if escalation.sla_breached_at is None:
            due = clock.sla_due_at(escalation)
            if due != escalation.sla_due_at:
                escalation.sla_due_at = due
                fields.append("sla_due_at")
        if fields:
            escalation.save(update_fields=fields)
            realtime.publish_queue_event("updated", escalation.pk)
            changed += 1
    return changed


def _sweep_after_commit() -> None:
    from .tasks import route_waiting_escalations

    route_waiting_escalations.delay()


@transaction.atomic
def update_agent_routing(
    *, profile: AgentProfile, availability=None, capacity=None, team_ids=None
) -> AgentProfile:
    """A manager changes an agent's availability, capacity or teams. Capacity 0 in an
    automatic team is refused (ValidationError). More room, or coming online, fills the
    agent's slots after commit."""
    profile = AgentProfile.objects.select_for_update(of=("self",)).get(pk=profile.pk)
    new_capacity = profile.capacity if capacity is None else capacity
    teams = list(profile.teams.values_list("pk", flat=True)) if team_ids is None else team_ids
    errors = agent_capacity_errors(capacity=new_capacity, team_ids=teams)
    if availability is not None and availability not in AgentProfile.Availability.values:
        errors["availability"] = [_("Unknown availability %(v)r.") % {"v": availability}]
    if team_ids is not None:
        missing = set(team_ids) - set(
            Team.objects.filter(pk__in=team_ids).values_list("pk", flat=True)
        )
        if missing:
            errors["teams"] = [
                _("No team with id %(ids)s.") % {"ids": ", ".join(map(str, sorted(missing)))}
            ]
    if errors:
        raise ValidationError(errors)
    if capacity is not None and capacity != profile.capacity:
        profile.capacity = capacity
        profile.save(update_fields=["capacity"])
    if team_ids is not None:
        profile.teams.set(team_ids)
    if availability is not None and availability != profile.availability:
        crm_services.set_agent_availability(user=profile.user, availability=availability)
        profile.refresh_from_db(fields=["availability"])
    schedule_fill(profile.user_id)
    return profile


def schedule_fill(user_id: int) -> None:
    """After commit, give the agent work if they have room (a task: never inside a request)."""
    from .tasks import fill_agent_slots_task

    transaction.on_commit(lambda: fill_agent_slots_task.delay(user_id), robust=True)


def on_availability_changed(*, profile) -> None:
    """Listener of ``crm.hooks.agent_availability_changed``: online means room for work."""
    if profile.availability == AgentProfile.Availability.ONLINE:
        schedule_fill(profile.user_id)


@transaction.atomic
def save_rule(*, rule: RoutingRule | None = None, **fields) -> RoutingRule:
    """Create or change a routing rule; a new rule goes last. ValidationError on bad fields
    (unknown codes, a team that does not exist)."""
    rule = rule or RoutingRule(
        position=(RoutingRule.objects.aggregate(m=Max("position"))["m"] or 0) + 1
    )
    for name, value in fields.items():
        setattr(rule, name, value)
    errors = rule_errors(rule)
    if errors:
        raise ValidationError(errors)
    rule.save()
    return rule


@transaction.atomic
def move_rule(*, rule: RoutingRule, up: bool) -> None:
    """Swap the rule with its neighbour (rules are tried in order)."""
    rules = list(RoutingRule.objects.select_for_update().order_by("position", "id"))
    index = next(i for i, r in enumerate(rules) if r.pk == rule.pk)
    other = index - 1 if up else index + 1
    if not 0 <= other < len(rules):
        return
    rules[index], rules[other] = rules[other], rules[index]
    for position, each in enumerate(rules, start=1):
        if each.position != position:
            RoutingRule.objects.filter(pk=each.pk).update(position=position)


@transaction.atomic
def delete_rule(*, rule: RoutingRule) -> None:
    rule.delete()


@transaction.atomic
def update_routing_settings(**fields) -> RoutingSettings:
    """The default team, default SLA targets, ageing schedule and sentiment step. New default
    targets re-set the due times of every waiting escalation (``reset_waiting_clocks``, team by
    team: those whose team sets its own target keep theirs)."""
    settings_row = RoutingSettings.objects.select_for_update().get(pk=RoutingSettings.load().pk)
    targets_before = settings_row.sla_targets
    for name, value in fields.items():
        setattr(settings_row, name, value)
    settings_row.full_clean()
    settings_row.save()
    if settings_row.sla_targets != targets_before:
        waiting_teams = (
            Escalation.objects.filter(status=Status.QUEUED)
            .values_list("team_id", flat=True)
            .distinct()
            .order_by("team_id")
        )
        for team_id in list(waiting_teams):
            reset_waiting_clocks(team_id=team_id)
    return settings_row
