"""The local backend (the default): offline, nothing downloaded; the encoder plus numpy."""

from __future__ import annotations

import time

from escalation.detection.model import DetectorModel
from escalation.detection.policy import apply_handoff_setting, would_decide
from escalation.detection.signals import Embed, compute_signals
from escalation.detection.summary import summarize
from escalation.detection.types import DetectionResult, DetectorSettings, Turn


def detect_local(
    turns: list[Turn],
    settings: DetectorSettings,
    started: float | None = None,
    model: DetectorModel | None = None,
    embed: Embed | None = None,
) -> DetectionResult:
    started = time.perf_counter() if started is None else started
    signals = compute_signals(turns, settings, model=model, embed=embed)
    preview = would_decide(signals, settings)
    decision = apply_handoff_setting(preview, settings)
    return DetectionResult(
        signals=signals,
        decision=decision,
        would_escalate=preview.escalate,
        summary=summarize(turns, preview.reason if preview.escalate else None),
        backend="local",
        duration_ms=(time.perf_counter() - started) * 1000,
    )
