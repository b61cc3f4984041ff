"""Every handoff transition: its effect, its audit row, its typed error, effects after commit."""

from datetime import timedelta

import pytest
from django.utils import timezone

from crm import realtime
from crm.models import AgentProfile, Conversation, CustomerText, Message
from escalation import services
from escalation.errors import (
    AlreadyClaimed,
    EscalationNotFound,
    InvalidTransition,
    NotYourEscalation,
    ReasonRequired,
)
from escalation.models import Escalation, EscalationEvent, Priority
from notifications.models import Notification
from tests.factories import AgentFactory, ChannelFactory, ConversationFactory, TeamFactory
from tickets.models import Ticket, TicketEvent

pytestmark = pytest.mark.django_db
Kind = EscalationEvent.Kind


@pytest.fixture
def sent(monkeypatch):
    """Every event pushed to the channel layer, as (group, type)."""
    pushed = []
    monkeypatch.setattr(
        realtime, "send_soon", lambda group, event: pushed.append((group, event["type"])) or True
    )
    return pushed


def escalate(conversation, *, priority=Priority.NORMAL, reason="request", **extra):
    escalation, _created = services.escalate_conversation(
        conversation=conversation,
        reason=reason,
        priority=priority,
        triggered_by=extra.pop("triggered_by", Escalation.Trigger.DETECTION),
        **extra,
    )
    return escalation


def kinds(escalation) -> list[str]:
    return list(escalation.events.values_list("kind", flat=True))


def taken(conversation, agent):
    escalation = escalate(conversation)
    return services.take_over_escalation(escalation_id=escalation.pk, agent=agent)


# --- escalate ---------------------------------------------------------------------------------


def test_escalating_queues_stops_the_ai_tells_the_customer_opens_a_ticket_and_notifies(
    conversation, agent, sent, django_capture_on_commit_callbacks
):
    Message.objects.create(
        conversation=conversation,
        channel=conversation.channel,
        sender="customer",
        text="Order 55123 was charged $49 twice",
    )
    CustomerText.objects.create(
        kind="handoff", language="en", text="Hold on, about {wait_minutes} min."
    )
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        escalation, created = services.escalate_conversation(
            conversation=conversation,
            reason="complexity",
            priority=Priority.HIGH,
            triggered_by=Escalation.Trigger.API,
            detail="Double charge",
        )
        assert sent == []  # nothing leaves before commit
    assert created and callbacks
    assert escalation.status == Escalation.Status.QUEUED
    assert (escalation.reason, escalation.priority) == ("complexity", Priority.HIGH)
    assert escalation.triggered_by == "api"
    assert "55123" in escalation.summary and "$49" in escalation.summary
    assert kinds(escalation) == [Kind.ESCALATED]
    conversation.refresh_from_db()
    assert conversation.mode == Conversation.Mode.AWAITING_AGENT
    notice = conversation.messages.get(sender=Message.Sender.SYSTEM)
    assert notice.text == "Hold on, about 3 min."  # DEFAULT_PICKUP_SECONDS=180, 1st in line
    ticket = Ticket.objects.get(escalation=escalation)
    assert (ticket.reason, ticket.priority, ticket.contact) == (
        "complexity",
        Priority.HIGH,
        conversation.contact,
    )
    assert ticket.description == escalation.summary
    assert ticket.events.filter(kind=TicketEvent.Kind.OPENED).count() == 1
    assert Notification.objects.filter(recipient=agent, escalation=escalation).exists()
    types = {event_type for _group, event_type in sent}
    assert {"queue.added", "conversation.mode", "message.created"} <= types
    assert ("queue", "queue.added") in sent


