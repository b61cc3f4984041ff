"""The AI assistant: answers customers while the conversation's mode is ``ai``.

``answer_customer_message`` picks the responder (local retrieval, or Claude when the assistant's
backend is ``claude`` and a key is set), stores the answer with its confidence, and never answers
a conversation a human drives: the mode is checked before answering and again, under the
conversation's row lock, when the answer is stored. With handoff enabled the Claude responder
may escalate instead of answering (its ``escalate_to_human`` tool).
"""

import logging

from django.db import transaction

from crm.errors import ConversationClosed
from crm.models import Conversation, Message

from .local import LocalResponder
from .types import Answer

logger = logging.getLogger(__name__)

__all__ = ["Answer", "answer_customer_message", "responder_for"]


def responder_for(conversation: Conversation):
    from crm.llm import claude_available

    assistant = conversation.assistant
    if assistant is not None and assistant.backend == "claude" and claude_available():
        from .claude import ClaudeResponder

        return ClaudeResponder(fallback=LocalResponder())
    return LocalResponder()


def answer_customer_message(*, message_id: int) -> Message | None:
    """Answer one customer message unless someone already answered after it or a human drives."""
    from crm import services

    message = (
        Message.objects.select_related("conversation__assistant")
        .filter(pk=message_id, sender=Message.Sender.CUSTOMER)
        .first()
    )
    if message is None:
        return None
    conversation = message.conversation
    if conversation.mode != Conversation.Mode.AI:
        return None
    if (
        conversation.messages.filter(id__gt=message.id, is_private_note=False)
        .exclude(sender=Message.Sender.CUSTOMER)
        .exists()
    ):
        return None  # already answered (a retried task) or someone else spoke
    answer = responder_for(conversation).answer(conversation=conversation, message=message)
    if answer.escalate is not None:
        _escalate_from_assistant(conversation, answer)
        return None
    try:
        with transaction.atomic():
            return services.post_ai_reply(
                conversation=conversation, text=answer.text, confidence=answer.confidence
            )
    except ConversationClosed:
        return None  # an agent took over while the answer was being written


ASSISTANT_PRIORITY = {"request": "high", "sentiment": "high"}  # else normal


def _escalate_from_assistant(conversation: Conversation, answer: Answer) -> None:
    """The assistant asked for a person (the Claude tool). Never with handoff disabled; refused
    quietly if an agent or a close got there first."""
    from escalation import services
    from escalation.errors import InvalidTransition
    from escalation.models import Escalation

    if conversation.assistant is not None and not conversation.assistant.handoff_enabled:
        logger.warning(
            "assistant asked to escalate conversation %s with handoff disabled", conversation.pk
        )
        return
    try:
        services.escalate_conversation(
            conversation=conversation,
            reason=answer.escalate.reason,
            priority=ASSISTANT_PRIORITY.get(answer.escalate.reason, "normal"),
            triggered_by=Escalation.Trigger.ASSISTANT,
            detail=answer.escalate.detail,
            summary=answer.escalate.summary,
        )
    except InvalidTransition:
        logger.info("conversation %s changed hands before the assistant escalated", conversation.pk)
