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
    assert escalation.signals == analysis.signals
    # The handoff card states the customer's words and the mood the analysis stored.
    assert escalation.card["problem"] == "Let me talk to a human agent please"
    assert escalation.card["mood"] and escalation.summary.startswith("Problem: Let me talk")
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


def ai_says(conversation, text, confidence) -> Message:
    return Message.objects.create(
        conversation=conversation,
        channel=conversation.channel,
        sender="ai",
        text=text,
        confidence=confidence,
    )


def handed_back_after_a_weak_loop(conversation, agent) -> Message:
    """The customer asked the same thing three times, the AI answered weakly each time, an
    agent took over and handed back. Returns the customer's last message before the handover."""
    weak = "I'm not sure, you could try checking the order page."
    for text in ("where is my parcel?", "where is my parcel??", "where is my parcel, seriously"):
        last = customer_says(conversation, text)
        ai_says(conversation, weak, 0.1)
    escalation, _ = services.escalate_conversation(
        conversation=conversation, reason="loop", priority=Priority.NORMAL, triggered_by="detection"
    )
    services.take_over_escalation(escalation_id=escalation.pk, agent=agent)
    crm_services.send_agent_message(
        conversation=conversation, agent=agent, text="It arrives tomorrow; here is the tracking."
    )
    services.hand_back_to_ai(escalation_id=escalation.pk, agent=agent, note="parcel sorted")
    return last


def test_after_a_hand_back_detection_reads_only_what_came_after_it(conversation, agent):
    before = handed_back_after_a_weak_loop(conversation, agent)
    conversation.refresh_from_db()
    assert conversation.mode == Conversation.Mode.AI
    notice = conversation.messages.get(sender="system", text__contains="assistant again")
    assert conversation.ai_resumed_after_message_id == notice.pk

    message = customer_says(conversation, "great, thanks. where is my parcel number two?")
    analysis = analyze_and_act(message_id=message.pk)
    assert not analysis.should_escalate, analysis.detail
    signals = analysis.signals
    assert signals["confidence"] == {"last": None, "recent_low": 0, "recent": []}
    assert signals["loop"]["count"] == 0
    assert Escalation.objects.filter(conversation=conversation).count() == 1

    # What comes after the hand-back still counts: a weak new answer hands over again.
    ai_says(conversation, "Sorry, I don't know about a second parcel.", 0.1)
    again = customer_says(conversation, "so where is it?")
    analysis = analyze_and_act(message_id=again.pk)
    assert analysis.should_escalate and analysis.reason == "low_confidence"
    assert signals_before_hand_back_are_kept(conversation, before)


def signals_before_hand_back_are_kept(conversation, message) -> bool:
    """A message from before the hand-back, analysed late, keeps its own history."""
    from escalation.selectors import detection_turns

    turns = detection_turns(conversation, message_id=message.pk)
    return [t.role for t in turns] == ["customer", "assistant"] * 2 + ["customer"]


def test_the_ais_answer_is_embedded_once_sent_so_the_next_analysis_finds_it_cached(
    conversation, django_capture_on_commit_callbacks
):
    from crm.encoder import get_encoder

    body = "Parcels to the islands take four to six working days."
    KnowledgeArticle.objects.create(
        title="Shipping to the islands", keywords="islands shipping days", body=body
    )
    get_encoder().forget([body])
    with django_capture_on_commit_callbacks(execute=True):
        crm_services.receive_customer_message(
            conversation=conversation, text="How long does shipping to the islands take?"
        )
    assert conversation.messages.get(sender="ai").text == body
    assert get_encoder().is_cached(body, query=True)
