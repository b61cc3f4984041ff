"""Agents' verdicts on handovers: once per escalation, after resolve or close, with an audit row;
precision by reason; rows for training."""

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from crm import services as crm_services
from escalation import selectors, services
from escalation.errors import InvalidTransition, NotYourEscalation, VerdictAlreadyGiven
from escalation.models import Escalation, EscalationEvent, HandoffVerdict, Priority
from escalation.selectors import MetricsFilters
from tests.factories import AgentFactory, ConversationFactory


def escalate(conversation, reason="request", triggered_by=Escalation.Trigger.DETECTION):
    escalation, _ = services.escalate_conversation(
        conversation=conversation,
        reason=reason,
        priority=Priority.NORMAL,
        triggered_by=triggered_by,
    )
    return escalation


def resolved(agent, *, reason="request", text="I want a human"):
    conversation = ConversationFactory()
    crm_services.receive_customer_message(conversation=conversation, text=text)
    escalation = escalate(conversation, reason)
    services.take_over_escalation(escalation_id=escalation.pk, agent=agent)
    services.resolve_escalation(escalation_id=escalation.pk, agent=agent)
    return escalation


@pytest.mark.django_db
def test_a_verdict_is_stored_once_with_who_and_when_and_an_audit_row(agent):
    escalation = resolved(agent)
    verdict = services.record_handoff_verdict(
        escalation_id=escalation.pk, needed=False, agent=agent
    )
    assert (verdict.needed, verdict.reason, verdict.given_by) == (False, "request", agent)
    assert verdict.given_at is not None
    event = escalation.events.get(kind=EscalationEvent.Kind.VERDICT)
    assert (event.actor, event.new_value) == (agent, "not_needed")
    with pytest.raises(VerdictAlreadyGiven):
        services.record_handoff_verdict(escalation_id=escalation.pk, needed=True, agent=agent)
    assert HandoffVerdict.objects.get().needed is False
    assert escalation.events.filter(kind=EscalationEvent.Kind.VERDICT).count() == 1


@pytest.mark.django_db
def test_only_finished_automatic_handovers_by_their_agent_or_a_manager_are_judged(
    agent, other_agent
):
    queued = escalate(ConversationFactory())
    with pytest.raises(InvalidTransition):
        services.record_handoff_verdict(escalation_id=queued.pk, needed=True, agent=agent)
    manual = escalate(ConversationFactory(), reason="manual", triggered_by="agent")
    services.take_over_escalation(escalation_id=manual.pk, agent=agent)
    services.resolve_escalation(escalation_id=manual.pk, agent=agent)
    with pytest.raises(InvalidTransition):
        services.record_handoff_verdict(escalation_id=manual.pk, needed=True, agent=agent)
    mine = resolved(agent)
    with pytest.raises(NotYourEscalation):
        services.record_handoff_verdict(escalation_id=mine.pk, needed=True, agent=other_agent)
    with pytest.raises(InvalidTransition):
        services.record_handoff_verdict(escalation_id=mine.pk, needed="yes", agent=agent)
    assert not HandoffVerdict.objects.exists()
    assert not EscalationEvent.objects.filter(kind=EscalationEvent.Kind.VERDICT).exists()


@pytest.mark.django_db
def test_precision_by_reason_counts_the_answers(agent):
    for reason, needed in [
        ("request", True),
        ("request", True),
        ("request", False),
        ("sentiment", False),
    ]:
        escalation = resolved(agent, reason=reason)
        services.record_handoff_verdict(escalation_id=escalation.pk, needed=needed, agent=agent)
    now = timezone.now()
    precision = selectors.verdict_precision(MetricsFilters(start=now - timedelta(days=1), end=now))
    assert precision["reasons"]["request"] == {
        "needed": 2,
        "not_needed": 1,
        "judged": 3,
        "precision": 0.667,
    }
    assert precision["reasons"]["sentiment"]["precision"] == 0.0
    assert (precision["judged"], precision["precision"]) == (4, 0.5)
    earlier = selectors.verdict_precision(
        MetricsFilters(start=now - timedelta(days=3), end=now - timedelta(days=2))
    )
    assert earlier == {"reasons": {}, "judged": 0, "precision": None}


@pytest.mark.django_db
def test_training_rows_pair_the_handed_over_message_with_the_answer(agent):
    first = resolved(agent, reason="request", text="can I talk to someone")
    second = resolved(agent, reason="sentiment", text="this is the worst service ever")
    services.record_handoff_verdict(escalation_id=first.pk, needed=True, agent=agent)
    services.record_handoff_verdict(escalation_id=second.pk, needed=False, agent=agent)
    assert selectors.verdict_training_rows() == [
        ("can I talk to someone", "request", True, None),
        ("this is the worst service ever", "sentiment", False, None),
    ]


@pytest.mark.django_db(transaction=True)
def test_two_agents_answering_at_once_store_one_verdict():
    """On PostgreSQL and on SQLite (IMMEDIATE transactions), the two databases it runs on."""
    manager = AgentFactory(display_name="Morgan", role="manager")
    agent = AgentFactory(display_name="Marina")
    escalation = resolved(agent)
    barrier = threading.Barrier(2)
    outcomes = [None, None]
    judges = [(agent, True), (manager, False)]

    def run(i):
        try:
            barrier.wait(timeout=30)
            who, needed = judges[i]
            outcomes[i] = services.record_handoff_verdict(
                escalation_id=escalation.pk, needed=needed, agent=who
            )
        except Exception as exc:  # noqa: BLE001 - the outcome under test
            outcomes[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    stored = [o for o in outcomes if isinstance(o, HandoffVerdict)]
    refused = [o for o in outcomes if isinstance(o, VerdictAlreadyGiven)]
    assert (len(stored), len(refused)) == (1, 1), outcomes
    assert HandoffVerdict.objects.count() == 1
    assert EscalationEvent.objects.filter(kind=EscalationEvent.Kind.VERDICT).count() == 1
