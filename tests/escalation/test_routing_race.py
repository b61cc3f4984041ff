"""Routing races settled in PostgreSQL: real threads on their own connections, released at once.
Never above capacity, never one escalation with two agents."""

from collections import Counter
from datetime import timedelta

import pytest
from django.utils import timezone

from crm.models import AgentProfile
from escalation import services
from escalation.errors import AlreadyClaimed
from escalation.models import Escalation, EscalationEvent, TeamRouting
from escalation.routing import services as routing
from escalation.routing.errors import OfferNotYours
from tests.races import race

from .routing_helpers import automatic_team, conversation_for, escalate, team_agents

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
Status = Escalation.Status


def _waiting(team, count: int) -> list[Escalation]:
    """Escalations queued while the team is manual (so nothing routes them on commit), then
    the team turns automatic with a queryset update (no sweep): the race does the routing."""
    TeamRouting.objects.filter(team=team).update(mode=TeamRouting.Mode.MANUAL)
    escalations = [escalate(conversation_for(team)) for _ in range(count)]
    TeamRouting.objects.filter(team=team).update(mode=TeamRouting.Mode.AUTOMATIC)
    return escalations


def _assert_within_capacity_and_exclusive(agents, capacity):
    holders = Counter(
        Escalation.objects.filter(status=Status.CLAIMED).values_list("claimed_by", flat=True)
    )
    offers = Counter(
        Escalation.objects.filter(status=Status.QUEUED, offered_to__isnull=False).values_list(
            "offered_to", flat=True
        )
    )
    for agent in agents:
        assert holders[agent.pk] + offers[agent.pk] <= capacity, (agent, holders, offers)
    # One escalation, one agent: each claimed once, by one claim event or assignment.
    for escalation in Escalation.objects.filter(status=Status.CLAIMED):
        claims = escalation.events.filter(
            kind__in=[EscalationEvent.Kind.CLAIMED, EscalationEvent.Kind.ASSIGNED]
        )
        assert claims.count() == 1, escalation


@pytest.mark.parametrize("offer_first", [False, True])
def test_routing_twenty_escalations_at_once_never_exceeds_capacity(offer_first):
    team = automatic_team(offer_first=offer_first, strategy="least_busy")
    agents = team_agents(team, 4, capacity=3)
    escalations = _waiting(team, 20)

    outcomes = race(lambda i: routing.route_escalation(escalation_id=escalations[i].pk), 20)

    assert not [o for o in outcomes if isinstance(o, Exception)], outcomes
    given = [o for o in outcomes if o == routing.Outcome.GIVEN]
    assert len(given) == 12  # 4 agents × capacity 3, every slot filled, no more
    _assert_within_capacity_and_exclusive(agents, 3)


def test_many_agents_freed_at_once_never_share_an_escalation():
    team = automatic_team(offer_first=False)
    agents = team_agents(team, 12, capacity=2)
    escalations = _waiting(team, 10)

    outcomes = race(lambda i: routing.fill_agent_slots(user_id=agents[i].pk), 12)

    assert not [o for o in outcomes if isinstance(o, Exception)], outcomes
    assert sum(outcomes) == 10  # every escalation given exactly once
    assert (
        Escalation.objects.filter(pk__in=[e.pk for e in escalations], status=Status.CLAIMED).count()
        == 10
    )
    _assert_within_capacity_and_exclusive(agents, 2)


def test_pushes_and_freed_slots_racing_for_one_agent_stay_within_capacity():
    team = automatic_team(offer_first=False)
    (marina,) = team_agents(team, 1, capacity=2)
    escalations = _waiting(team, 8)

    def work(i):
        if i % 2:
            return routing.route_escalation(escalation_id=escalations[i].pk)
        return routing.fill_agent_slots(user_id=marina.pk)

    outcomes = race(work, 8)
    assert not [o for o in outcomes if isinstance(o, Exception)], outcomes
    _assert_within_capacity_and_exclusive([marina], 2)
    assert Escalation.objects.filter(claimed_by=marina).count() == 2


