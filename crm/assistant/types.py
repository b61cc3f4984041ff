from dataclasses import dataclass


@dataclass(frozen=True)
class EscalationRequest:
    reason: str
    summary: str = ""
    detail: str = ""


@dataclass(frozen=True)
class Answer:
    text: str
    confidence: float | None  # None: nothing was asked (a greeting), not a weak answer
    escalate: EscalationRequest | None = None
