"""The Claude responder: the knowledge base's best matches as context, and (handoff enabled) an
``escalate_to_human`` tool so the assistant knows it can hand the customer to a person.

Confidence stays the knowledge base's match strength for the question (as in the local
responder): it measures how grounded the answer is and feeds the low-confidence signal.
Any failure — timeout, rate limit, 5xx, an empty or malformed reply — falls back to the local
responder; the customer always gets an answer.
"""

import logging

import anthropic
from django.conf import settings

from crm.models import Message

from .local import (
    LocalResponder,
    articles_for,
    best_articles,
    handoff_disabled,
    small_talk_answer,
)
from .types import Answer, EscalationRequest

logger = logging.getLogger(__name__)

TOOL_NAME = "escalate_to_human"
REASONS = ("request", "sentiment", "complexity", "loop", "low_confidence")
MAX_TOKENS = 800
CONTEXT_MESSAGES = 20
CONTEXT_ARTICLES = 3

ESCALATE_TOOL = {
    "name": TOOL_NAME,
    "description": (
        "Hand this conversation to a human support agent. Use it when the customer asks for a "
        "person, is upset, the issue needs a human's authority or judgement (refunds, billing "
        "disputes, account security, legal, privacy, contracts), the conversation is going in "
        "circles, or the knowledge base does not let you answer well. A person takes over; "
        "you stop answering."
    ),
    "input_schema": {
        "type": "object",
        "properties": {
            "reason": {
                "type": "string",
                "enum": list(REASONS),
                "description": "request: asked for a person; sentiment: upset; complexity: "
                "needs human authority; loop: going in circles; low_confidence: you can't "
                "answer from the knowledge base",
            },
            "summary": {
                "type": "string",
                "description": "For the agent, two or three sentences: what the customer wants, "
                "what you tried, facts confirmed (order numbers, amounts, dates), why a person "
                "is needed.",
            },
        },
        "required": ["reason", "summary"],
    },
}

_ROLE = {
    Message.Sender.CUSTOMER: "user",
    Message.Sender.AI: "assistant",
    Message.Sender.AGENT: "assistant",
}


class ClaudeReplyError(Exception):
    """Claude gave nothing usable; the responder falls back to the local one."""


def system_prompt(assistant, matches, *, agent_note: str = "") -> str:
    parts = [
        "You are the customer-support assistant in a live chat. Be brief, warm and concrete. "
        "Answer from the knowledge base below; if it does not cover the question, say you are "
        "not sure rather than inventing policies, prices or dates."
    ]
    if assistant is not None and assistant.instructions.strip():
        parts.append("Instructions from the business:\n" + assistant.instructions.strip())
    if matches:
        articles = "\n\n".join(
            f"<article title={article.title!r}>\n{article.body}\n</article>"
            for _strength, article in matches
        )
        parts.append("Knowledge base, best matches for the customer's message:\n" + articles)
    else:
        parts.append("The knowledge base has nothing on this message.")
    if agent_note.strip():
        parts.append(
            "A human agent handled this conversation and handed it back to you with this note "
            "on what was done; take it into account, and don't undo or contradict it:\n"
            f"<agent_note>\n{agent_note.strip()}\n</agent_note>"
        )
    if handoff_disabled(assistant):
        parts.append(
            "No human agent is available in this chat. Never promise or offer a person. If the "
            "customer asks for one, say honestly that no person is available here, and offer "
            "what you can do from the knowledge base."
        )
    else:
        parts.append(
            f"Human agents are available: call the {TOOL_NAME} tool to hand over when the "
            "customer asks for a person, is upset, needs a human's authority, is going in "
            "circles, or you cannot answer from the knowledge base."
        )
    return "\n\n".join(parts)


def conversation_messages(conversation, message) -> list[dict]:
    """The chat so far (up to ``message``) as alternating user/assistant turns, user first."""
    rows = list(
        Message.objects.filter(
            conversation_id=conversation.pk, id__lte=message.pk, is_private_note=False
        )
        .exclude(sender=Message.Sender.SYSTEM)
        .order_by("-id")
        .values_list("sender", "text")[:CONTEXT_MESSAGES]
    )[::-1]
    turns: list[dict] = []
    for sender, text in rows:
        role = _ROLE[sender]
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"] += "\n\n" + text
        else:
            turns.append({"role": role, "content": text})
    while turns and turns[0]["role"] != "user":
        turns.pop(0)
    if not turns or turns[-1]["role"] != "user":
        raise ClaudeReplyError("no customer message to answer")
    return turns


def build_request(conversation, message, matches) -> dict:
    request = {
        "model": settings.ANTHROPIC_MODEL,
        "max_tokens": MAX_TOKENS,
        "system": system_prompt(
            conversation.assistant, matches, agent_note=conversation.assistant_note
        ),
        "messages": conversation_messages(conversation, message),
    }
    if not handoff_disabled(conversation.assistant):
        request["tools"] = [ESCALATE_TOOL]
    return request


def parse_reply(response, *, confidence: float | None, may_escalate: bool) -> Answer:
    if not isinstance(response, anthropic.types.Message):
        raise ClaudeReplyError(f"not a message: {type(response).__name__}")
    for block in response.content:
        if block.type == "tool_use" and block.name == TOOL_NAME:
            if not may_escalate:
                raise ClaudeReplyError("escalation asked for with handoff disabled")
            data = block.input if isinstance(block.input, dict) else {}
            reason, summary = data.get("reason"), data.get("summary")
            if reason not in REASONS or not isinstance(summary, str):
                raise ClaudeReplyError(f"bad {TOOL_NAME} input: {data!r}")
            return Answer(
                text="",
                confidence=confidence,
                escalate=EscalationRequest(
                    reason=reason,
                    summary=summary.strip()[:2000],
                    detail=f"Assistant handed over: {reason.replace('_', ' ')}",
                ),
            )
    text = "\n\n".join(b.text.strip() for b in response.content if b.type == "text").strip()
    if not text:
        raise ClaudeReplyError(f"empty reply (stop reason {response.stop_reason})")
    return Answer(text=text, confidence=confidence)


class ClaudeResponder:
    def __init__(self, fallback=None):
        self.fallback = fallback if fallback is not None else LocalResponder()

    def answer(self, *, conversation, message, detected_request: bool = False) -> Answer:
        from crm.llm import anthropic_client

        matches = best_articles(message.text, articles_for(conversation.assistant))[
            :CONTEXT_ARTICLES
        ]
        confidence = matches[0][0] if matches else 0.0
        if small_talk_answer(message.text) is not None:
            confidence = None  # a greeting or thanks: nothing to be unsure about
        try:
            request = build_request(conversation, message, matches)
            response = anthropic_client().messages.create(**request)
            return parse_reply(
                response,
                confidence=confidence,
                may_escalate=not handoff_disabled(conversation.assistant),
            )
        except Exception as exc:  # any failure: the customer still gets the local answer
            logger.warning("Claude responder failed, answering locally: %r", exc)
            return self.fallback.answer(
                conversation=conversation, message=message, detected_request=detected_request
            )
