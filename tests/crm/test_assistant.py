"""The local assistant: answers from the knowledge base while the AI drives, says when it isn't
sure, stays silent when a person drives, and is honest when handoff is disabled."""

import pytest

from crm import services as crm_services
from crm.assistant.local import LocalResponder
from crm.models import Conversation, KnowledgeArticle, Message
from escalation.models import Escalation, MessageAnalysis
from escalation.pipeline import answer_customer_message
from tests.factories import AssistantFactory, ChannelFactory, ConversationFactory

pytestmark = pytest.mark.django_db


REFUNDS = "Refunds go back to your card within 5 business days of approval."


@pytest.fixture
def knowledge(db):
    KnowledgeArticle.objects.create(
        title="Refund timing", keywords="refund money back card days", body=REFUNDS
    )
    KnowledgeArticle.objects.create(
        title="Shipping times", keywords="shipping delivery parcel", body="We ship in 2 days."
    )
    KnowledgeArticle.objects.create(
        title="Draft", keywords="refund", body="unpublished", is_published=False
    )


def customer_says(conversation, text) -> Message:
    return Message.objects.create(
        conversation=conversation, channel=conversation.channel, sender="customer", text=text
    )


def test_a_strong_match_is_answered_with_its_article_and_high_confidence(knowledge, conversation):
    message = customer_says(conversation, "How many days until my refund is back on my card?")
    reply = answer_customer_message(message_id=message.pk)
    assert reply.sender == Message.Sender.AI and reply.text == REFUNDS
    assert reply.confidence >= conversation.assistant.confidence_threshold


def test_a_weak_match_says_it_is_not_sure_with_a_low_confidence(knowledge, conversation):
    message = customer_says(conversation, "Can I pay part of the refund with bitcoin at pickup?")
    answer = LocalResponder().answer(conversation=conversation, message=message)
    assert "not sure" in answer.text
    assert answer.confidence < conversation.assistant.confidence_threshold
    nothing = customer_says(conversation, "zzz qqq")
    gibberish = LocalResponder().answer(conversation=conversation, message=nothing)
    assert gibberish.confidence < 0.3 and "not sure" in gibberish.text


def test_the_threshold_is_the_assistants(knowledge, conversation):
    message = customer_says(conversation, "Can I pay part of the refund with bitcoin at pickup?")
    unsure = LocalResponder().answer(conversation=conversation, message=message)
    assert 0 < unsure.confidence < 0.45 and "not sure" in unsure.text
    conversation.assistant.confidence_threshold = unsure.confidence - 0.01
    conversation.assistant.save()
    sure = LocalResponder().answer(conversation=conversation, message=message)
    assert (sure.text, sure.confidence) == (REFUNDS, unsure.confidence)


