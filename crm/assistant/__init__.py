"""The AI assistant: answers customers while the conversation's mode is ``ai``.

``take_assistant_turn`` picks the responder (local retrieval, or Claude when the assistant's
backend is ``claude`` and a key is set), stores the answer with its confidence, and never answers
a conversation a human drives: the mode is checked before answering and again, under the
conversation's row lock, when the answer is stored. With handoff enabled the Claude responder
may ask for a person instead of answering (its ``escalate_to_human`` tool); the turn returns
that request and ``escalation.pipeline`` acts on it (this package imports no ``escalation``).
"""

import logging

from django.db import transaction

from crm.errors import ConversationClosed
from crm.models import Conversation, Message

from .local import LocalResponder
from .types import Answer, AssistantTurn

logger = logging.getLogger(__name__)

__all__ = ["Answer", "AssistantTurn", "responder_for", "take_assistant_turn"]


def responder_for(conversation: Conversation):
    from crm.llm import claude_available

    assistant = conversation.assistant
    if assistant is not None and assistant.backend == "claude" and claude_available():
        from .claude import ClaudeResponder

        return ClaudeResponder(fallback=LocalResponder())
    return LocalResponder()


def take_assistant_turn(*, message_id: int, detected_request: bool = False) -> AssistantTurn:
    """Answer one customer message unless someone already answered after it or a human drives.

    Returns the stored reply, or the assistant's request for a person (the Claude tool) for the
    caller to act on: the escalation pipeline decides what a handoff means. ``detected_request``
    is the detector's reading of the message (any language), used for the honest "nobody is
    available" answer when handoff is disabled."""
    from crm import services

    message = (
        Message.objects.select_related("conversation__assistant")
        .filter(pk=message_id, sender=Message.Sender.CUSTOMER)
        .first()
    )
    if message is None:
        return AssistantTurn()
    conversation = message.conversation
    if conversation.mode != Conversation.Mode.AI:
        return AssistantTurn()
    if (
        conversation.messages.filter(id__gt=message.id, is_private_note=False)
        .exclude(sender=Message.Sender.CUSTOMER)
        .exists()
    ):
        return AssistantTurn()  # already answered (a retried task) or someone else spoke
    answer = responder_for(conversation).answer(
        conversation=conversation, message=message, detected_request=detected_request
    )
    if answer.escalate is not None:
        if conversation.assistant is not None and not conversation.assistant.handoff_enabled:
            logger.warning(
                "assistant asked to escalate conversation %s with handoff disabled",
                conversation.pk,
            )
            return AssistantTurn()
        return AssistantTurn(needs_person=answer.escalate)
    try:
        with transaction.atomic():
            return AssistantTurn(
                reply=services.post_ai_reply(
                    conversation=conversation, text=answer.text, confidence=answer.confidence
                )
            )
    except ConversationClosed:
        return AssistantTurn()  # an agent took over while the answer was being written
