"""The Claude responder through the real anthropic SDK over httpx.MockTransport (no network)."""

import json

import pytest

from crm.assistant import responder_for
from crm.assistant.claude import TOOL_NAME, ClaudeResponder
from crm.assistant.local import LocalResponder
from crm.llm import override_transport
from crm.models import Conversation, KnowledgeArticle, Message
from escalation.models import Escalation
from escalation.pipeline import answer_customer_message
from tests.factories import AssistantFactory, ChannelFactory, ConversationFactory
from tickets.models import Ticket

try:  # the HTTP library the installed anthropic SDK is built on (2.x: httpx2)
    import httpx2 as httpx
except ImportError:  # pragma: no cover - older SDKs use httpx itself
    import httpx

pytestmark = pytest.mark.django_db


REFUNDS = "Refunds go back to your card within 5 business days of approval."


@pytest.fixture(autouse=True)
def no_retries(settings):
    settings.ANTHROPIC_MAX_RETRIES = 0
    settings.ANTHROPIC_MODEL = "claude-test-model"
    settings.ANTHROPIC_API_KEY = "sk-test"


@pytest.fixture
def knowledge(db):
    KnowledgeArticle.objects.create(
        title="Refund timing", keywords="refund money back card days", body=REFUNDS
    )
    KnowledgeArticle.objects.create(
        title="Shipping", keywords="shipping delivery parcel", body="We ship in 2 days."
    )


def claude_conversation(*, handoff_enabled=True) -> Conversation:
    assistant = AssistantFactory(
        backend="claude", handoff_enabled=handoff_enabled, instructions="Call customers 'friend'."
    )
    return ConversationFactory(channel=ChannelFactory(assistant=assistant))


def say(conversation, sender, text) -> Message:
    return Message.objects.create(
        conversation=conversation, channel=conversation.channel, sender=sender, text=text
    )


def reply_with(*blocks, stop_reason="end_turn"):
    """A transport answering every call with one Messages API response; records requests."""
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(
            200,
            json={
                "id": "msg_test",
                "type": "message",
                "role": "assistant",
                "model": "claude-test-model",
                "content": list(blocks),
                "stop_reason": stop_reason,
                "stop_sequence": None,
                "usage": {"input_tokens": 10, "output_tokens": 5},
            },
        )

    return httpx.MockTransport(handler), seen


def text_block(text):
    return {"type": "text", "text": text}


def tool_block(**tool_input):
    return {"type": "tool_use", "id": "toolu_1", "name": TOOL_NAME, "input": tool_input}


def test_the_request_carries_the_knowledge_base_the_history_and_the_escalate_tool(knowledge):
    conversation = claude_conversation()
    say(conversation, "customer", "hi")
    say(conversation, "ai", "Hello! How can I help?")
    say(conversation, "system", "a notice the model need not see")
    message = say(conversation, "customer", "How many days until my refund is on my card?")
    transport, seen = reply_with(text_block("Within 5 business days, friend."))
    with override_transport(transport):
        answer = ClaudeResponder().answer(conversation=conversation, message=message)

    assert answer.text == "Within 5 business days, friend." and answer.escalate is None
    assert answer.confidence >= 0.45  # grounded on a strong knowledge-base match
    (request,) = seen
    assert request.url.path == "/v1/messages"
    credentials = request.headers.get("authorization", "") + request.headers.get("x-api-key", "")
    assert "sk-test" in credentials
    body = json.loads(request.content)
    assert body["model"] == "claude-test-model" and body["max_tokens"] > 0
    assert REFUNDS in body["system"] and "Call customers 'friend'." in body["system"]
    assert body["messages"] == [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "Hello! How can I help?"},
        {"role": "user", "content": "How many days until my refund is on my card?"},
    ]
    (tool,) = body["tools"]
    assert tool["name"] == "escalate_to_human"
    assert set(tool["input_schema"]["required"]) == {"reason", "summary"}
    assert "request" in tool["input_schema"]["properties"]["reason"]["enum"]


def test_consecutive_turns_merge_and_the_history_starts_with_the_customer(knowledge):
    conversation = claude_conversation()
    say(conversation, "ai", "Welcome!")
    say(conversation, "customer", "hello")
    message = say(conversation, "customer", "refund days?")
    transport, seen = reply_with(text_block("5 days."))
    with override_transport(transport):
        ClaudeResponder().answer(conversation=conversation, message=message)
    assert json.loads(seen[0].content)["messages"] == [
        {"role": "user", "content": "hello\n\nrefund days?"}
    ]


def test_a_text_reply_is_stored_as_the_ai_message(knowledge):
    conversation = claude_conversation()
    message = say(conversation, "customer", "How many days until my refund is on my card?")
    transport, _seen = reply_with(text_block("About 5 business days."))
    with override_transport(transport):
        assert isinstance(responder_for(conversation), ClaudeResponder)
        reply = answer_customer_message(message_id=message.pk)
    assert reply.sender == "ai" and reply.text == "About 5 business days."
    assert reply.confidence >= 0.45


