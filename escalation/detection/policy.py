"""Policy: signals + the assistant's settings → one decision.

Reasons are checked in a fixed order — request, complexity, sentiment, loop, low_confidence — and
the first that holds is the reason; the others can still raise the priority. An explicit request
escalates at once with at least ``high``. With handoff disabled nothing escalates, but the decision
keeps the reason and priority it would have had (``would_escalate`` in the result), so managers can
see what the assistant kept to itself.

Sensitivity (0..1, 0.5 = the thresholds chosen on validation data) moves every head's threshold
— request, each topic, upset — by the same amount on the log-odds scale of its calibrated
probability (at most ``SENSITIVITY_SPAN / 2`` either way). The signals carry each head's
threshold next to its score, so the move can be re-applied to stored signals (the settings
preview and replay read them without running the encoder again). Loop counts and the AI's
confidence are not heads: their thresholds are the manager's own settings, which sensitivity
leaves alone.
"""

from __future__ import annotations

import math

from escalation.detection.model import intensity_of, upset_at
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


NEUTRAL_SENSITIVITY = 0.5
SENSITIVITY_SPAN = 4.0  # log-odds: sensitivity 1.0 moves a 0.5 threshold to 0.12, 0.0 to 0.88


def adjusted_threshold(threshold: float, sensitivity: float) -> float:
    """``threshold`` moved by ``sensitivity`` on the log-odds scale; unchanged at 0.5."""
    if sensitivity == NEUTRAL_SENSITIVITY:
        return threshold
    t = min(max(threshold, 1e-4), 1 - 1e-4)
    shifted = math.log(t / (1 - t)) - SENSITIVITY_SPAN * (sensitivity - NEUTRAL_SENSITIVITY)
    return 1.0 / (1.0 + math.exp(-shifted))


def requested_person(intent: dict, sensitivity: float) -> bool:
    """The stored reading at neutral sensitivity; else the request probability against the
    moved threshold (signals without a stored threshold keep their reading)."""
    if sensitivity == NEUTRAL_SENSITIVITY or "threshold" not in intent:
        return bool(intent.get("request_human"))
    if intent.get("source") == "declined":
        return False
    return intent.get("confidence", 0.0) >= adjusted_threshold(intent["threshold"], sensitivity)


def detected_topics(complexity: dict, sensitivity: float) -> list[str]:
    thresholds = complexity.get("thresholds")
    if sensitivity == NEUTRAL_SENSITIVITY or not thresholds:
        return list(complexity.get("topics", ()))
    scores = complexity.get("scores", {})
    found = [
        topic
        for topic, threshold in thresholds.items()
        if scores.get(topic, 0.0) >= adjusted_threshold(threshold, sensitivity)
    ]
    return sorted(found, key=lambda topic: -scores[topic] / thresholds[topic])


def sentiment_cutoff(sentiment: dict, setting: float, sensitivity: float) -> float:
    """The intensity at or above which the customer counts as upset. ``setting`` is on the
    intensity scale; sensitivity moves the upset head's probability threshold on the log-odds
    scale like every other head's (the signals carry the head's threshold), and the result is
    read back on the intensity scale. Older signals without it: the setting itself is moved."""
    if sensitivity == NEUTRAL_SENSITIVITY:
        return setting
    head = sentiment.get("threshold")
    if not isinstance(head, int | float) or not 0 < head < 1:
        return adjusted_threshold(setting, sensitivity)
    upset = upset_at(setting, head)
    return intensity_of(adjusted_threshold(upset, sensitivity), head)


def escalation_probability(signals: dict, settings: DetectorSettings) -> float:
    """The local backend's strongest calibrated probability among the heads that decide —
    a request for a person, an upset customer, an always-human topic. The "local, and Claude
    when unsure" backend sends a message to Claude only when this falls inside the band."""
    sentiment = signals.get("sentiment", {})
    complexity = signals.get("complexity", {})
    scores = complexity.get("scores", {})
    candidates = [
        signals.get("intent", {}).get("confidence", 0.0),
        sentiment.get("upset_probability", sentiment.get("intensity", 0.0)),
        *(scores.get(topic, 0.0) for topic in settings.always_human_topics),
    ]
    return round(max(0.0, min(1.0, max(candidates))), 3)


def would_decide(signals: dict, settings: DetectorSettings) -> Decision:
    sensitivity = settings.sensitivity
    sentiment = signals["sentiment"]
    intensity = sentiment["intensity"]
    sentiment_threshold = sentiment_cutoff(sentiment, settings.sentiment_threshold, sensitivity)
    angry = intensity >= sentiment_threshold
    very_angry = intensity >= max(0.85, sentiment_threshold)
    topics = [
        t
        for t in detected_topics(signals["complexity"], sensitivity)
        if t in settings.always_human_topics
    ]
    loop = signals["loop"]
    confidence = signals["confidence"]
    feeling = ", ".join(sentiment["labels"]) or _("negative")

    if requested_person(signals["intent"], sensitivity):
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
