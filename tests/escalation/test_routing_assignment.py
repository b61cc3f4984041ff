"""Automatic teams: offers, acceptance, timeouts, direct assignment, capacity, freed slots."""

from datetime import timedelta

import pytest
from django.utils import timezone

from crm import services as crm_services
from crm.models import AgentProfile, Conversation, Message
from escalation import services
from escalation.models import Escalation, EscalationEvent, Priority, TeamRouting
from escalation.routing import services as routing
from escalation.routing.errors import OfferNotYours
from integrations.models import WebhookDelivery, WebhookSubscription
from notifications.models import Notification
from tests.factories import AgentFactory, ConversationFactory

from .routing_helpers import (
    automatic_team,
    availability_of,
    conversation_for,
    escalate,
    load_of,
    team_agents,
)

pytestmark = pytest.mark.django_db
Kind = EscalationEvent.Kind
Status = Escalation.Status


def test_an_escalation_of_an_automatic_team_is_offered_after_commit(
    django_capture_on_commit_callbacks,
):
    team = automatic_team(accept_timeout_seconds=30)
    (marina,) = team_agents(team, 1)
    with django_capture_on_commit_callbacks(execute=True):
        escalation = escalate(conversation_for(team))

    escalation.refresh_from_db()
    assert escalation.status == Status.QUEUED
    assert escalation.offered_to == marina
    remaining = (escalation.offer_expires_at - timezone.now()).total_seconds()
    assert 25 < remaining <= 30
    assert escalation.events.filter(kind=Kind.OFFERED).count() == 1
    offer = Notification.objects.get(recipient=marina, kind=Notification.Kind.OFFERED)
    assert not offer.email_requested  # an offer that lasts seconds is no use in an inbox
    assert "accept within 30 s" in offer.text


def test_a_manual_team_is_never_pushed(django_capture_on_commit_callbacks):
    team = automatic_team()
    TeamRouting.objects.filter(team=team).update(mode=TeamRouting.Mode.MANUAL)
    team_agents(team, 2)
    with django_capture_on_commit_callbacks(execute=True):
        escalation = escalate(conversation_for(team))
    escalation.refresh_from_db()
    assert escalation.offered_to is None and escalation.claimed_by is None
    assert not escalation.events.filter(kind__in=[Kind.OFFERED, Kind.ASSIGNED]).exists()


def test_accepting_an_offer_takes_the_conversation_over():
    team = automatic_team()
    (marina,) = team_agents(team, 1)
    escalation = escalate(conversation_for(team))
    assert routing.route_escalation(escalation_id=escalation.pk) == routing.Outcome.GIVEN

    routing.accept_offer(escalation_id=escalation.pk, agent=marina)

    escalation.refresh_from_db()
    assert (escalation.status, escalation.claimed_by, escalation.offered_to) == (
        Status.CLAIMED,
        marina,
        None,
    )
    assert escalation.conversation.mode == Conversation.Mode.AGENT
    assert escalation.conversation.messages.filter(
        sender=Message.Sender.SYSTEM, text__startswith="Now speaking with"
    ).exists()
    assert load_of(marina) == 1


def test_only_the_offered_agent_can_accept():
    team = automatic_team()
    marina, alex = team_agents(team, 2)
    escalation = escalate(conversation_for(team))
    routing.route_escalation(escalation_id=escalation.pk)
    escalation.refresh_from_db()
    other = alex if escalation.offered_to == marina else marina
    with pytest.raises(OfferNotYours):
        routing.accept_offer(escalation_id=escalation.pk, agent=other)


@pytest.mark.parametrize("answer", ["accept_offer", "decline_offer"])
def test_an_offer_past_its_timeout_cannot_be_answered_before_the_sweep_moves_it(answer):
    """The sweep runs every 5 s; between the timeout and the sweep the offer still stands in the
    row, but the agent's countdown has ended: accepting or declining then is refused, and the
    sweep moves the offer on and counts it as missed (a decline would not have counted)."""
    from escalation.routing.models import AgentRoutingState

    team = automatic_team(accept_timeout_seconds=30)
    (marina,) = team_agents(team, 1)
    escalation = escalate(conversation_for(team))
    routing.route_escalation(escalation_id=escalation.pk)
    Escalation.objects.filter(pk=escalation.pk).update(
        offer_expires_at=timezone.now() - timedelta(seconds=2)
    )

    with pytest.raises(OfferNotYours):
        getattr(routing, answer)(escalation_id=escalation.pk, agent=marina)

    escalation.refresh_from_db()
    assert escalation.status == Status.QUEUED and escalation.offered_to == marina
    assert routing.expire_offer(escalation_id=escalation.pk) is True
    assert AgentRoutingState.objects.get(user=marina).missed_offers == 1


