"""crm.selectors: the customer-token check and what a customer may read."""

import pytest

from crm import selectors
from crm.models import Message

from ..factories import AgentFactory, ConversationFactory

pytestmark = pytest.mark.django_db


def test_the_customer_token_opens_its_own_conversation_only():
    conversation = ConversationFactory()
    other = ConversationFactory(channel=conversation.channel)
    found = selectors.conversation_for_customer_token(conversation.pk, conversation.customer_token)
    assert found == conversation
    assert selectors.conversation_for_customer_token(conversation.pk, other.customer_token) is None
    assert selectors.conversation_for_customer_token(conversation.pk, "") is None
    assert selectors.conversation_for_customer_token(conversation.pk, None) is None
    assert selectors.conversation_for_customer_token(conversation.pk, "\udcff") is None
    assert selectors.conversation_for_customer_token(999999, conversation.customer_token) is None


def test_customer_messages_after_leaves_out_private_notes_oldest_first_within_the_limit():
    conversation = ConversationFactory()
    agent = AgentFactory()
    ids = {}
    for text, private in [("a", False), ("note", True), ("b", False), ("c", False)]:
        ids[text] = Message.objects.create(
            conversation=conversation,
            channel=conversation.channel,
            sender="agent",
            author=agent,
            text=text,
            is_private_note=private,
        ).pk
    other = ConversationFactory()  # another conversation's messages never leak in
    Message.objects.create(
        conversation=other, channel=other.channel, sender="customer", text="not yours"
    )

    def texts(rows):
        return [m.text for m in rows]

    assert texts(selectors.customer_messages_after(conversation.pk, 0, 10)) == ["a", "b", "c"]
    assert texts(selectors.customer_messages_after(conversation.pk, ids["a"], 10)) == ["b", "c"]
    assert texts(selectors.customer_messages_after(conversation.pk, 0, 2)) == ["a", "b"]
    assert texts(selectors.staff_messages_after(conversation.pk, 0, 10)) == ["a", "note", "b", "c"]