def test_a_greeting_answered_by_claude_carries_no_confidence(knowledge):
    conversation = claude_conversation()
    message = say(conversation, "customer", "Hello!")
    transport, _seen = reply_with(text_block("Hello, friend! How can I help?"))
    with override_transport(transport):
        reply = answer_customer_message(message_id=message.pk)
    assert reply.text == "Hello, friend! How can I help?" and reply.confidence is None


def test_the_escalate_tool_hands_the_conversation_to_the_queue(knowledge, agent):
    conversation = claude_conversation()
    say(conversation, "customer", "I was charged twice for order 5512, $49 each")
    message = say(conversation, "customer", "I need this sorted by someone today")
    summary = "Customer charged twice ($49) for order 5512; wants a refund today."
    transport, _seen = reply_with(
        text_block("Let me get a colleague."),
        tool_block(reason="complexity", summary=summary),
        stop_reason="tool_use",
    )
    with override_transport(transport):
        assert answer_customer_message(message_id=message.pk) is None

    escalation = Escalation.objects.get(conversation=conversation)
    assert escalation.triggered_by == Escalation.Trigger.ASSISTANT
    # Claude's account heads the handoff card; the rest is read from the conversation.
    assert (escalation.reason, escalation.card["problem"]) == ("complexity", summary)
    assert escalation.summary.startswith(f"Problem: {summary}\n")
    assert {"5512", "$49"} <= {fact["value"] for fact in escalation.card["facts"]}
    assert {"kind": "order", "label": "order number", "value": "5512"} in escalation.card[
        "dont_ask"
    ]
    assert Ticket.objects.get(escalation=escalation).description == escalation.summary
    conversation.refresh_from_db()
    assert conversation.mode == Conversation.Mode.AWAITING_AGENT
    assert not conversation.messages.filter(sender="ai").exists()


@pytest.mark.parametrize(
    "failure",
    [
        lambda request: httpx.Response(500, json={"type": "error", "error": {"type": "api_error"}}),
        lambda request: httpx.Response(
            429, json={"type": "error", "error": {"type": "rate_limit_error"}}
        ),
        lambda request: (_ for _ in ()).throw(httpx.ReadTimeout("slow", request=request)),
        lambda request: httpx.Response(200, content=b"not json"),
    ],
    ids=["server error", "rate limited", "timeout", "garbage"],
)
def test_a_failing_call_falls_back_to_the_local_answer(knowledge, failure):
    conversation = claude_conversation()
    message = say(conversation, "customer", "How many days until my refund is on my card?")
    with override_transport(httpx.MockTransport(failure)):
        reply = answer_customer_message(message_id=message.pk)
    assert reply.text == REFUNDS  # the local responder's retrieval answer


@pytest.mark.parametrize(
    "blocks",
    [
        [],
        [text_block("   ")],
        [tool_block(reason="boredom", summary="x")],
        [tool_block(summary="no reason")],
    ],
    ids=["no content", "blank text", "unknown reason", "missing reason"],
)
def test_an_unusable_reply_falls_back_to_the_local_answer(knowledge, blocks):
    conversation = claude_conversation()
    message = say(conversation, "customer", "How many days until my refund is on my card?")
    transport, _seen = reply_with(*blocks)
    with override_transport(transport):
        answer = ClaudeResponder(fallback=LocalResponder()).answer(
            conversation=conversation, message=message
        )
    assert answer.text == REFUNDS and answer.escalate is None
    assert not Escalation.objects.exists()


def test_with_handoff_disabled_claude_gets_no_tool_and_is_told_no_person_is_available(
    knowledge,
):
    conversation = claude_conversation(handoff_enabled=False)
    message = say(conversation, "customer", "Get me a human")
    transport, seen = reply_with(text_block("No person is available here, but I can help."))
    with override_transport(transport):
        reply = answer_customer_message(message_id=message.pk)
    body = json.loads(seen[0].content)
    assert "tools" not in body
    assert "No human agent is available in this chat" in body["system"]
    assert reply.text.startswith("No person is available here")


def test_with_handoff_disabled_a_tool_call_never_escalates(knowledge):
    conversation = claude_conversation(handoff_enabled=False)
    message = say(conversation, "customer", "Get me a human")
    transport, _seen = reply_with(tool_block(reason="request", summary="wants a person"))
    with override_transport(transport):
        reply = answer_customer_message(message_id=message.pk)
    assert not Escalation.objects.exists()
    assert "no human agent available in this chat" in reply.text


def test_without_a_key_or_transport_the_local_responder_answers(settings, knowledge):
    settings.ANTHROPIC_API_KEY = ""
    assert isinstance(responder_for(claude_conversation()), LocalResponder)