def test_accept_racing_the_timeout_has_one_outcome():
    team = automatic_team(accept_timeout_seconds=5)
    (marina,) = team_agents(team, 1)
    rounds = 6
    for _ in range(rounds):
        escalation = escalate(conversation_for(team))  # offered to Marina on commit
        escalation.refresh_from_db()
        assert escalation.offered_to == marina
        later = timezone.now() + timedelta(seconds=6)

        def work(i, escalation_id=escalation.pk, later=later):
            if i == 0:
                return routing.accept_offer(escalation_id=escalation_id, agent=marina)
            return routing.expire_offer(escalation_id=escalation_id, now=later)

        accepted, expired = race(work, 2)
        escalation.refresh_from_db()
        offers = escalation.events.filter(kind=EscalationEvent.Kind.OFFERED).count()
        expiries = escalation.events.filter(kind=EscalationEvent.Kind.OFFER_EXPIRED).count()
        if isinstance(accepted, Escalation):
            # The accept took the offer standing at that moment: the first one, or, when the
            # expiry won and the escalation went round again to Marina (the team's only agent),
            # the second. Either way each offer had one outcome.
            assert escalation.status == Status.CLAIMED
            assert (offers, expiries) == ((2, 1) if expired else (1, 0))
            services.resolve_escalation(escalation_id=escalation.pk, agent=marina)
        else:
            assert isinstance(accepted, OfferNotYours), accepted
            assert expired is True
            assert escalation.status == Status.QUEUED and escalation.claimed_by is None
            assert escalation.events.filter(kind=EscalationEvent.Kind.OFFER_EXPIRED).count() == 1
            services.cancel_escalation(escalation_id=escalation.pk)  # make room for the next
            AgentProfile.objects.filter(user=marina).update(availability="online")


def test_an_accept_racing_a_take_over_by_hand_leaves_one_agent():
    """The pull flow and the push flow at once: the offered agent accepts while a colleague
    clicks Take Over. One of them holds it, once; the other is told who won or that the offer
    moved on."""
    team = automatic_team()
    marina, alex = team_agents(team, 2, capacity=5)
    AgentProfile.objects.filter(user=alex).update(availability="away")  # offers go to Marina
    for _ in range(6):
        escalation = escalate(conversation_for(team))  # offered to Marina on commit
        escalation.refresh_from_db()
        assert escalation.offered_to == marina

        def work(i, escalation_id=escalation.pk):
            if i == 0:
                return routing.accept_offer(escalation_id=escalation_id, agent=marina)
            return services.take_over_escalation(escalation_id=escalation_id, agent=alex)

        accepted, taken = race(work, 2)
        escalation.refresh_from_db()
        assert escalation.status == Status.CLAIMED and escalation.offered_to is None
        claims = escalation.events.filter(kind=EscalationEvent.Kind.CLAIMED)
        assert claims.count() == 1
        if isinstance(accepted, Escalation):
            assert escalation.claimed_by == marina
            assert isinstance(taken, AlreadyClaimed), taken
        else:
            assert escalation.claimed_by == alex
            assert isinstance(accepted, OfferNotYours), accepted
            assert isinstance(taken, Escalation), taken
        services.resolve_escalation(escalation_id=escalation.pk, agent=escalation.claimed_by)


def test_new_hours_racing_priorities_that_age_leave_each_due_time_of_both():
    """A manager saves new hours while the ageing sweep raises the waiting escalations: each
    due time ends counted in the new hours at the raised priority, whichever committed first
    (both lock the escalation row before reading what they compute from)."""
    from escalation.models import Priority
    from escalation.routing.clocks import TeamClock
    from tests.factories import TeamFactory

    def weekday(offset):
        return (timezone.now() + timedelta(days=offset)).strftime("%a").lower()

    def hours(*offsets):
        return [{"day": weekday(o), "opens": "09:00", "closes": "17:00"} for o in offsets]

    for _round in range(3):
        team = TeamFactory()
        TeamRouting.objects.create(team=team, time_zone="UTC", weekly_hours=hours(3))
        waiting = [escalate(conversation_for(team), priority=Priority.LOW) for _ in range(6)]
        Escalation.objects.filter(team=team).update(
            priority_changed_at=timezone.now() - timedelta(hours=2)
        )

        def work(i, team=team, waiting=waiting):
            if i == 0:
                return routing.update_team_routing(team=team, weekly_hours=hours(1, 3))
            return routing.age_escalation(escalation_id=waiting[i - 1].pk)

        outcomes = race(work, len(waiting) + 1)

        assert not [o for o in outcomes if isinstance(o, Exception)], outcomes
        clock = TeamClock(team.pk)
        for escalation in Escalation.objects.filter(team=team):
            assert escalation.priority == Priority.NORMAL
            assert escalation.sla_due_at == clock.sla_due_at(escalation), escalation
            assert escalation.after_hours_until == clock.reopens_at()
