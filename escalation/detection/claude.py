"""The Claude backend: one Messages call whose forced tool input is the signals, the decision and
a two-sentence summary for the agent.

The assistant's settings still rule: handoff disabled means nothing escalates, a topic outside
``always_human_topics`` doesn't escalate on its own, and an explicit request is at least ``high``.
Anything unexpected — a timeout, a 429/5xx, a missing or malformed tool call — raises
``ClaudeDetectionError`` and ``detect`` falls back to the local backend.
"""

from __future__ import annotations

import json
import time

import anthropic
from django.conf import settings as django_settings

from escalation.detection.policy import apply_handoff_setting, would_decide
from escalation.detection.signals import empty_signals
from escalation.detection.types import (
    PRIORITIES,
    REASONS,
    TOPICS,
    Decision,
    DetectionResult,
    DetectorSettings,
    Turn,
)

TOOL_NAME = "record_escalation_analysis"
MAX_TOKENS = 1024
CONTEXT_TURNS = 30
_PRIORITY_RANK = {p: i for i, p in enumerate(PRIORITIES)}  # urgent=0 … low=3

TOOL = {
    "name": TOOL_NAME,
    "description": (
        "Record the escalation analysis of the customer's latest message, in the context of the "
        "whole conversation: signals, the decision and a summary for the human agent."
    ),
    "input_schema": {
        "type": "object",
        "properties": {
            "sentiment": {
                "type": "object",
                "properties": {
                    "score": {
                        "type": "number",
                        "minimum": -1,
                        "maximum": 1,
                        "description": "polarity of the latest customer message, -1..1",
                    },
                    "intensity": {
                        "type": "number",
                        "minimum": 0,
                        "maximum": 1,
                        "description": "how upset the customer is now (capitals, repetition, "
                        "profanity, tone building up across turns), 0..1",
                    },
                    "labels": {
                        "type": "array",
                        "items": {"type": "string", "enum": ["frustration", "anger", "confusion"]},
                    },
                },
                "required": ["score", "intensity", "labels"],
            },
            "intent": {
                "type": "object",
                "properties": {
                    "request_human": {
                        "type": "boolean",
                        "description": "the customer explicitly asks for a person (not 'are you "
                        "a bot?', not a travel/user agent, not 'no need for a person')",
                    },
                    "confidence": {"type": "number", "minimum": 0, "maximum": 1},
                },
                "required": ["request_human", "confidence"],
            },
            "complexity": {
                "type": "object",
                "properties": {
                    "topics": {
                        "type": "array",
                        "items": {"type": "string", "enum": list(TOPICS)},
                        "description": "topics that need human authority or judgement",
                    }
                },
                "required": ["topics"],
            },
            "loop": {
                "type": "object",
                "properties": {
                    "count": {
                        "type": "integer",
                        "minimum": 0,
                        "description": "times the customer or the AI repeated themselves, plus "
                        "'I already told you'",
                    }
                },
                "required": ["count"],
            },
            "decision": {
                "type": "object",
                "properties": {
                    "escalate": {"type": "boolean"},
                    "reason": {"type": ["string", "null"], "enum": [*REASONS, None]},
                    "priority": {"type": ["string", "null"], "enum": [*PRIORITIES, None]},
                    "detail": {
                        "type": "string",
                        "description": "one short line for the queue's Reason column",
                    },
                },
                "required": ["escalate", "reason", "priority", "detail"],
            },
            "summary": {
                "type": "string",
                "description": "two sentences for the agent: what the customer wants, what the AI "
                "tried, key facts (order numbers, amounts, dates), why it escalates",
            },
        },
        "required": ["sentiment", "intent", "complexity", "loop", "decision", "summary"],
    },
}


class ClaudeDetectionError(Exception):
    """Claude did not give a usable analysis; the caller falls back to the local backend."""


def system_prompt(settings: DetectorSettings) -> str:
    topics = ", ".join(settings.always_human_topics) or "none"
    return (
        "You watch a customer-support chat between a customer and an AI assistant and decide "
        "whether a human agent must take over now. Judge the customer's LATEST message in the "
        "context of the whole conversation, in any language. Always answer by calling the "
        f"{TOOL_NAME} tool.\n"
        "Reasons, in order of precedence: request (the customer explicitly asks for a person; "
        "priority at least high), complexity (a topic needing human authority: "
        f"{topics}), sentiment (intensity at or above {settings.sentiment_threshold:.2f}), "
        f"loop (repetition count at or above {settings.loop_threshold}), low_confidence (the AI's "
        f"last answer confidence below {settings.confidence_threshold:.2f} and the customer still "
        "needs help). Priorities: urgent, high, normal, low. If nothing applies, escalate is "
        "false and reason and priority are null. Mild grumbling ('ugh, forgot my password "
        "again') needs no person; other senses of the words (a travel agent, a user agent, "
        "'per person', 'no need for a person') are not requests."
    )


def transcript(turns: list[Turn]) -> str:
    lines = []
    for turn in turns[-CONTEXT_TURNS:]:
        label = turn.role
        if turn.role == "assistant" and turn.confidence is not None:
            label += f", confidence {turn.confidence:.2f}"
        lines.append(f"[{label}] {turn.text}")
    return "Conversation so far, oldest first:\n" + "\n".join(lines)