def test_the_wait_estimate_uses_recent_pickups_and_the_queue_ahead(channel):
    team = TeamFactory()
    channel.default_team = team
    channel.save()
    AgentFactory(teams=[team])  # one agent online for the team
    now = timezone.now()
    for minutes_ago in (30, 40):  # two recent pickups after a 10-minute wait
        Escalation.objects.create(
            conversation=ConversationFactory(channel=channel),
            status=Escalation.Status.RESOLVED,
            reason="request",
            triggered_by="detection",
            team=team,
            escalated_at=now - timedelta(minutes=minutes_ago + 10),
            claimed_at=now - timedelta(minutes=minutes_ago),
        )
    for _ in range(2):  # two already waiting ahead
        escalate(ConversationFactory(channel=channel), priority=Priority.HIGH)
    conversation = ConversationFactory(channel=channel)
    escalation = escalate(conversation, priority=Priority.HIGH)
    assert escalation.team == team
    notice = conversation.messages.get(sender=Message.Sender.SYSTEM)
    assert "The wait is about 30 minutes." in notice.text  # 10 min x third in line / 1 agent


def test_a_weaker_second_trigger_is_recorded_but_never_lowers_the_priority(conversation):
    escalation = escalate(conversation, priority=Priority.HIGH, reason="sentiment")
    again, created = services.escalate_conversation(
        conversation=conversation,
        reason="low_confidence",
        priority=Priority.LOW,
        triggered_by="detection",
    )
    assert again.pk == escalation.pk and not created
    escalation.refresh_from_db()
    assert (escalation.priority, escalation.reason) == (Priority.HIGH, "sentiment")
    assert kinds(escalation) == [Kind.ESCALATED, Kind.RETRIGGERED]
    assert Escalation.objects.filter(conversation=conversation).count() == 1
    assert conversation.messages.filter(sender=Message.Sender.SYSTEM).count() == 1


def test_a_stronger_second_trigger_raises_priority_and_reason_on_escalation_and_ticket(
    conversation,
):
    escalation = escalate(conversation, priority=Priority.NORMAL, reason="loop")
    services.escalate_conversation(
        conversation=conversation,
        reason="request",
        priority="urgent",
        triggered_by="assistant",
        detail="Asked twice",
    )
    escalation.refresh_from_db()
    assert (escalation.priority, escalation.reason) == (Priority.URGENT, "request")
    assert escalation.events.get(kind=Kind.REPRIORITISED).new_value == "urgent"
    ticket = escalation.ticket
    ticket.refresh_from_db()
    assert (ticket.priority, ticket.reason) == (Priority.URGENT, "request")
    assert ticket.events.filter(kind=TicketEvent.Kind.PRIORITY).count() == 1


@pytest.mark.parametrize(
    "change, message",
    [
        ({"reason": "whim"}, "Unknown reason"),
        ({"triggered_by": "moon"}, "Unknown trigger"),
        ({"priority": "extreme"}, "Unknown priority"),
    ],
)
def test_bad_escalation_input_is_a_typed_error(conversation, change, message):
    arguments = {
        "conversation": conversation,
        "reason": "request",
        "priority": Priority.HIGH,
        "triggered_by": "agent",
        **change,
    }
    with pytest.raises(InvalidTransition, match=message):
        services.escalate_conversation(**arguments)
    assert not Escalation.objects.exists()


def test_a_closed_conversation_cannot_be_escalated(conversation):
    Conversation.objects.filter(pk=conversation.pk).update(mode=Conversation.Mode.CLOSED)
    with pytest.raises(InvalidTransition):
        escalate(conversation)


def test_a_conversation_an_agent_drives_is_not_escalated_again_after_resolving(conversation, agent):
    escalation = taken(conversation, agent)
    services.resolve_escalation(escalation_id=escalation.pk, agent=agent)
    with pytest.raises(InvalidTransition, match="already handling"):
        escalate(conversation)
    conversation.refresh_from_db()
    assert conversation.mode == Conversation.Mode.AGENT


def test_with_handoff_disabled_only_a_person_escalates(db):
    from tests.factories import AssistantFactory

    assistant = AssistantFactory(handoff_enabled=False)
    conversation = ConversationFactory(channel=ChannelFactory(assistant=assistant))
    for trigger in (Escalation.Trigger.DETECTION, Escalation.Trigger.ASSISTANT):
        with pytest.raises(InvalidTransition, match="disabled"):
            escalate(conversation, triggered_by=trigger)
    assert not Escalation.objects.exists()
    assert escalate(conversation, triggered_by=Escalation.Trigger.AGENT).pk


