"""Handed back with a note: the assistant's next answers take the agent's account into
account — the local responder answers from it, Claude gets it in its system prompt."""

import json

import pytest

from crm.assistant.claude import ClaudeResponder
from crm.assistant.local import LocalResponder
from crm.llm import override_transport
from crm.models import KnowledgeArticle

from ..factories import ConversationFactory
from .test_claude_responder import (  # noqa: F401 (fixture)
    claude_conversation,
    no_retries,
    reply_with,
    say,
    text_block,
)

pytestmark = pytest.mark.django_db

NOTE = "Refunded the duplicate $49 charge today; it reaches the card in 3-5 business days."


def test_the_local_responder_answers_a_question_about_it_from_the_note():
    KnowledgeArticle.objects.create(
        title="Shipping", keywords="shipping delivery parcel", body="We ship in 2 days."
    )
    conversation = ConversationFactory(assistant_note=NOTE)
    message = say(conversation, "customer", "When will the duplicate charge refund reach my card?")
    answer = LocalResponder().answer(conversation=conversation, message=message)
    assert NOTE in answer.text and answer.confidence > 0

    conversation.assistant_note = ""
    conversation.save(update_fields=["assistant_note"])
    answer = LocalResponder().answer(conversation=conversation, message=message)
    assert NOTE not in answer.text


def test_claude_gets_the_note_in_its_system_prompt():
    conversation = claude_conversation()
    conversation.assistant_note = NOTE
    conversation.save(update_fields=["assistant_note"])
    message = say(conversation, "customer", "Is my refund done?")
    transport, seen = reply_with(text_block("Yes — it was refunded today."))
    with override_transport(transport):
        answer = ClaudeResponder().answer(conversation=conversation, message=message)
    assert answer.text == "Yes — it was refunded today."
    system = json.loads(seen[0].content)["system"]
    assert f"<agent_note>\n{NOTE}\n</agent_note>" in system