def _number(value, low: float, high: float, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ClaudeDetectionError(f"{where} is not a number")
    if not low <= value <= high:
        raise ClaudeDetectionError(f"{where} {value} outside {low}..{high}")
    return float(value)


def _object(data: dict, key: str) -> dict:
    value = data.get(key)
    if not isinstance(value, dict):
        raise ClaudeDetectionError(f"{key} missing or not an object")
    return value


def parse_tool_input(data) -> tuple[dict, Decision, str]:
    """Validate the tool input; return (signals, Claude's decision, summary)."""
    if not isinstance(data, dict):
        raise ClaudeDetectionError("tool input is not an object")
    sentiment, intent = _object(data, "sentiment"), _object(data, "intent")
    complexity, loop, raw = (
        _object(data, "complexity"),
        _object(data, "loop"),
        _object(data, "decision"),
    )
    labels = sentiment.get("labels")
    if not isinstance(labels, list) or any(
        label not in ("frustration", "anger", "confusion") for label in labels
    ):
        raise ClaudeDetectionError("sentiment.labels invalid")
    topics = complexity.get("topics")
    if not isinstance(topics, list) or any(t not in TOPICS for t in topics):
        raise ClaudeDetectionError("complexity.topics invalid")
    if not isinstance(intent.get("request_human"), bool):
        raise ClaudeDetectionError("intent.request_human is not a boolean")
    count = loop.get("count")
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise ClaudeDetectionError("loop.count is not a non-negative integer")
    escalate, reason, priority = raw.get("escalate"), raw.get("reason"), raw.get("priority")
    detail, summary = raw.get("detail"), data.get("summary")
    if not isinstance(escalate, bool):
        raise ClaudeDetectionError("decision.escalate is not a boolean")
    if reason not in (*REASONS, None) or priority not in (*PRIORITIES, None):
        raise ClaudeDetectionError("decision reason/priority not a known code")
    if escalate and (reason is None or priority is None):
        raise ClaudeDetectionError("an escalation needs a reason and a priority")
    if not isinstance(detail, str) or not isinstance(summary, str) or not summary.strip():
        raise ClaudeDetectionError("decision.detail or summary missing")

    signals = empty_signals()
    signals["sentiment"].update(
        score=_number(sentiment.get("score"), -1, 1, "sentiment.score"),
        intensity=_number(sentiment.get("intensity"), 0, 1, "sentiment.intensity"),
        labels=labels,
    )
    signals["intent"].update(
        request_human=intent["request_human"],
        confidence=_number(intent.get("confidence"), 0, 1, "intent.confidence"),
        source="claude",
    )
    signals["complexity"]["topics"] = topics
    signals["loop"]["count"] = count
    if not escalate:
        reason = priority = None
    decision = Decision(escalate, reason, priority, " ".join(detail.split())[:200])
    return signals, decision, " ".join(summary.split())


def _confidence_signal(turns: list[Turn], settings: DetectorSettings) -> dict:
    confidences = [
        t.confidence for t in turns if t.role == "assistant" and t.confidence is not None
    ][-3:]
    return {
        "last": confidences[-1] if confidences else None,
        "recent_low": sum(1 for c in confidences if c < settings.confidence_threshold),
        "recent": confidences,
    }


def enforce_settings(signals: dict, decision: Decision, settings: DetectorSettings) -> Decision:
    """The assistant's settings over Claude's judgement (before the handoff switch)."""
    if decision.reason == "complexity" and not any(
        t in settings.always_human_topics for t in signals["complexity"]["topics"]
    ):
        return would_decide(signals, settings)  # the topic isn't one this assistant hands off
    if decision.reason == "request" and _PRIORITY_RANK[decision.priority] > _PRIORITY_RANK["high"]:
        return Decision(decision.escalate, decision.reason, "high", decision.detail)
    return decision


def detect_claude(
    turns: list[Turn], settings: DetectorSettings, started: float | None = None
) -> DetectionResult:
    from crm.llm import anthropic_client

    started = time.perf_counter() if started is None else started
    try:
        response = anthropic_client().messages.create(
            model=django_settings.ANTHROPIC_MODEL,
            max_tokens=MAX_TOKENS,
            system=system_prompt(settings),
            tools=[TOOL],
            tool_choice={"type": "tool", "name": TOOL_NAME},
            messages=[{"role": "user", "content": transcript(turns)}],
        )
    except anthropic.APIError as exc:  # timeouts, connection errors, 4xx/5xx after retries
        raise ClaudeDetectionError(f"{type(exc).__name__}: {exc}") from exc
    blocks = [
        b
        for b in response.content
        if getattr(b, "type", None) == "tool_use" and getattr(b, "name", None) == TOOL_NAME
    ]
    if not blocks:
        raise ClaudeDetectionError(f"no {TOOL_NAME} call (stop_reason {response.stop_reason})")
    data = blocks[0].input
    if isinstance(data, str):  # some proxies hand back the JSON as a string
        try:
            data = json.loads(data)
        except ValueError as exc:
            raise ClaudeDetectionError("tool input is not JSON") from exc
    signals, decision, summary = parse_tool_input(data)
    signals["confidence"] = _confidence_signal(turns, settings)
    signals["claude_decision"] = {
        "escalate": decision.escalate,
        "reason": decision.reason,
        "priority": decision.priority,
    }
    preview = enforce_settings(signals, decision, settings)
    return DetectionResult(
        signals=signals,
        decision=apply_handoff_setting(preview, settings),
        would_escalate=preview.escalate,
        summary=summary,
        backend="claude",
        duration_ms=(time.perf_counter() - started) * 1000,
    )
