"""The AI assistant: answers customers while the conversation's mode is ``ai``.

``answer_customer_message`` picks the responder (local retrieval, or Claude when configured),
stores the answer with its confidence, and never answers a conversation a human drives.
"""

import logging

from django.db import transaction

from crm.errors import ConversationClosed
from crm.models import Conversation, Message

from .local import LocalResponder
from .types import Answer

logger = logging.getLogger(__name__)

__all__ = ["Answer", "answer_customer_message"]


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

    message = Message.objects.select_related("conversation__assistant").get(pk=message_id)
    conversation = message.conversation
    if conversation.mode != Conversation.Mode.AI:
        return None
    if conversation.messages.filter(id__gt=message.id).exclude(
        sender=Message.Sender.CUSTOMER
    ).exists():
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


def _escalate_from_assistant(conversation: Conversation, answer: Answer) -> None:
    from escalation import services
    from escalation.models import Escalation, Priority

    services.escalate_conversation(
        conversation=conversation,
        reason=answer.escalate.reason,
        priority=Priority.HIGH if answer.escalate.reason == "request" else Priority.NORMAL,
        triggered_by=Escalation.Trigger.ASSISTANT,
        detail=answer.escalate.detail,
        summary=answer.escalate.summary,
    )
