"""The pipeline: one analysis per message, then escalate or let the AI answer — never both."""

import pytest

from crm import services as crm_services
from crm.models import Conversation, KnowledgeArticle, Message
from escalation import services
from escalation.models import Escalation, EscalationEvent, MessageAnalysis, Priority
from escalation.pipeline import analyze_and_act

pytestmark = pytest.mark.django_db


def customer_says(conversation, text) -> Message:
    return Message.objects.create(
        conversation=conversation, channel=conversation.channel, sender="customer", text=text
    )


def test_an_ordinary_question_is_answered_by_the_ai(
    conversation, django_capture_on_commit_callbacks
):
    KnowledgeArticle.objects.create(
        title="Shipping", keywords="shipping delivery days", body="We ship in 2 days."
    )
    with django_capture_on_commit_callbacks(execute=True):
        crm_services.receive_customer_message(
            conversation=conversation, text="How many days does shipping take?"
        )
    assert not Escalation.objects.exists()
    assert conversation.messages.get(sender="ai").text == "We ship in 2 days."


def test_a_request_for_a_person_escalates_and_the_ai_stays_silent(
    conversation, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        message = crm_services.receive_customer_message(
            conversation=conversation, text="Let me talk to a human agent please"
        )
    escalation = Escalation.objects.get(conversation=conversation)
    assert (escalation.reason, escalation.triggered_by) == ("request", "detection")
    analysis = MessageAnalysis.objects.get(message=message)
    assert analysis.should_escalate and analysis.reason == "request"
    assert escalation.signals == analysis.signals and escalation.summary == analysis.summary
    assert not conversation.messages.filter(sender="ai").exists()


def test_a_message_is_analysed_and_acted_on_once(conversation):
    message = customer_says(conversation, "Let me talk to a human agent please")
    assert analyze_and_act(message_id=message.pk) is not None
    assert analyze_and_act(message_id=message.pk) is None
    assert MessageAnalysis.objects.count() == 1 and Escalation.objects.count() == 1
    assert EscalationEvent.objects.count() == 1


def test_a_later_stronger_signal_while_waiting_raises_the_priority(conversation):
    escalation, _ = services.escalate_conversation(
        conversation=conversation, reason="loop", priority=Priority.LOW, triggered_by="agent"
    )
    message = customer_says(conversation, "I want a human agent NOW, this is ridiculous!!!")
    analyze_and_act(message_id=message.pk)
    escalation.refresh_from_db()
    assert escalation.priority >= Priority.HIGH
    assert Escalation.objects.filter(conversation=conversation).count() == 1


def test_after_resolving_an_upset_message_does_not_pull_the_agent_off(conversation, agent):
    escalation, _ = services.escalate_conversation(
        conversation=conversation, reason="request", priority=Priority.HIGH, triggered_by="api"
    )
    services.take_over_escalation(escalation_id=escalation.pk, agent=agent)
    services.resolve_escalation(escalation_id=escalation.pk, agent=agent)
    message = customer_says(conversation, "I want a human agent NOW, this is ridiculous!!!")
    analysis = analyze_and_act(message_id=message.pk)
    assert analysis is not None and analysis.should_escalate
    conversation.refresh_from_db()
    assert conversation.mode == Conversation.Mode.AGENT and conversation.assigned_agent == agent
    assert Escalation.objects.filter(conversation=conversation).count() == 1
    assert not conversation.messages.filter(sender="ai").exists()


def test_a_closed_conversation_is_not_escalated(conversation):
    message = customer_says(conversation, "Let me talk to a human agent please")
    Conversation.objects.filter(pk=conversation.pk).update(mode="closed")
    assert analyze_and_act(message_id=message.pk) is not None
    assert not Escalation.objects.exists()
