"""The handoff card for the agent taking over: the problem in one sentence, what the AI tried,
the facts confirmed, the customer's mood over the conversation, what not to ask again, and why
it escalated. Extractive (no model): built from the turns, the per-message moods the analyses
stored, and what the contact already told us. ``summarize`` is its plain-text rendering.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field

from escalation.detection.types import Turn

_ORDER = re.compile(
    r"(?:#\s?[A-Z0-9-]{3,}|\b(?:order|pedido|commande|bestellung|ordine|"
    r"invoice|factura|fatura|facture|rechnung|fattura|ticket|case)\b"
    r"[^\d\n]{0,15}?((?:[A-Z]{1,3}-?)?\d[\d-]{2,})|\b\d{5,}\b)",
    re.I,
)
_AMOUNT = re.compile(
    r"(?:[$€£]\s?\d[\d.,]*|\b\d[\d.,]*\s?(?:€|eur|euros?|usd|dollars?|gbp|"
    r"pounds?|reais|r\$)(?!\w))",
    re.I,
)
_DATE = re.compile(
    r"\b(?:\d{4}-\d{2}-\d{2}|\d{1,2}[/.]\d{1,2}(?:[/.]\d{2,4})?|"
    r"\d{1,2}(?:st|nd|rd|th)? (?:of )?(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*|"
    r"(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]* \d{1,2}(?:st|nd|rd|th)?|"
    r"yesterday|today|last week|(?:mon|tues|wednes|thurs|fri|satur|sun)day)\b",
    re.I,
)
_RELATIVE_DAY = re.compile(
    r"yesterday|today|last week|(?:mon|tues|wednes|thurs|fri|satur|sun)day", re.I
)
_EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+\.[\w.]+\b")
_WHY = {
    "request": "the customer asked for a person",
    "sentiment": "the customer is upset",
    "complexity": "the topic needs a human's authority or judgement",
    "loop": "the conversation is going in circles",
    "low_confidence": "the AI was not confident in its answer",
}


def _clip(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rsplit(" ", 1)[0] + "…"


_SENTENCE_END = re.compile(r"(?<=[.!?])\s")


def _one_sentence(text: str, limit: int = 200) -> str:
    """The first sentence of ``text`` (the whole text if it is one), clipped."""
    text = " ".join(text.split())
    first = _SENTENCE_END.split(text, maxsplit=1)[0]
    return _clip(first if len(first.split()) >= 3 else text, limit)


# --- facts ---------------------------------------------------------------------------------------
FACT_KINDS = ("order", "amount", "date", "email")
FACT_LABELS = {
    "name": "name",
    "email": "email",
    "phone": "phone number",
    "order": "order number",
    "amount": "amount",
    "date": "date",
}


@dataclass(frozen=True)
class Fact:
    kind: str  # one of FACT_KINDS (or name / phone for what the contact gave)
    value: str
    said_by: str  # "customer" or "assistant"


def extract_typed_facts(turns: list[Turn]) -> list[Fact]:
    """Order numbers, amounts, dates and emails in the customer's words and what the AI
    confirmed ("two charges of $49 on June 1 and 3"), first mention first, each value once."""
    found: list[Fact] = []
    seen: set[str] = set()
    for turn in turns:
        if turn.role not in ("customer", "assistant"):
            continue
        orders = list(_ORDER.finditer(turn.text))
        amounts = list(_AMOUNT.finditer(turn.text))
        taken = [m.span() for m in orders + amounts]
        candidates = [("order", m.group(1) or m.group(0).strip()) for m in orders]
        candidates += [("amount", m.group(0).strip()) for m in amounts]
        # "$89.90" is an amount, not the date 89.90: a date inside an amount or order is not one.
        candidates += [
            ("date", m.group(0))
            for m in _DATE.finditer(turn.text)
            if not any(start < m.end() and m.start() < end for start, end in taken)
        ]
        candidates += [("email", m.group(0)) for m in _EMAIL.finditer(turn.text)]
        for kind, value in candidates:
            if value not in seen:
                seen.add(value)
                found.append(Fact(kind=kind, value=value, said_by=turn.role))
    return found


def extract_facts(turns: list[Turn]) -> list[str]:
    return [fact.value for fact in extract_typed_facts(turns)][:8]


# --- mood ----------------------------------------------------------------------------------------
MOODS = ("calm", "pleased", "confused", "frustrated", "angry")


def mood_of(sentiment: dict | None) -> str | None:
    """One word for a customer message from the sentiment its analysis stored (labels from the
    emotion head, intensity 0–1, compound score -1–1); None when it was not analysed."""
    if not isinstance(sentiment, dict):
        return None
    labels = sentiment.get("labels") or []
    try:
        intensity = float(sentiment.get("intensity") or 0)
        score = float(sentiment.get("score") or 0)
    except (TypeError, ValueError):
        return None
    if "anger" in labels:
        return "angry"
    if "frustration" in labels or intensity >= 0.6:
        return "frustrated"
    if "confusion" in labels:
        return "confused"
    if score >= 0.8:  # clearly glad ("thank you so much, that's great"), not a polite "yes"
        return "pleased"
    return "calm"


def mood_path(moods: list[str | None], *, longest: int = 4) -> list[str]:
    """The moods in order with repeats folded ("calm → frustrated"); the first and the last
    few when it changed more often than ``longest`` allows."""
    path: list[str] = []
    for mood in moods:
        if mood and (not path or path[-1] != mood):
            path.append(mood)
    if len(path) > longest:
        path = [path[0], *path[-(longest - 1) :]]
    return path


# --- the card ------------------------------------------------------------------------------------
@dataclass
class HandoffCard:
    problem: str = ""
    ai_tried: str = ""
    facts: list[dict] = field(default_factory=list)  # [{"kind", "value"}]
    mood: list[str] = field(default_factory=list)  # ["calm", "frustrated"]
    dont_ask: list[dict] = field(default_factory=list)  # [{"kind", "label", "value"}]
    reason: str = ""
    why: str = ""

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict | None) -> HandoffCard | None:
        """A stored card, or None for an escalation from before cards (or a malformed one)."""
        if not isinstance(data, dict) or not data.get("problem"):
            return None
        known = {name: data[name] for name in cls.__dataclass_fields__ if name in data}
        try:
            return cls(**known)
        except TypeError:
            return None

    def as_text(self) -> str:
        """The plain-text rendering (the escalation's ``summary``): one labelled line each."""
        lines = [f"Problem: {self.problem}"]
        if self.ai_tried:
            lines.append(f"AI tried: {self.ai_tried}")
        if self.facts:
            lines.append("Facts: " + ", ".join(fact["value"] for fact in self.facts))
        if self.mood:
            lines.append("Mood: " + " → ".join(self.mood))
        if self.dont_ask:
            lines.append("Don't ask again: " + self._dont_ask_text())
        if self.why:
            lines.append(f"Escalated because {self.why}.")
        return "\n".join(lines)

    def short_text(self, limit: int = 180) -> str:
        """One line for alerts and notifications: the problem, the mood, what is known."""
        parts = [self.problem]
        if self.mood:
            parts.append("mood " + " → ".join(self.mood))
        if self.dont_ask:
            parts.append("known: " + self._dont_ask_text())
        return _clip(" · ".join(parts), limit)

    def _dont_ask_text(self) -> str:
        return ", ".join(f"{item['label']} ({item['value']})" for item in self.dont_ask)


def build_handoff_card(
    turns: list[Turn],
    reason: str | None,
    *,
    moods: list[str | None] | None = None,
    known: dict[str, str] | None = None,
    problem: str = "",
) -> HandoffCard:
    """The card from the conversation's turns. ``moods`` are the customer messages' moods in
    order (``mood_of`` of each analysis), ``known`` what the contact gave outside the chat (the
    pre-chat form's name and email, a phone number), ``problem`` a model's summary to use as
    the problem statement (Claude's), else the customer's first real message is."""
    customer = [t.text for t in turns if t.role == "customer" and t.text.strip()]
    answers = [t for t in turns if t.role == "assistant" and t.text.strip()]
    card = HandoffCard(reason=reason or "", why=_WHY.get(reason, reason or "") if reason else "")
    if problem.strip():
        card.problem = _clip(problem, 300)
    elif customer:
        # The first real message usually states the problem.
        main = next((text for text in customer if len(text.split()) >= 4), max(customer, key=len))
        card.problem = _one_sentence(main)
    else:
        card.problem = "No customer messages yet."
    if answers:
        # What the AI actually offered: its most confident answer (the latest of equals), not
        # the "connecting you now" line that often ends the AI's part.
        best = max(reversed(answers), key=lambda t: t.confidence or 0.0)
        card.ai_tried = _clip(best.text, 200)
    # "today" or "last week" tells the agent nothing once the day is over.
    facts = [
        f
        for f in extract_typed_facts(turns)
        if not (f.kind == "date" and _RELATIVE_DAY.fullmatch(f.value))
    ]
    card.facts = [{"kind": f.kind, "value": f.value} for f in facts[:8]]
    card.mood = mood_path(moods or [])
    # What the customer already told us: asking again is what makes a handoff feel broken.
    dont_ask: list[dict] = []
    for kind, value in (known or {}).items():
        if value and kind in FACT_LABELS:
            dont_ask.append({"kind": kind, "label": FACT_LABELS[kind], "value": _clip(value, 80)})
    given = {item["value"].lower() for item in dont_ask}
    for fact in facts:
        if fact.said_by == "customer" and fact.value.lower() not in given:
            given.add(fact.value.lower())
            dont_ask.append(
                {"kind": fact.kind, "label": FACT_LABELS[fact.kind], "value": fact.value}
            )
    card.dont_ask = dont_ask[:8]
    return card


def summarize(turns: list[Turn], reason: str | None) -> str:
    """The plain-text card from the turns alone (what a detection result carries)."""
    return build_handoff_card(turns, reason).as_text()
