"""Extractive summary for the agent: what the customer wants, what the AI tried, the facts, why."""

from __future__ import annotations

import re

from escalation.detection.types import Turn

_ORDER = re.compile(
    r"(?:#\s?[A-Z0-9-]{3,}|\b(?:order|pedido|commande|bestellung|ordine|"
    r"invoice|factura|fatura|facture|rechnung|fattura|ticket|case)\b"
    r"[^\d\n]{0,15}?(\d[\d-]{2,})|\b\d{5,}\b)",
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


def extract_facts(turns: list[Turn]) -> list[str]:
    facts: list[str] = []
    # The customer's words and what the AI confirmed ("two charges of $49 on June 1 and 3").
    for turn in turns:
        if turn.role not in ("customer", "assistant"):
            continue
        for match in _ORDER.finditer(turn.text):
            facts.append(match.group(1) or match.group(0).strip())
        facts.extend(m.group(0).strip() for m in _AMOUNT.finditer(turn.text))
        facts.extend(m.group(0) for m in _DATE.finditer(turn.text))
        facts.extend(m.group(0) for m in _EMAIL.finditer(turn.text))
    seen: list[str] = []
    for fact in facts:
        if fact not in seen:
            seen.append(fact)
    return seen[:8]


def summarize(turns: list[Turn], reason: str | None) -> str:
    customer = [t.text for t in turns if t.role == "customer" and t.text.strip()]
    answers = [t for t in turns if t.role == "assistant" and t.text.strip()]
    parts = []
    if customer:
        # The first real message usually states the problem; the last one is where it stands.
        main = next((text for text in customer if len(text.split()) >= 4), max(customer, key=len))
        parts.append(f"Customer: {_clip(main)}")
        if customer[-1] != main:
            parts.append(f"Latest: {_clip(customer[-1], 120)}")
    if answers:
        # What the AI actually offered: its most confident answer (the latest of equals), not
        # the "connecting you now" line that often ends the AI's part.
        best = max(reversed(answers), key=lambda t: t.confidence or 0.0)
        parts.append(f"AI tried: {_clip(best.text, 140)}")
    facts = extract_facts(turns)
    if facts:
        parts.append("Facts: " + ", ".join(facts))
    if reason:
        parts.append(f"Escalated because {_WHY.get(reason, reason)}.")
    return " | ".join(parts) if parts else "No customer messages yet."