def test_an_expired_offer_moves_to_the_next_agent(django_capture_on_commit_callbacks):
    team = automatic_team(accept_timeout_seconds=30, strategy="round_robin")
    marina, alex = team_agents(team, 2)
    escalation = escalate(conversation_for(team))
    routing.route_escalation(escalation_id=escalation.pk)
    escalation.refresh_from_db()
    first = escalation.offered_to

    later = timezone.now() + timedelta(seconds=31)
    with django_capture_on_commit_callbacks(execute=True):
        assert routing.expire_offer(escalation_id=escalation.pk, now=later)

    escalation.refresh_from_db()
    second = alex if first == marina else marina
    assert escalation.offered_to == second
    assert list(escalation.events.values_list("kind", flat=True)).count(Kind.OFFER_EXPIRED) == 1
    expired = escalation.events.get(kind=Kind.OFFER_EXPIRED)
    assert expired.actor == first


def test_an_offer_not_yet_due_does_not_expire():
    team = automatic_team(accept_timeout_seconds=30)
    team_agents(team, 1)
    escalation = escalate(conversation_for(team))
    routing.route_escalation(escalation_id=escalation.pk)
    assert not routing.expire_offer(escalation_id=escalation.pk, now=timezone.now())


def test_missing_offers_in_a_row_sets_the_agent_away_and_says_why():
    team = automatic_team(accept_timeout_seconds=10, max_missed_offers=2)
    (marina,) = team_agents(team, 1)
    for _ in range(2):
        escalation = escalate(conversation_for(team))
        routing.route_escalation(escalation_id=escalation.pk)
        routing.expire_offer(
            escalation_id=escalation.pk, now=timezone.now() + timedelta(seconds=11)
        )

    assert availability_of(marina) == AgentProfile.Availability.AWAY
    told = Notification.objects.get(recipient=marina, kind=Notification.Kind.SET_AWAY)
    assert "missing 2 offers in a row" in told.text


def test_accepting_resets_the_missed_count():
    team = automatic_team(accept_timeout_seconds=10, max_missed_offers=2)
    (marina,) = team_agents(team, 1, capacity=5)
    first = escalate(conversation_for(team))
    routing.route_escalation(escalation_id=first.pk)
    routing.expire_offer(escalation_id=first.pk, now=timezone.now() + timedelta(seconds=11))
    routing.route_escalation(escalation_id=first.pk)
    routing.accept_offer(escalation_id=first.pk, agent=marina)
    second = escalate(conversation_for(team))
    routing.route_escalation(escalation_id=second.pk)
    routing.expire_offer(escalation_id=second.pk, now=timezone.now() + timedelta(seconds=11))
    assert availability_of(marina) == AgentProfile.Availability.ONLINE


def test_declining_moves_the_offer_on(django_capture_on_commit_callbacks):
    team = automatic_team()
    marina, alex = team_agents(team, 2)
    escalation = escalate(conversation_for(team))
    routing.route_escalation(escalation_id=escalation.pk)
    escalation.refresh_from_db()
    first = escalation.offered_to
    with django_capture_on_commit_callbacks(execute=True):
        routing.decline_offer(escalation_id=escalation.pk, agent=first)
    escalation.refresh_from_db()
    assert escalation.offered_to not in (None, first)


def test_direct_assignment_claims_at_once_and_tells_the_agent():
    WebhookSubscription.objects.create(
        url="https://hooks.example/x", events=["escalation.offered", "escalation.assigned"]
    )
    team = automatic_team(offer_first=False)
    (marina,) = team_agents(team, 1)
    escalation = escalate(conversation_for(team))
    routing.route_escalation(escalation_id=escalation.pk)
    escalation.refresh_from_db()
    assert (escalation.status, escalation.claimed_by) == (Status.CLAIMED, marina)
    assigned = escalation.events.get(kind=Kind.ASSIGNED)
    assert assigned.actor is None
    assert Notification.objects.filter(recipient=marina, kind=Notification.Kind.ASSIGNED).exists()
    delivered = WebhookDelivery.objects.values_list("event", "payload")
    assert [event for event, _payload in delivered] == ["escalation.assigned"]
    assert delivered[0][1]["escalation"]["assigned_to"]["id"] == marina.pk


def test_no_agent_gets_more_than_capacity():
    team = automatic_team(offer_first=False, strategy="least_busy")
    marina, alex = team_agents(team, 2, capacity=2)
    escalations = [escalate(conversation_for(team)) for _ in range(6)]
    for escalation in escalations:
        routing.route_escalation(escalation_id=escalation.pk)
    assert load_of(marina) == 2 and load_of(alex) == 2
    left = Escalation.objects.filter(pk__in=[e.pk for e in escalations], status=Status.QUEUED)
    assert left.count() == 2


