"""The queue selector: order, filters, positions and estimates, in a fixed number of queries."""

from datetime import timedelta

import pytest
from django.utils import timezone

from crm.models import Contact, Conversation
from escalation import selectors
from escalation.models import Escalation, Priority
from escalation.selectors import QueueFilters
from tests.factories import AgentFactory, ChannelFactory, TeamFactory

pytestmark = pytest.mark.django_db


def make_queue(specs, *, now):
    """Escalations from (channel, team, priority, reason, waited minutes), in bulk."""
    contacts = Contact.objects.bulk_create(
        [Contact(name=f"Customer {i}") for i in range(len(specs))]
    )
    conversations = Conversation.objects.bulk_create(
        [
            Conversation(contact=contact, channel=spec[0], team=spec[1], mode="awaiting_agent")
            for contact, spec in zip(contacts, specs, strict=True)
        ]
    )
    return Escalation.objects.bulk_create(
        [
            Escalation(
                conversation=conversation,
                team=team,
                priority=priority,
                reason=reason,
                triggered_by="detection",
                escalated_at=now - timedelta(minutes=waited),
            )
            for conversation, (_channel, team, priority, reason, waited) in zip(
                conversations, specs, strict=True
            )
        ]
    )


@pytest.mark.parametrize("size", [10, 1000])
def test_the_queue_costs_the_same_queries_for_10_and_1000_escalations(
    size, django_assert_num_queries
):
    now = timezone.now()
    teams = [TeamFactory(name="Billing"), TeamFactory(name="Support")]
    channels = [ChannelFactory(kind="website"), ChannelFactory(kind="whatsapp")]
    AgentFactory(teams=teams)
    make_queue(
        [
            (channels[i % 2], teams[i % 2], Priority(1 + i % 4), "request", i % 60)
            for i in range(size)
        ],
        now=now,
    )
    with django_assert_num_queries(1):
        rows = list(selectors.queued_escalations(now=now))
        shown = [  # what a queue row shows, without another query
            (e.conversation.contact.name, e.conversation.channel.kind, e.team.name, e.claimed_by)
            for e in rows
        ]
    assert len(rows) == len(shown) == size


def test_most_urgent_first_then_longest_waiting():
    now = timezone.now()
    channel = ChannelFactory()
    normal_old, urgent_new, normal_new, urgent_old = make_queue(
        [
            (channel, None, Priority.NORMAL, "loop", 30),
            (channel, None, Priority.URGENT, "request", 1),
            (channel, None, Priority.NORMAL, "loop", 2),
            (channel, None, Priority.URGENT, "sentiment", 10),
        ],
        now=now,
    )
    rows = list(selectors.queued_escalations(now=now))
    assert rows == [urgent_old, urgent_new, normal_old, normal_new]
    assert [selectors.queue_position(e) for e in rows] == [1, 2, 3, 4]


def test_filters_by_channel_priority_team_reason_and_wait():
    now = timezone.now()
    billing, support = TeamFactory(name="Billing"), TeamFactory(name="Support")
    web, whatsapp = ChannelFactory(kind="website"), ChannelFactory(kind="whatsapp")
    a, b, c, d = make_queue(
        [
            (web, billing, Priority.HIGH, "request", 1),
            (whatsapp, billing, Priority.NORMAL, "sentiment", 12),
            (whatsapp, support, Priority.HIGH, "complexity", 25),
            (web, support, Priority.LOW, "request", 40),
        ],
        now=now,
    )

    def ids(**filters):
        return {e.pk for e in selectors.queued_escalations(QueueFilters(**filters), now=now)}

    assert ids(channel="whatsapp") == {b.pk, c.pk}
    assert ids(priority=Priority.HIGH) == {a.pk, c.pk}
    assert ids(priority="high") == {a.pk, c.pk}
    assert ids(team=support.pk) == {c.pk, d.pk}
    assert ids(reason="request") == {a.pk, d.pk}
    assert ids(min_wait_seconds=10 * 60) == {b.pk, c.pk, d.pk}
    assert ids(max_wait_seconds=20 * 60) == {a.pk, b.pk}
    assert ids(min_wait_seconds=10 * 60, max_wait_seconds=30 * 60, team=billing.pk) == {b.pk}
    Escalation.objects.filter(pk=a.pk).update(status=Escalation.Status.CLAIMED)
    assert a.pk not in ids()
    assert ids(status=Escalation.Status.CLAIMED) == {a.pk}


def test_position_and_estimate_count_only_the_teams_queue_and_its_online_agents(settings):
    settings.LIVE_ESCALATION = {**settings.LIVE_ESCALATION, "DEFAULT_PICKUP_SECONDS": 120}
    now = timezone.now()
    billing, support = TeamFactory(name="Billing"), TeamFactory(name="Support")
    channel = ChannelFactory()
    AgentFactory(teams=[billing])
    AgentFactory(teams=[billing])
    AgentFactory(teams=[support], availability="offline")
    first, other_team, second = make_queue(
        [
            (channel, billing, Priority.HIGH, "request", 5),
            (channel, support, Priority.URGENT, "request", 9),
            (channel, billing, Priority.NORMAL, "request", 7),
        ],
        now=now,
    )
    positions = [selectors.queue_position(e) for e in (first, second, other_team)]
    assert positions == [1, 2, 1]
    # No pickup history: the default 120 s per escalation ahead, shared by 2 online agents.
    assert selectors.estimated_wait_seconds(second) == pytest.approx(120 * 2 / 2)
    assert selectors.estimated_wait_minutes(second) == 2
    # Nobody online for Support: one agent is assumed.
    assert selectors.estimated_wait_seconds(other_team) == pytest.approx(120)


def test_the_estimate_follows_recent_pickup_times():
    now = timezone.now()
    channel = ChannelFactory()
    (claimed,) = make_queue([(channel, None, Priority.NORMAL, "request", 20)], now=now)
    Escalation.objects.filter(pk=claimed.pk).update(
        status=Escalation.Status.CLAIMED, claimed_at=now - timedelta(minutes=14)
    )
    assert selectors.recent_pickup_seconds() == pytest.approx(6 * 60)
    (waiting,) = make_queue([(channel, None, Priority.NORMAL, "request", 1)], now=now)
    assert selectors.estimated_wait_minutes(waiting) == 6  # first in line, nobody online → 1


def test_online_agents_are_the_active_online_ones_of_the_team_or_everyone():
    billing, support = TeamFactory(name="Billing"), TeamFactory(name="Support")
    both = AgentFactory(teams=[billing, support])
    billing_only = AgentFactory(teams=[billing])
    AgentFactory(teams=[billing], availability="away")
    gone = AgentFactory(teams=[billing])
    gone.is_active = False
    gone.save(update_fields=["is_active"])
    teamless = AgentFactory()

    def users(team_id=None):
        return sorted(p.user_id for p in selectors.online_agents(team_id))

    assert users(billing.pk) == sorted([both.pk, billing_only.pk])
    assert users(support.pk) == [both.pk]
    # Without a team: every online agent once, even one in two teams.
    assert users() == sorted([both.pk, billing_only.pk, teamless.pk])
    assert selectors.online_agents(billing.pk).count() == 2
