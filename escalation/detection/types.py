"""The detection contract: what goes in (turns, settings) and what comes out (decision, result)."""

from dataclasses import dataclass, field

REASONS = ("request", "sentiment", "complexity", "loop", "low_confidence")
PRIORITIES = ("urgent", "high", "normal", "low")
TOPICS = ("refund", "billing_dispute", "account_security", "legal", "privacy", "contract")


@dataclass(frozen=True)
class Turn:
    role: str  # "customer" | "assistant" | "agent" | "system"
    text: str
    confidence: float | None = None  # the AI's answer confidence, assistant turns only


@dataclass(frozen=True)
class DetectorSettings:
    handoff_enabled: bool = True
    backend: str = "local"  # "local" | "local_claude" (Claude inside the band) | "claude"
    sentiment_threshold: float = 0.6  # how negative/intense before escalating, 0..1
    confidence_threshold: float = 0.45  # AI answers below this are low confidence
    loop_threshold: int = 2  # repeats before a loop escalates
    always_human_topics: tuple[str, ...] = field(default=TOPICS)
    sensitivity: float = 0.5  # 0.5: thresholds as trained; higher escalates more (policy.py)
    claude_band: tuple[float, float] = (0.2, 0.8)  # "local_claude": local probabilities sent on


@dataclass(frozen=True)
class Decision:
    escalate: bool
    reason: str | None  # one of REASONS, or None
    priority: str | None  # one of PRIORITIES, or None
    detail: str  # one line for the queue's Reason column


@dataclass(frozen=True)
class DetectionResult:
    signals: dict  # JSON-serialisable
    decision: Decision
    would_escalate: bool  # the decision with handoff enabled (for managers)
    summary: str  # for the agent taking over
    backend: str  # "local" or "claude": who actually answered
    duration_ms: float
