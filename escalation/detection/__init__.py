"""Escalation detection: the conversation so far → signals → a decision (and a summary).

``detect`` decides for the last customer turn in the context of the turns before it. The local
backend is the default; with ``settings.backend == "claude"`` and Claude available, one Claude call
answers instead, and any failure falls back to the local backend (``result.backend`` says which
one answered).

``local_claude`` ("local, and Claude when unsure") runs the local backend first and asks Claude
only when the local escalation probability (``policy.escalation_probability``) falls inside the
assistant's band: every other message never leaves the machine. ``signals["route"]`` records the
probability and where the message went.
"""

from __future__ import annotations

import logging
import time

from escalation.detection.summary import summarize
from escalation.detection.types import (
    PRIORITIES,
    REASONS,
    TOPICS,
    Decision,
    DetectionResult,
    DetectorSettings,
    Turn,
)

__all__ = [
    "PRIORITIES",
    "REASONS",
    "TOPICS",
    "Decision",
    "DetectionResult",
    "DetectorSettings",
    "Turn",
    "detect",
    "prepare_detection",
    "summarize",
]

logger = logging.getLogger(__name__)


def detect(turns: list[Turn], settings: DetectorSettings = DetectorSettings()) -> DetectionResult:  # noqa: B008
    from escalation.detection.local import detect_local

    started = time.perf_counter()
    failure = None
    if settings.backend == "local_claude":
        return _detect_local_then_claude(turns, settings, started=started)
    if settings.backend == "claude":
        from crm.llm import claude_available

        if claude_available():
            from escalation.detection.claude import ClaudeDetectionError, detect_claude

            try:
                return detect_claude(turns, settings, started=started)
            except ClaudeDetectionError as exc:
                failure = str(exc)
                logger.warning("Claude detection failed, falling back to local: %s", exc)
            except Exception as exc:  # noqa: BLE001 - a message is never dropped
                failure = f"{type(exc).__name__}: {exc}"
                logger.exception("Claude detection crashed, falling back to local")
    result = detect_local(turns, settings, started=started)
    if failure is not None:
        result.signals["fallback"] = {"from": "claude", "error": failure[:300]}
    return result


def _detect_local_then_claude(
    turns: list[Turn], settings: DetectorSettings, *, started: float
) -> DetectionResult:
    from crm.llm import claude_available
    from escalation.detection.local import detect_local
    from escalation.detection.policy import escalation_probability

    local = detect_local(turns, settings, started=started)
    probability = escalation_probability(local.signals, settings)
    low, high = settings.claude_band
    route = {"probability": probability, "band": [low, high], "to": "local"}
    if low <= probability <= high and claude_available():
        from escalation.detection.claude import detect_claude

        try:
            result = detect_claude(turns, settings, started=started)
        except Exception as exc:  # noqa: BLE001 - the local answer stands
            logger.warning("Claude (uncertain band) failed, keeping the local decision: %r", exc)
            route["error"] = f"{type(exc).__name__}: {exc}"[:300]
        else:
            result.signals["route"] = {**route, "to": "claude"}
            return result
    local.signals["route"] = route
    return local


def warm_up() -> None:
    """Load the encoder and the heads now (a server or a worker starting) instead of on the first
    customer's message, which would otherwise wait a second or more for them."""
    detect([Turn(role="customer", text="hello")])


def prepare_detection(texts: list[str]) -> None:
    """Embed texts the next analysis will read (the AI's answer just sent) while nobody waits:
    the analysis of the customer's next message then finds them in this process's encoder
    cache instead of embedding them on its critical path. Best effort: without the encoder,
    nothing happens (the analysis embeds them itself, or falls back)."""
    from crm.encoder import EncoderUnavailable, embed_queries

    texts = [t for t in texts if t and t.strip()]
    if not texts:
        return
    try:
        embed_queries(texts)
    except EncoderUnavailable as exc:
        logger.warning("could not prepare detection: %s", exc)
