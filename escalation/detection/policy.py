"""Policy: signals + the assistant's settings → one decision.

Reasons are checked in a fixed order — request, complexity, sentiment, loop, low_confidence — and
the first that holds is the reason; the others can still raise the priority. An explicit request
escalates at once with at least ``high``. With handoff disabled nothing escalates, but the decision
keeps the reason and priority it would have had (``would_escalate`` in the result), so managers can
see what the assistant kept to itself.
"""

from __future__ import annotations

from escalation.detection.types import Decision, DetectorSettings

URGENT_TOPICS = ("account_security", "legal")
TOPIC_LABELS = {
    "refund": "refund",
    "billing_dispute": "billing dispute",
    "account_security": "account security",
    "legal": "legal threat",
    "privacy": "privacy / data request",
    "contract": "contract / compliance",
}


def _(message: str) -> str:
    """gettext when Django is configured (the app), the message itself otherwise (scripts)."""
    try:
        from django.conf import settings

        if settings.configured:
            from django.utils.translation import gettext

            return gettext(message)
    except Exception:  # noqa: BLE001 - translation must never break detection
        pass
    return message


def decide(signals: dict, settings: DetectorSettings) -> Decision:
    return apply_handoff_setting(would_decide(signals, settings), settings)


def apply_handoff_setting(decision: Decision, settings: DetectorSettings) -> Decision:
    """With handoff disabled, keep the reason and priority for the record but don't escalate."""
    if decision.escalate and not settings.handoff_enabled:
        return Decision(
            False,
            decision.reason,
            decision.priority,
            _("Handoff disabled; would have escalated: %s") % decision.detail,
        )
    return decision


def would_decide(signals: dict, settings: DetectorSettings) -> Decision:
    sentiment = signals["sentiment"]
    intensity = sentiment["intensity"]
    angry = intensity >= settings.sentiment_threshold
    very_angry = intensity >= max(0.85, settings.sentiment_threshold)
    topics = [t for t in signals["complexity"]["topics"] if t in settings.always_human_topics]
    loop = signals["loop"]
    confidence = signals["confidence"]
    feeling = ", ".join(sentiment["labels"]) or _("negative")

    if signals["intent"]["request_human"]:
        urgent = very_angry or any(t in URGENT_TOPICS for t in topics)
        detail = _("Asked for a person")
        if angry:
            detail += f" ({feeling})"
        elif topics:
            detail += f" ({TOPIC_LABELS[topics[0]]})"
        return Decision(True, "request", "urgent" if urgent else "high", detail)

    if topics:
        topic = topics[0]
        if topic in URGENT_TOPICS:
            priority = "urgent" if topic == "account_security" or angry else "high"
        else:
            priority = "high" if angry else "normal"
        return Decision(True, "complexity", priority, _("Needs a human: %s") % TOPIC_LABELS[topic])

    if angry:
        priority = "high" if very_angry else "normal"
        return Decision(
            True,
            "sentiment",
            priority,
            _("Customer upset: %(labels)s (intensity %(value).2f)")
            % {"labels": feeling, "value": intensity},
        )

    if loop["count"] >= settings.loop_threshold:
        parts = []
        if loop["customer_repeats"]:
            parts.append(_("customer repeated %d×") % loop["customer_repeats"])
        if loop["assistant_repeats"]:
            parts.append(_("AI repeated %d×") % loop["assistant_repeats"])
        if loop["already_told"]:
            parts.append(_('"I already told you"'))
        return Decision(
            True,
            "loop",
            "high" if loop["count"] > settings.loop_threshold else "normal",
            _("Conversation loop: %s") % ", ".join(parts),
        )

    last = confidence["last"]
    if last is not None and last < settings.confidence_threshold and not signals.get("closing"):
        priority = "normal" if confidence["recent_low"] >= 2 else "low"
        return Decision(
            True,
            "low_confidence",
            priority,
            _("AI unsure of its answer (confidence %(value).2f < %(limit).2f)")
            % {"value": last, "limit": settings.confidence_threshold},
        )

    return Decision(False, None, None, _("No escalation"))