def test_the_low_confidence_of_an_answer_is_a_signal_for_the_next_message(
    knowledge, conversation, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        first = crm_services.receive_customer_message(
            conversation=conversation, text="Can I pay part of my order with bitcoin?"
        )
    ai = conversation.messages.get(sender=Message.Sender.AI)
    assert ai.confidence is not None and ai.confidence < 0.45
    with django_capture_on_commit_callbacks(execute=True):
        second = crm_services.receive_customer_message(
            conversation=conversation, text="So can I or not?"
        )
    assert MessageAnalysis.objects.filter(message=first).exists()
    signals = MessageAnalysis.objects.get(message=second).signals
    assert signals["confidence"]["last"] == ai.confidence


@pytest.mark.parametrize(
    "text, reply",
    [
        ("hi", "Hi! How can I help you today?"),
        ("Good morning!", "Hi! How can I help you today?"),
        ("ok thanks!", "You're welcome! Is there anything else I can help with?"),
    ],
)
def test_small_talk_is_answered_without_a_confidence(knowledge, conversation, text, reply):
    answer = LocalResponder().answer(
        conversation=conversation, message=customer_says(conversation, text)
    )
    assert (answer.text, answer.confidence) == (reply, None)


def test_a_greeting_then_a_question_does_not_escalate_for_low_confidence(
    knowledge, conversation, django_capture_on_commit_callbacks
):
    for text in ("hello", "How many days until my refund is back on my card?"):
        with django_capture_on_commit_callbacks(execute=True):
            crm_services.receive_customer_message(conversation=conversation, text=text)
    assert not Escalation.objects.exists()
    replies = list(conversation.messages.filter(sender="ai").values_list("text", "confidence"))
    assert replies[0] == ("Hi! How can I help you today?", None)
    assert replies[1][0] == REFUNDS


@pytest.mark.parametrize("mode", ["awaiting_agent", "agent", "closed"])
def test_the_assistant_is_silent_unless_the_ai_drives(knowledge, conversation, mode):
    Conversation.objects.filter(pk=conversation.pk).update(mode=mode)
    message = customer_says(conversation, "How many days until my refund is back?")
    assert answer_customer_message(message_id=message.pk) is None
    assert not conversation.messages.filter(sender=Message.Sender.AI).exists()


def test_a_message_is_answered_once(knowledge, conversation):
    message = customer_says(conversation, "How many days until my refund is back?")
    assert answer_customer_message(message_id=message.pk) is not None
    assert answer_customer_message(message_id=message.pk) is None
    assert conversation.messages.filter(sender=Message.Sender.AI).count() == 1


def test_an_agent_taking_over_mid_answer_wins(knowledge, conversation, agent, monkeypatch):
    """The mode is checked again under the lock when the answer is stored."""
    message = customer_says(conversation, "How many days until my refund is back?")
    real = LocalResponder.answer

    def slow_answer(self, **kwargs):
        Conversation.objects.filter(pk=conversation.pk).update(mode="agent", assigned_agent=agent)
        return real(self, **kwargs)

    monkeypatch.setattr(LocalResponder, "answer", slow_answer)
    assert answer_customer_message(message_id=message.pk) is None
    assert not conversation.messages.filter(sender=Message.Sender.AI).exists()


# --- handoff disabled -------------------------------------------------------------------------


@pytest.fixture
def no_handoff_conversation(db):
    assistant = AssistantFactory(handoff_enabled=False)
    return ConversationFactory(channel=ChannelFactory(assistant=assistant))


def test_with_handoff_disabled_a_request_for_a_person_gets_an_honest_answer(
    knowledge, no_handoff_conversation, django_capture_on_commit_callbacks
):
    conversation = no_handoff_conversation
    with django_capture_on_commit_callbacks(execute=True):
        message = crm_services.receive_customer_message(
            conversation=conversation, text="I want to talk to a real person now please"
        )
    conversation.refresh_from_db()
    assert conversation.mode == Conversation.Mode.AI
    assert not Escalation.objects.exists()
    analysis = MessageAnalysis.objects.get(message=message)
    assert analysis.would_escalate and not analysis.should_escalate
    reply = conversation.messages.get(sender=Message.Sender.AI)
    assert "no human agent available in this chat" in reply.text
    assert "Refund timing" in reply.text  # and it offers what it can


def test_with_handoff_disabled_a_request_in_another_language_is_understood(
    knowledge, no_handoff_conversation, django_capture_on_commit_callbacks
):
    """The detector's multilingual intent, not only English keywords, drives the honesty."""
    conversation = no_handoff_conversation
    with django_capture_on_commit_callbacks(execute=True):
        message = crm_services.receive_customer_message(
            conversation=conversation, text="Quiero hablar con una persona, por favor"
        )
    assert MessageAnalysis.objects.get(message=message).signals["intent"]["request_human"]
    reply = conversation.messages.get(sender=Message.Sender.AI)
    assert "no human agent available" in reply.text


def test_with_handoff_disabled_an_answerable_request_also_gets_the_answer(
    knowledge, no_handoff_conversation
):
    message = customer_says(
        no_handoff_conversation, "Can a human tell me how many days a refund takes to my card?"
    )
    answer = LocalResponder().answer(conversation=no_handoff_conversation, message=message)
    assert answer.text.startswith("There's no human agent available in this chat")
    assert REFUNDS in answer.text


def test_with_handoff_enabled_the_honesty_line_is_not_used(knowledge, conversation):
    message = customer_says(conversation, "Can a human tell me about refund days to my card?")
    answer = LocalResponder().answer(conversation=conversation, message=message)
    assert "no human agent" not in answer.text