def test_a_failure_midway_rolls_back_the_whole_escalation(
    conversation, sent, monkeypatch, django_capture_on_commit_callbacks
):
    def broken(**kwargs):
        raise RuntimeError("ticket store down")

    monkeypatch.setattr(services.ticket_services, "open_ticket_for_escalation", broken)
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(RuntimeError):
        escalate(conversation)
    conversation.refresh_from_db()
    assert conversation.mode == Conversation.Mode.AI
    assert not Escalation.objects.exists() and not conversation.messages.exists()
    assert sent == []


# --- take over --------------------------------------------------------------------------------


def test_taking_over_hands_the_conversation_to_the_agent(
    conversation, agent, sent, django_capture_on_commit_callbacks
):
    CustomerText.objects.create(
        kind="agent_greeting", language="en", text="Hello, {agent_name} here."
    )
    escalation = escalate(conversation)
    with django_capture_on_commit_callbacks(execute=True):
        services.take_over_escalation(escalation_id=escalation.pk, agent=agent)
        assert sent == []
    escalation.refresh_from_db()
    conversation.refresh_from_db()
    assert escalation.status == Escalation.Status.CLAIMED
    assert escalation.claimed_by == agent and escalation.claimed_at is not None
    assert conversation.mode == Conversation.Mode.AGENT and conversation.assigned_agent == agent
    assert escalation.ticket.assignee == agent
    last_two = list(conversation.messages.order_by("-id")[:2])[::-1]
    assert [(m.sender, m.text) for m in last_two] == [
        ("system", "Now speaking with Marina"),
        ("agent", "Hello, Marina here."),
    ]
    assert kinds(escalation) == [Kind.ESCALATED, Kind.CLAIMED]
    assert ("queue", "queue.claimed") in sent


def test_a_second_agent_gets_already_taken_by_the_winner(conversation, agent, other_agent):
    escalation = taken(conversation, agent)
    with pytest.raises(AlreadyClaimed, match="Marina") as error:
        services.take_over_escalation(escalation_id=escalation.pk, agent=other_agent)
    assert error.value.agent_name == "Marina" and error.value.status == 409
    # The winner clicking again changes nothing.
    services.take_over_escalation(escalation_id=escalation.pk, agent=agent)
    assert kinds(escalation) == [Kind.ESCALATED, Kind.CLAIMED]
    assert conversation.messages.filter(text__startswith="Now speaking").count() == 1


def test_taking_over_a_finished_or_missing_escalation_is_refused(conversation, agent):
    escalation = escalate(conversation)
    services.cancel_escalation(escalation_id=escalation.pk)
    with pytest.raises(InvalidTransition, match="cancelled"):
        services.take_over_escalation(escalation_id=escalation.pk, agent=agent)
    with pytest.raises(EscalationNotFound):
        services.take_over_escalation(escalation_id=escalation.pk + 1000, agent=agent)


# --- reassign ---------------------------------------------------------------------------------


def test_reassigning_to_another_agent_keeps_the_times_and_records_the_hop(
    conversation, agent, other_agent
):
    escalation = taken(conversation, agent)
    escalated_at, claimed_at = escalation.escalated_at, escalation.claimed_at
    services.reassign_escalation(
        escalation_id=escalation.pk, actor=agent, to_agent=other_agent, note="billing expert"
    )
    escalation.refresh_from_db()
    conversation.refresh_from_db()
    assert escalation.claimed_by == other_agent
    assert (escalation.escalated_at, escalation.claimed_at) == (escalated_at, claimed_at)
    assert conversation.assigned_agent == other_agent
    assert escalation.ticket.assignee == other_agent
    hop = escalation.events.get(kind=Kind.REASSIGNED)
    assert (hop.old_value, hop.new_value, hop.note, hop.actor) == (
        "Marina",
        "Alex",
        "billing expert",
        agent,
    )
    assert conversation.messages.filter(text="Now speaking with Alex").exists()


