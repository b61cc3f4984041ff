"""Reading labelled conversations (JSON lines) and scoring decisions against them.

Shared by ``manage.py evaluate_detection`` and the tests, so both count the same way.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from escalation.detection.types import REASONS, Turn

ROLES = ("customer", "assistant", "agent", "system")


class ConversationFormatError(ValueError):
    """A line that isn't a valid conversation; the message names the line."""


@dataclass(frozen=True)
class Conversation:
    id: str
    turns: list[Turn]
    expected: dict | None  # {"escalate": bool, "reasons": [codes]} or None
    lang: str = "?"  # "lang", or the id's prefix ("en-request-3" → "en")


def _expected(expected, where: str) -> dict | None:
    """{"escalate": bool, "reasons": [codes]} (a single "reason" string is accepted too)."""
    if expected is None:
        return None
    if not isinstance(expected, dict) or not isinstance(expected.get("escalate"), bool):
        raise ConversationFormatError(
            f'{where}: "expected" must be {{"escalate": bool, "reasons": [...]}}'
        )
    reasons = expected.get("reasons")
    if reasons is None and isinstance(expected.get("reason"), str):
        reasons = [expected["reason"]]
    reasons = reasons or []
    if not isinstance(reasons, list) or any(r not in REASONS for r in reasons):
        raise ConversationFormatError(
            f"{where}: expected reasons must be a list of {', '.join(REASONS)}"
        )
    return {"escalate": expected["escalate"], "reasons": reasons}


def parse_line(line: str, number: int, with_expected: bool = True) -> Conversation:
    """One conversation; ``expected`` is read (and checked) only ``with_expected``."""
    where = f"line {number}"
    try:
        data = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ConversationFormatError(f"{where}: not valid JSON ({exc.msg})") from None
    if not isinstance(data, dict):
        raise ConversationFormatError(f"{where}: expected a JSON object")
    if "id" not in data:
        raise ConversationFormatError(f'{where}: missing "id"')
    where = f"line {number} (id {data['id']!r})"
    raw_turns = data.get("turns")
    if not isinstance(raw_turns, list) or not raw_turns:
        raise ConversationFormatError(f'{where}: "turns" must be a non-empty list')
    turns = []
    for i, raw in enumerate(raw_turns):
        if not isinstance(raw, dict):
            raise ConversationFormatError(f"{where}: turn {i} is not an object")
        role, text = raw.get("role"), raw.get("text")
        if role not in ROLES:
            raise ConversationFormatError(
                f"{where}: turn {i} has role {role!r}; expected one of {', '.join(ROLES)}"
            )
        if not isinstance(text, str):
            raise ConversationFormatError(f'{where}: turn {i} needs a "text" string')
        confidence = raw.get("confidence")
        if confidence is not None and (
            isinstance(confidence, bool) or not isinstance(confidence, int | float)
        ):
            raise ConversationFormatError(f"{where}: turn {i} confidence must be a number")
        turns.append(
            Turn(
                role=role,
                text=text,
                confidence=float(confidence) if confidence is not None else None,
            )
        )
    if not any(t.role == "customer" and t.text.strip() for t in turns):
        raise ConversationFormatError(f"{where}: no customer turn to decide on")
    expected = _expected(data.get("expected"), where) if with_expected else None
    lang = data.get("lang")
    if not isinstance(lang, str) or not lang:
        prefix = str(data["id"]).split("-", 1)[0]
        lang = prefix if len(prefix) == 2 and prefix.isalpha() else "?"
    return Conversation(id=str(data["id"]), turns=turns, expected=expected, lang=lang)


def read_conversations(lines, with_expected: bool = True) -> list[Conversation]:
    conversations = []
    for number, line in enumerate(lines, 1):
        if line.strip():
            conversations.append(parse_line(line, number, with_expected))
    return conversations


def score(pairs: list[tuple[dict, tuple[bool, str | None]]]) -> dict:
    """pairs: (expected, (escalate, reason)) → precision, recall, F1, reason accuracy."""
    tp = fp = fn = tn = reason_hits = 0
    for expected, (escalate, reason) in pairs:
        if expected["escalate"] and escalate:
            tp += 1
            if reason in (expected.get("reasons") or []):
                reason_hits += 1
        elif escalate:
            fp += 1
        elif expected["escalate"]:
            fn += 1
        else:
            tn += 1
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "n": len(pairs),
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "tn": tn,
        "precision": precision,
        "recall": recall,
        "f1": f1,
        # Of the conversations correctly escalated, the share with an acceptable reason.
        "reason_accuracy": reason_hits / tp if tp else 0.0,
    }
