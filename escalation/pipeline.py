"""From a stored customer message to a decision: detect, record, escalate or let the AI answer."""

import logging

from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from crm import logcontext, metrics
from crm.assistant import take_assistant_turn
from crm.models import Conversation, Message

from . import services
from .detection import DetectorSettings, detect, prepare_detection
from .errors import InvalidTransition
from .models import Escalation, MessageAnalysis, Priority
from .routing.services import raise_priority_on_worse_sentiment
from .selectors import detection_turns

logger = logging.getLogger(__name__)


def detector_settings(assistant) -> DetectorSettings:
    if assistant is None:
        return DetectorSettings()
    return DetectorSettings(
        handoff_enabled=assistant.handoff_enabled,
        backend=assistant.backend,
        sentiment_threshold=assistant.sentiment_threshold,
        confidence_threshold=assistant.confidence_threshold,
        loop_threshold=assistant.loop_threshold,
        always_human_topics=tuple(assistant.always_human_topics or ()),
        sensitivity=assistant.sensitivity,
        claude_band=(assistant.claude_band_low, assistant.claude_band_high),
    )


def _escalate_from_detection(conversation: Conversation, result) -> bool:
    """Escalate (or raise the active escalation's priority). An agent already driving the
    conversation with nothing open, or a closed conversation, is left alone: the service
    refuses under its lock and this analysis is still stored."""
    decision = result.decision
    try:  # the service is atomic: a refusal rolls back to its own savepoint, not further
        services.escalate_conversation(
            conversation=conversation,
            reason=decision.reason,
            priority=Priority.from_code(decision.priority or "normal"),
            triggered_by=Escalation.Trigger.DETECTION,
            detail=decision.detail,
            # Claude's account of the problem heads the card; the local card is built there.
            summary=result.summary if result.backend == "claude" else "",
            signals=result.signals,
        )
    except InvalidTransition:
        return False
    return True


def analyze_and_act(*, message_id: int, act: bool = True) -> MessageAnalysis | None:
    """Analyse one customer message exactly once, escalate if the decision says so, else let
    the assistant answer. Safe to run twice or in two workers at once: the analysis row is
    unique per message, and only the run that stored it acts. ``act=False`` only records the
    analysis (seeding history that already happened)."""
    from .tasks import answer_customer

    message = (
        Message.objects.select_related("conversation__assistant")
        .filter(pk=message_id, sender=Message.Sender.CUSTOMER)
        .annotate(analysed=Exists(MessageAnalysis.objects.filter(message_id=OuterRef("pk"))))
        .first()
    )
    if message is None or message.analysed:  # one query, on the way to detection
        return None
    conversation = message.conversation
    logcontext.bind_conversation(conversation.pk)
    turns = detection_turns(conversation, message_id=message.pk)
    result = detect(turns, detector_settings(conversation.assistant))
    metrics.detector_latency.labels(result.backend).observe(result.duration_ms / 1000)
    decision = result.decision
    analysis = None
    try:
        # The analysis is the transaction's first write, so a duplicate (another worker stored
        # this message's analysis first) can end the whole transaction: no savepoint needed.
        with transaction.atomic():
            analysis = MessageAnalysis.objects.create(
                message=message,
                backend=result.backend,
                signals=result.signals,
                should_escalate=decision.escalate,
                would_escalate=result.would_escalate,
                reason=decision.reason or "",
                priority=Priority.from_code(decision.priority) if decision.priority else None,
                detail=decision.detail[:300],
                summary=result.summary,
                duration_ms=result.duration_ms,
            )
            logger.info(
                "message %s analysed by %s in %.1f ms: %s",
                message_id,
                result.backend,
                result.duration_ms,
                f"escalate ({decision.reason})" if decision.escalate else "no escalation",
            )
            if not act:
                return analysis
            if conversation.mode == Conversation.Mode.AWAITING_AGENT:
                # Waiting and more upset than before: priority rises at once (routing's rule).
                raise_priority_on_worse_sentiment(
                    conversation_id=conversation.pk,
                    intensity=float((result.signals.get("sentiment") or {}).get("intensity") or 0),
                )
            escalated = False
            if decision.escalate:
                escalated = _escalate_from_detection(conversation, result)
            if escalated:  # registered after the handoff's broadcasts, so it times them too
                transaction.on_commit(
                    lambda: metrics.handoff_latency.observe(
                        (timezone.now() - message.created_at).total_seconds()
                    )
                )
            if not escalated and conversation.mode == Conversation.Mode.AI:
                transaction.on_commit(lambda: answer_customer.delay(message_id), robust=True)
    except IntegrityError:
        if analysis is None:
            return None  # another worker stored this message's analysis first
        raise
    return analysis


# The priority of an escalation the assistant asked for (its Claude tool); else normal.
ASSISTANT_PRIORITY = {"request": "high", "sentiment": "high"}


def answer_customer_message(*, message_id: int) -> Message | None:
    """Let the assistant take its turn on a customer message, and hand the conversation to a
    person when the assistant asks for one. Returns the AI's stored reply, if it answered."""
    signals = (
        MessageAnalysis.objects.filter(message_id=message_id)
        .values_list("signals", flat=True)
        .first()
    )
    detected_request = bool(((signals or {}).get("intent") or {}).get("request_human"))
    turn = take_assistant_turn(message_id=message_id, detected_request=detected_request)
    if turn.needs_person is not None:
        _escalate_from_assistant(message_id, turn.needs_person)
    if turn.reply is not None:
        # Embedded now, after the reply has gone out and while the customer reads it: the
        # analysis of their next message (loop check) finds it in this process's encoder cache.
        transaction.on_commit(lambda: prepare_detection([turn.reply.text]), robust=True)
    return turn.reply


def _escalate_from_assistant(message_id: int, request) -> None:
    """Refused quietly if an agent or a close got there first."""
    conversation = Conversation.objects.get(messages__id=message_id)
    try:
        services.escalate_conversation(
            conversation=conversation,
            reason=request.reason,
            priority=ASSISTANT_PRIORITY.get(request.reason, "normal"),
            triggered_by=Escalation.Trigger.ASSISTANT,
            detail=request.detail,
            summary=request.summary,
        )
    except InvalidTransition:
        logger.info("conversation %s changed hands before the assistant escalated", conversation.pk)