def test_back_to_the_queue_then_picked_up_again_keeps_the_first_pickup_time(
    conversation, agent, other_agent
):
    escalation = taken(conversation, agent)
    first_pickup = escalation.claimed_at
    services.reassign_escalation(escalation_id=escalation.pk, actor=agent)
    escalation.refresh_from_db()
    conversation.refresh_from_db()
    assert escalation.status == Escalation.Status.QUEUED and escalation.claimed_by is None
    assert conversation.mode == Conversation.Mode.AWAITING_AGENT
    assert conversation.assigned_agent is None
    assert escalation.ticket.assignee is None
    assert escalation.events.get(kind=Kind.RELEASED).old_value == "Marina"
    services.take_over_escalation(escalation_id=escalation.pk, agent=other_agent)
    escalation.refresh_from_db()
    assert escalation.claimed_by == other_agent and escalation.claimed_at == first_pickup


def test_reassigning_to_a_team_moves_it_to_that_teams_queue(conversation, agent):
    team = TeamFactory(name="Security")
    escalation = taken(conversation, agent)
    services.reassign_escalation(escalation_id=escalation.pk, actor=agent, to_team=team)
    escalation.refresh_from_db()
    conversation.refresh_from_db()
    assert escalation.status == Escalation.Status.QUEUED and escalation.team == team
    assert conversation.team == team
    assert escalation.events.get(kind=Kind.RELEASED).new_value == "Security"


def test_only_the_owner_or_a_manager_reassigns_a_taken_escalation(conversation, agent, other_agent):
    escalation = taken(conversation, agent)
    with pytest.raises(NotYourEscalation):
        services.reassign_escalation(escalation_id=escalation.pk, actor=other_agent)
    manager = AgentFactory(role=AgentProfile.Role.MANAGER)
    services.reassign_escalation(escalation_id=escalation.pk, actor=manager, to_agent=other_agent)
    escalation.refresh_from_db()
    assert escalation.claimed_by == other_agent


def test_a_finished_escalation_cannot_be_reassigned(conversation, agent, other_agent):
    escalation = taken(conversation, agent)
    services.resolve_escalation(escalation_id=escalation.pk, agent=agent)
    with pytest.raises(InvalidTransition):
        services.reassign_escalation(escalation_id=escalation.pk, actor=agent, to_agent=other_agent)


# --- resolve, close, cancel, hand back --------------------------------------------------------


def test_resolving_stores_the_resolution_time_on_escalation_and_ticket(conversation, agent):
    escalation = taken(conversation, agent)
    services.resolve_escalation(escalation_id=escalation.pk, agent=agent, note="refunded")
    escalation.refresh_from_db()
    ticket = Ticket.objects.get(escalation=escalation)
    assert escalation.status == Escalation.Status.RESOLVED and escalation.resolved_at
    assert ticket.status == Ticket.Status.RESOLVED and ticket.resolved_at
    assert escalation.events.get(kind=Kind.RESOLVED).note == "refunded"
    conversation.refresh_from_db()
    assert conversation.mode == Conversation.Mode.AGENT  # still hers until closed


def test_resolving_needs_a_taken_over_escalation_and_its_owner(conversation, agent, other_agent):
    escalation = escalate(conversation)
    with pytest.raises(InvalidTransition):
        services.resolve_escalation(escalation_id=escalation.pk, agent=agent)
    services.take_over_escalation(escalation_id=escalation.pk, agent=agent)
    with pytest.raises(NotYourEscalation):
        services.resolve_escalation(escalation_id=escalation.pk, agent=other_agent)
    assert kinds(escalation) == [Kind.ESCALATED, Kind.CLAIMED]


def test_closing_without_resolving_asks_for_a_reason(conversation, agent):
    escalation = taken(conversation, agent)
    with pytest.raises(ReasonRequired):
        services.close_escalation(escalation_id=escalation.pk, agent=agent, reason="  ")
    services.close_escalation(escalation_id=escalation.pk, agent=agent, reason="Spam")
    escalation.refresh_from_db()
    conversation.refresh_from_db()
    assert escalation.status == Escalation.Status.CLOSED and escalation.close_reason == "Spam"
    assert conversation.mode == Conversation.Mode.CLOSED and conversation.closed_at
    assert escalation.ticket.status == Ticket.Status.CLOSED
    assert escalation.events.get(kind=Kind.CLOSED).old_value == "claimed"
    with pytest.raises(InvalidTransition):
        services.close_escalation(escalation_id=escalation.pk, agent=agent, reason="again")