def test_least_busy_prefers_the_agent_with_fewer_conversations():
    team = automatic_team(offer_first=False, strategy="least_busy")
    busy, idle = team_agents(team, 2, capacity=5)
    for _ in range(2):
        services.take_over_escalation(escalation_id=escalate(conversation_for(team)).pk, agent=busy)
    escalation = escalate(conversation_for(team))
    routing.route_escalation(escalation_id=escalation.pk)
    escalation.refresh_from_db()
    assert escalation.claimed_by == idle


def test_round_robin_takes_turns():
    team = automatic_team(offer_first=False, strategy="round_robin")
    agents = team_agents(team, 3, capacity=5)
    owners = []
    for _ in range(6):
        escalation = escalate(conversation_for(team))
        routing.route_escalation(escalation_id=escalation.pk)
        escalation.refresh_from_db()
        owners.append(escalation.claimed_by)
    assert owners[:3] == owners[3:]
    assert set(owners) == set(agents)


def test_offline_agents_and_other_teams_get_nothing():
    team = automatic_team(offer_first=False)
    AgentFactory(teams=[team], availability=AgentProfile.Availability.AWAY)
    AgentFactory(teams=[automatic_team(name="Billing")])
    escalation = escalate(conversation_for(team))
    assert routing.route_escalation(escalation_id=escalation.pk) is None


def test_a_freed_slot_gets_the_most_urgent_then_longest_waiting(
    django_capture_on_commit_callbacks,
):
    team = automatic_team(offer_first=False)
    (marina,) = team_agents(team, 1, capacity=1)
    held = escalate(conversation_for(team))
    routing.route_escalation(escalation_id=held.pk)
    old_normal = escalate(conversation_for(team), priority=Priority.NORMAL)
    urgent = escalate(conversation_for(team), priority=Priority.URGENT)
    escalate(conversation_for(team), priority=Priority.URGENT)  # later, same priority

    with django_capture_on_commit_callbacks(execute=True):
        services.resolve_escalation(escalation_id=held.pk, agent=marina)

    urgent.refresh_from_db()
    old_normal.refresh_from_db()
    assert urgent.claimed_by == marina
    assert old_normal.status == Status.QUEUED
    assert load_of(marina) == 1


def test_coming_online_fills_the_agents_slots(django_capture_on_commit_callbacks):
    team = automatic_team(offer_first=False)
    (marina,) = team_agents(team, 1, capacity=2)
    crm_services.set_agent_availability(user=marina, availability="away")
    waiting = [escalate(conversation_for(team)) for _ in range(3)]
    with django_capture_on_commit_callbacks(execute=True):
        crm_services.set_agent_availability(user=marina, availability="online")
    assert load_of(marina) == 2
    assert Escalation.objects.filter(pk__in=[e.pk for e in waiting], claimed_by=marina).count() == 2


def test_a_take_over_by_hand_withdraws_a_pending_offer():
    team = automatic_team()
    (marina,) = team_agents(team, 1)
    alex = AgentFactory(display_name="Alex")
    escalation = escalate(conversation_for(team))
    routing.route_escalation(escalation_id=escalation.pk)
    services.take_over_escalation(escalation_id=escalation.pk, agent=alex)
    escalation.refresh_from_db()
    assert (escalation.claimed_by, escalation.offered_to) == (alex, None)
    with pytest.raises(OfferNotYours):
        routing.accept_offer(escalation_id=escalation.pk, agent=marina)


def test_outbound_webhooks_for_offered_assigned_and_expired():
    WebhookSubscription.objects.create(
        url="https://hooks.example/x",
        events=["escalation.offered", "escalation.assigned", "escalation.offer_expired"],
    )
    team = automatic_team(accept_timeout_seconds=10)
    (marina,) = team_agents(team, 1)
    escalation = escalate(conversation_for(team))
    routing.route_escalation(escalation_id=escalation.pk)
    routing.expire_offer(escalation_id=escalation.pk, now=timezone.now() + timedelta(seconds=11))
    routing.route_escalation(escalation_id=escalation.pk)
    routing.accept_offer(escalation_id=escalation.pk, agent=marina)
    events = list(WebhookDelivery.objects.order_by("id").values_list("event", flat=True))
    assert events == [
        "escalation.offered",
        "escalation.offer_expired",
        "escalation.offered",
        "escalation.assigned",
    ]
    payload = WebhookDelivery.objects.filter(event="escalation.assigned").get().payload
    assert payload["escalation"]["assigned_to"]["id"] == marina.pk


def test_the_seed_pull_flow_is_unchanged_for_a_team_without_routing():
    conversation = ConversationFactory()
    escalation = escalate(conversation)
    agent = AgentFactory()
    assert routing.route_escalation(escalation_id=escalation.pk) is None
    services.take_over_escalation(escalation_id=escalation.pk, agent=agent)
    escalation.refresh_from_db()
    assert escalation.status == Status.CLAIMED
