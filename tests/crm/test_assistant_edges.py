"""Edges of the assistant: notes don't silence it, "???" is not small talk, and any Claude
failure — not only API errors — falls back to the local answer."""

import pytest

from crm.assistant.local import small_talk_answer
from crm.llm import override_transport
from crm.models import KnowledgeArticle, Message
from escalation.pipeline import answer_customer_message
from tests.factories import AssistantFactory, ChannelFactory, ConversationFactory

pytestmark = pytest.mark.django_db

REFUNDS = "Refunds reach your card within 5 business days."


@pytest.fixture
def knowledge(db):
    KnowledgeArticle.objects.create(
        title="Refund timing", keywords="refund money back card days", body=REFUNDS
    )


def say(conversation, sender, text, **fields) -> Message:
    return Message.objects.create(
        conversation=conversation,
        channel=conversation.channel,
        sender=sender,
        text=text,
        **fields,
    )


def test_a_private_note_after_the_question_does_not_silence_the_assistant(knowledge, agent):
    conversation = ConversationFactory()
    question = say(conversation, "customer", "How many days until my refund is on my card?")
    say(conversation, "agent", "Watching this one", author=agent, is_private_note=True)
    reply = answer_customer_message(message_id=question.pk)
    assert reply is not None and reply.text == REFUNDS


@pytest.mark.parametrize("text", ["???", "what is it?", "😡😡😡"])
def test_a_message_without_content_words_is_not_small_talk(text):
    assert small_talk_answer(text) is None


@pytest.mark.parametrize("text", ["hi", "thanks!", "ok great"])
def test_greetings_and_thanks_are_small_talk(text):
    assert small_talk_answer(text).confidence is None


def test_an_unexpected_failure_inside_the_claude_call_falls_back_to_the_local_answer(knowledge):
    conversation = ConversationFactory(
        channel=ChannelFactory(assistant=AssistantFactory(backend="claude"))
    )
    question = say(conversation, "customer", "How many days until my refund is on my card?")

    def transport_that_breaks(request):
        raise RuntimeError("a bug in a transport or the SDK")

    import httpx2

    with override_transport(httpx2.MockTransport(transport_that_breaks)):
        reply = answer_customer_message(message_id=question.pk)
    assert reply.text == REFUNDS
