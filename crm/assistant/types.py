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


@dataclass(frozen=True)
class AssistantTurn:
    """What the assistant did with a customer's message: answered (``reply``, the stored
    message), asked for a person (``needs_person``), or nothing (someone else drives)."""

    reply: object | None = None  # crm.models.Message
    needs_person: EscalationRequest | None = None