def test_closing_after_resolving_needs_no_reason(conversation, agent):
    escalation = taken(conversation, agent)
    services.resolve_escalation(escalation_id=escalation.pk, agent=agent)
    services.close_escalation(escalation_id=escalation.pk, agent=agent)
    escalation.refresh_from_db()
    assert escalation.status == Escalation.Status.CLOSED
    assert escalation.resolved_at and escalation.closed_at
    assert Ticket.objects.get(escalation=escalation).status == Ticket.Status.CLOSED


def test_cancelling_when_the_customer_left_before_pickup(conversation, agent):
    escalation = escalate(conversation)
    services.cancel_escalation(escalation_id=escalation.pk)
    escalation.refresh_from_db()
    conversation.refresh_from_db()
    assert escalation.status == Escalation.Status.CANCELLED
    assert escalation.close_reason == "Customer left before pickup."
    assert conversation.mode == Conversation.Mode.CLOSED
    assert escalation.ticket.status == Ticket.Status.CLOSED
    assert kinds(escalation) == [Kind.ESCALATED, Kind.CANCELLED]
    other = taken(ConversationFactory(channel=ChannelFactory()), agent)
    with pytest.raises(InvalidTransition):
        services.cancel_escalation(escalation_id=other.pk)


def test_handing_back_lets_the_ai_answer_again(conversation, agent, other_agent):
    from escalation.pipeline import answer_customer_message

    escalation = taken(conversation, agent)
    question = Message.objects.create(
        conversation=conversation, channel=conversation.channel, sender="customer", text="thanks"
    )
    assert answer_customer_message(message_id=question.pk) is None  # the agent drives
    with pytest.raises(NotYourEscalation):
        services.hand_back_to_ai(escalation_id=escalation.pk, agent=other_agent)
    services.hand_back_to_ai(escalation_id=escalation.pk, agent=agent, note="Refund done")
    escalation.refresh_from_db()
    conversation.refresh_from_db()
    assert conversation.mode == Conversation.Mode.AI and conversation.assigned_agent is None
    assert escalation.status == Escalation.Status.RESOLVED and escalation.resolved_at
    assert escalation.events.get(kind=Kind.HANDED_BACK).note == "Refund done"
    note = conversation.messages.get(is_private_note=True)
    assert note.text == "Refund done" and note.author == agent
    later = Message.objects.create(
        conversation=conversation,
        channel=conversation.channel,
        sender="customer",
        text="one more question",
    )
    reply = answer_customer_message(message_id=later.pk)
    assert reply is not None and reply.sender == Message.Sender.AI
    with pytest.raises(InvalidTransition):
        services.hand_back_to_ai(escalation_id=escalation.pk, agent=agent)


def test_handing_back_a_queued_escalation_is_refused(conversation, agent):
    escalation = escalate(conversation)
    with pytest.raises(InvalidTransition):
        services.hand_back_to_ai(escalation_id=escalation.pk, agent=agent)


# --- waiting past the team's target -----------------------------------------------------------


def test_waiting_past_the_team_target_raises_priority_once_per_interval(channel):
    team = TeamFactory(target_wait_seconds=120)
    channel.default_team = team
    channel.save()
    escalation = escalate(ConversationFactory(channel=channel), priority=Priority.NORMAL)
    assert services.remind_overdue_escalation(escalation_id=escalation.pk) is False  # not yet
    Escalation.objects.filter(pk=escalation.pk).update(
        escalated_at=timezone.now() - timedelta(seconds=130)
    )
    assert services.remind_overdue_escalation(escalation_id=escalation.pk) is True
    assert services.remind_overdue_escalation(escalation_id=escalation.pk) is False
    escalation.refresh_from_db()
    assert escalation.priority == Priority.HIGH
    assert escalation.ticket.priority == Priority.HIGH
    reminded = escalation.events.get(kind=Kind.REMINDED)
    assert (reminded.old_value, reminded.new_value) == ("normal", "high")
    later = timezone.now() + timedelta(seconds=125)
    assert services.remind_overdue_escalation(escalation_id=escalation.pk, now=later) is True
    escalation.refresh_from_db()
    assert escalation.priority == Priority.URGENT
