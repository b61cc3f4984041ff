"""Local signals: the conversation so far → sentiment, intent, complexity, loop, confidence.

Everything here is offline and cheap: two linear text classifiers (``features.TextModel``), VADER
for English polarity and intensity cues, short regex lists, and n-gram overlap for loops. The last
customer turn counts most; earlier turns add context (a request or a topic raised before, anger
that has been building).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from functools import lru_cache

from escalation.detection import patterns
from escalation.detection.features import analyze, load_models, normalize
from escalation.detection.types import TOPICS, DetectorSettings, Turn

REQUEST_THRESHOLD = 0.5
TOPIC_THRESHOLD = 0.5
CONTEXT_DECAY = 0.7  # weight of a request or topic raised in an earlier customer turn
REPEAT_SIMILARITY = 0.6
MIN_REPEAT_CHARS = 12
LOOP_LOOKBACK = 6  # earlier turns per role compared for repeats

_SHOUTED = re.compile(r"\b[A-ZÀ-ÖØ-Þ]{3,}\b")
_WORD = re.compile(r"\b\w{3,}\b")
_EXCLAIM = re.compile(r"[!?]{2,}")
_ELONGATED = re.compile(r"([a-zA-Z])\1{3,}")
_CLAUSE_BREAK = re.compile(r"[.!?;,\n]+\s*|\s+-\s+")
MIN_CLAUSE_WORDS = 3


@lru_cache(maxsize=1)
def _vader():
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


def customer_turns(turns: list[Turn]) -> list[Turn]:
    return [t for t in turns if t.role == "customer" and t.text.strip()]


def last_customer_index(turns: list[Turn]) -> int | None:
    for i in range(len(turns) - 1, -1, -1):
        if turns[i].role == "customer" and turns[i].text.strip():
            return i
    return None


def clauses(text: str) -> list[str]:
    """The sentences/clauses of a longer message (none for a short one)."""
    if len(text) < 40:
        return []
    parts = [p.strip() for p in _CLAUSE_BREAK.split(text)]
    parts = [p for p in parts if len(p.split()) >= MIN_CLAUSE_WORDS]
    return parts if len(parts) > 1 else []


def message_analysis(text: str) -> dict:
    """Per-message signals; cached by the caller across a conversation where useful."""
    models = load_models()
    norm = normalize(text)
    features = Counter(analyze(text))
    intent = models["intent"].predict_proba(features)
    emotion = models["emotion"].predict_proba(features)
    # A long message mixes a story with the ask ("the kettle broke after a day, I want a
    # refund"): each clause is scored on its own too, and the strongest clause counts for the
    # topics. (Requests are not: the strict patterns already find them anywhere in a message,
    # and a short clause like "I spoke with someone yesterday" reads as one out of context.)
    for clause in clauses(text):
        by_clause = models["intent"].predict_proba(clause)
        for label in TOPICS:
            intent[label] = max(intent[label], by_clause[label])
    vader = _vader().polarity_scores(text)["compound"]

    words = _WORD.findall(text)
    shouted = [w for w in _SHOUTED.findall(text) if not w.isdigit()]
    caps_ratio = len(shouted) / len(words) if words else 0.0
    profanity = bool(patterns.PROFANITY.search(norm) or patterns.PROFANITY.search(text.lower()))
    exclaims = len(_EXCLAIM.findall(text))
    elongated = bool(_ELONGATED.search(text))

    base = (
        emotion.get("anger", 0)
        + 0.8 * emotion.get("frustration", 0)
        + 0.35 * emotion.get("confusion", 0)
        + 0.15 * emotion.get("mild", 0)
    )
    cues = 0.0
    if len(shouted) >= 3 and caps_ratio >= 0.6:  # the whole message shouted
        cues += 0.3
    elif shouted and (caps_ratio >= 0.2 or len(shouted) >= 2):
        cues += min(0.2, 0.1 + caps_ratio * 0.3)
    if profanity:
        cues += 0.2
    negative_words = len(patterns.NEGATIVE_WORDS.findall(norm))
    if negative_words:
        cues += 0.1 if negative_words == 1 else 0.2
    cues += min(0.1, 0.05 * exclaims)
    if elongated:
        cues += 0.05
    intensity = 0.8 * base + 0.25 * max(0.0, -vader) + cues
    # Cues amplify negativity; on their own (a shouted order number, "thanks!!") they don't count.
    if base < 0.25 and vader > -0.3 and not negative_words:
        intensity = min(intensity, 0.4)

    labels = [lab for lab in ("anger", "frustration", "confusion") if emotion.get(lab, 0) >= 0.35]
    if patterns.CONFUSION.search(norm) and "confusion" not in labels:
        labels.append("confusion")
    if profanity and base >= 0.3 and "anger" not in labels:
        labels.append("anger")

    declined = bool(patterns.DECLINE.search(norm))
    pattern_hit = bool(patterns.REQUEST.search(norm))
    request_p = intent.get("request", 0.0)
    if declined:
        request_conf, request_source = min(request_p, 0.2), "declined"
    elif pattern_hit:
        request_conf, request_source = max(0.97, request_p), "pattern"
    else:
        request_conf, request_source = request_p, "model"

    topics = {t: round(intent.get(t, 0.0), 3) for t in TOPICS}
    for topic, regex in patterns.TOPIC_PATTERNS.items():
        if regex.search(norm):
            topics[topic] = max(topics[topic], 0.9)

    return {
        "request": (request_conf, request_source),
        "declined": declined,
        "topics": topics,
        "emotion": emotion,
        "vader": vader,
        "base": base,
        "intensity": max(0.0, min(1.0, intensity)),
        "labels": labels,
        "cues": {
            "caps_ratio": round(caps_ratio, 3),
            "profanity": profanity,
            "exclamations": exclaims,
            "elongated": elongated,
        },
        "already_told": bool(patterns.ALREADY_TOLD.search(norm)),
        "closing": patterns.is_closing(norm, text),
    }


def _trigrams(text: str) -> dict[str, int]:
    norm = f" {normalize(text)} "
    grams: dict[str, int] = {}
    for i in range(len(norm) - 2):
        g = norm[i : i + 3]
        grams[g] = grams.get(g, 0) + 1
    return grams


def _cosine(ga: dict[str, int], gb: dict[str, int]) -> float:
    if not ga or not gb:
        return 0.0
    if len(ga) > len(gb):
        ga, gb = gb, ga
    dot = sum(v * gb.get(k, 0) for k, v in ga.items())
    return dot / (
        math.sqrt(sum(v * v for v in ga.values())) * math.sqrt(sum(v * v for v in gb.values()))
    )


def similarity(a: str, b: str) -> float:
    """Cosine similarity of character trigram counts (0..1)."""
    return _cosine(_trigrams(a), _trigrams(b))


def _repeats(texts: list[str], against: str) -> int:
    """How many of ``texts`` (the most recent LOOP_LOOKBACK) say what ``against`` says."""
    if len(against) < MIN_REPEAT_CHARS:
        return 0
    target = _trigrams(against)
    return sum(
        1
        for t in texts[-LOOP_LOOKBACK:]
        if len(t) >= MIN_REPEAT_CHARS and _cosine(_trigrams(t), target) >= REPEAT_SIMILARITY
    )


def compute_signals(turns: list[Turn], settings: DetectorSettings) -> dict:
    """Signals for the last customer turn in the context of the turns before it."""
    last = last_customer_index(turns)
    if last is None:
        return empty_signals()
    history, current_turn = turns[:last], turns[last]
    current = message_analysis(current_turn.text)
    earlier = [message_analysis(t.text) for t in customer_turns(history)[-4:]]

    # Sentiment: the current message, carried context, and whether it has been building up.
    carried = max((e["intensity"] for e in earlier), default=0.0) * 0.6
    intensity = max(current["intensity"], carried)
    trend = [e["base"] for e in earlier[-2:]] + [current["base"]]
    escalating = len(trend) >= 3 and trend[0] < trend[1] < trend[2] and trend[2] >= 0.4
    if escalating:
        intensity = min(1.0, intensity + 0.1)
    if current["closing"] and current["intensity"] < 0.3:
        intensity = current["intensity"]  # "ok thanks" after a rough patch: it's over
    labels = list(current["labels"])
    for e in earlier:
        for label in e["labels"]:
            if label not in labels and e["intensity"] >= settings.sentiment_threshold:
                labels.append(label)

    # Intent: the current message, or an earlier unmistakable request not withdrawn since.
    conf, source = current["request"]
    if source == "model" and not current["closing"]:
        for e in earlier:
            carried_conf = e["request"][0] * CONTEXT_DECAY
            if e["request"][1] != "declined" and carried_conf > conf:
                conf, source = carried_conf, "context"

    # Complexity: topics of the current message, and (decayed) of earlier ones.
    topics = dict(current["topics"])
    for e in earlier:
        for topic, p in e["topics"].items():
            topics[topic] = max(topics[topic], round(p * CONTEXT_DECAY, 3))
    detected = sorted(
        (t for t, p in topics.items() if p >= TOPIC_THRESHOLD), key=lambda t: -topics[t]
    )

    # Loop: the customer repeating themselves, the AI repeating itself, "I already told you".
    customer_texts = [t.text for t in customer_turns(history)]
    assistant_texts = [t.text for t in history if t.role == "assistant" and t.text.strip()]
    customer_repeats = _repeats(customer_texts, current_turn.text)
    assistant_repeats = 0
    if assistant_texts:
        assistant_repeats = _repeats(assistant_texts[:-1], assistant_texts[-1])
    loop_count = customer_repeats + assistant_repeats + (1 if current["already_told"] else 0)
    if current["closing"] and current["intensity"] < 0.3:
        loop_count = 0

    # The AI's recent answer confidence (assistant turns before this customer turn).
    confidences = [
        t.confidence for t in history if t.role == "assistant" and t.confidence is not None
    ][-3:]
    low = [c for c in confidences if c < settings.confidence_threshold]

    return {
        "sentiment": {
            "score": round(current["vader"], 3),
            "intensity": round(intensity, 3),
            "labels": labels,
            "escalating": escalating,
            "emotion": {k: round(v, 3) for k, v in current["emotion"].items()},
            "cues": current["cues"],
        },
        "intent": {
            "request_human": conf >= REQUEST_THRESHOLD,
            "confidence": round(conf, 3),
            "source": source,
            "declined": current["declined"],
        },
        "complexity": {"topics": detected, "scores": topics},
        "loop": {
            "count": loop_count,
            "customer_repeats": customer_repeats,
            "assistant_repeats": assistant_repeats,
            "already_told": current["already_told"],
        },
        "confidence": {
            "last": confidences[-1] if confidences else None,
            "recent_low": len(low),
            "recent": confidences,
        },
        "closing": current["closing"],
    }


def empty_signals() -> dict:
    return {
        "sentiment": {
            "score": 0.0,
            "intensity": 0.0,
            "labels": [],
            "escalating": False,
            "emotion": {},
            "cues": {},
        },
        "intent": {"request_human": False, "confidence": 0.0, "source": "none", "declined": False},
        "complexity": {"topics": [], "scores": {}},
        "loop": {"count": 0, "customer_repeats": 0, "assistant_repeats": 0, "already_told": False},
        "confidence": {"last": None, "recent_low": 0, "recent": []},
        "closing": False,
    }
